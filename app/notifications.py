"""What a handler is told (issue 12 item 8): the open tasks of their queues (theirs, and their roles' unclaimed
ones) that are new since they last looked, due within a day, or overdue; and a supervisor, besides, the overdue tasks nobody holds and the tasks nobody may work.
Read from human_task with the queues' own conditions (app.queues: roles, 回避, independence), never from a
workflow. The same lists make the notifications page and the e-mail digest (send_digests, run by the
scheduler each working morning), so the two never disagree."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from . import avoidance, queues
from .models import HumanTask, User

DUE_SOON = timedelta(hours=24)
LIMIT = 50                 # per list: a digest is a reminder, the queues are the full lists


@dataclass
class Digest:
    new: list = field(default_factory=list)            # of my queues (mine, my roles' unclaimed), since I looked
    due_soon: list = field(default_factory=list)       # of my queues, due within DUE_SOON
    overdue: list = field(default_factory=list)        # of my queues, past their deadline
    unassigned_overdue: list = field(default_factory=list)   # supervisors: nobody holds them, overdue
    unstaffed: list = field(default_factory=list)      # supervisors: nobody may work them

    def empty(self) -> bool:
        return not (self.new or self.due_soon or self.overdue or self.unassigned_overdue or self.unstaffed)

    def sizes(self) -> dict:
        return {name: len(getattr(self, name)) for name in
                ("new", "due_soon", "overdue", "unassigned_overdue", "unstaffed")}


def _tasks(session, params, *conditions) -> list:
    query = select(HumanTask).where(*conditions).order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.created_at)
    return session.execute(query.limit(LIMIT), params).scalars().all()


def _mine_or_available(user, independent):
    """The condition of the user's two queues, and the values of its bind parameters."""
    mine, available = (queues.queue_query(user, name, independent=independent) for name in ("mine", "available"))
    return or_(and_(*mine.task_conditions), and_(*available.task_conditions)), queues.joint_params(mine, available)


def _new_since(user, since):
    """New to the user since `since`: opened since, or given to them since (a supervisor's assignment)."""
    return or_(HumanTask.created_at > since, and_(HumanTask.assignee_id == user.id, HumanTask.claimed_at > since))


def digest(session, user, now: datetime, *, since=None, supervisor=False, independent=()) -> Digest:
    """The lists for `user` at `now`; `since`: when they last looked (None: everything open is new)."""
    queue, params = _mine_or_available(user, independent)
    found = Digest(
        new=_tasks(session, params, queue, *([_new_since(user, since)] if since else [])),
        due_soon=_tasks(session, params, queue, HumanTask.due_at >= now, HumanTask.due_at < now + DUE_SOON),
        overdue=_tasks(session, params, queue, HumanTask.due_at < now))
    if supervisor:
        found.unassigned_overdue = _tasks(session, {}, HumanTask.state == "open", HumanTask.assignee_id.is_(None),
                                          HumanTask.instance_id.not_in(avoidance.avoided_instances(user.username)),
                                          HumanTask.due_at < now)
        unstaffed = queues.queue_query(user, "unstaffed")
        found.unstaffed = _tasks(session, unstaffed.params, *unstaffed.task_conditions)
    return found


def unread_count(session, user, now: datetime, *, independent=()) -> int:
    """For the top bar: the tasks of the user's queues new since they last looked, or overdue (one statement).
    The two queues never share a task (held by the user / by nobody), so each is counted on its own index
    and the counts added: one COUNT over their OR read every open task (6 ms at 100,000 complaints)."""
    news = _new_since(user, user.notifications_seen_at) if user.notifications_seen_at else True
    wanted = or_(news, HumanTask.due_at < now)
    found = [queues.queue_query(user, name, independent=independent) for name in ("mine", "available")]
    counts = [select(func.count()).select_from(HumanTask).where(*queue.task_conditions, wanted).scalar_subquery()
              for queue in found]
    return session.execute(select(counts[0] + counts[1]), queues.joint_params(*found)).scalar_one()


def mark_seen(session, user, now: datetime):
    session.execute(update(User).where(User.id == user.id).values(notifications_seen_at=now))


# ---- the e-mail digest -----------------------------------------------------------------------------------------
def claim_digest(session, user_id, day_start: datetime, now: datetime):
    """Take today's digest of one user (an UPDATE that only one scheduler wins); returns when the previous
    one went out (the digest's `since`), or False when it is taken already."""
    previous = session.execute(select(User.digest_sent_at).where(User.id == user_id)).scalar_one()
    won = session.execute(update(User).where(User.id == user_id, or_(User.digest_sent_at.is_(None),
                                                                       User.digest_sent_at < day_start))
                          .values(digest_sent_at=now)).rowcount
    return previous if won else False


def release_digest(session, user_id, previous):
    """A digest that could not be sent goes out at the next run."""
    session.execute(update(User).where(User.id == user_id).values(digest_sent_at=previous))


def digest_users(session) -> list:
    return session.execute(select(User).where(User.active.is_(True), User.digest.is_(True),
                                              User.email.is_not(None)).order_by(User.id)).scalars().all()

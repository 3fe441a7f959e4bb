"""What a handler is told (issue 12 item 8): the open tasks of their queues (theirs, and their roles' unclaimed
ones) that are new since they last looked, due within a day, or overdue; and a supervisor, besides, the overdue tasks nobody holds and the tasks nobody may work.
Read from human_task with the queues' own conditions (app.queues: roles, 回避, independence), never from a
workflow. The same lists make the notifications page and the e-mail digest (send_digests, run by the
scheduler each working morning), so the two never disagree."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import and_, bindparam, func, or_, select, true, update

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


def top_bar_counts(session, user, now: datetime, *, independent=(), supervisor=False) -> dict:
    """The top bar's counts, in one statement: "mine", "available", for a supervisor "unstaffed", and
    "notifications": the tasks of the first two new to the user since they last looked (opened, or given to them,
    since) or overdue. Each queue is read once, on its own index: the notifications are counted alongside its total
    (FILTER), where they had been a second count over the same queues (5 ms of a page's 60 at 100,000 complaints on
    PostgreSQL). The statement is built once per shape, as the queues' are."""
    found = [queues.queue_query(user, name, independent=independent)
             for name in (("mine", "available", "unstaffed") if supervisor else ("mine", "available"))]
    seen = user.notifications_seen_at
    params = {**queues.joint_params(*found), "top_bar_now": now, "top_bar_seen_at": seen}
    row = session.execute(_top_bar_query(tuple(queue.shape for queue in found), seen is not None), params).one()
    return dict(row._mapping)


_NOW, _SEEN_AT = bindparam("top_bar_now"), bindparam("top_bar_seen_at")


@lru_cache(maxsize=64)
def _top_bar_query(shapes, seen: bool):
    mine, available, *unstaffed = (queues.of_shape(shape) for shape in shapes)
    # New to the user: a task of the role queue since it opened (nobody holds it); one of theirs also since it was
    # given to them (assignee_id is theirs by the queue's condition). Written per queue so that the role queue's is
    # counted from its index alone (ix_human_task_unclaimed holds created_at and due_at); "my tasks", a handful per
    # user, reads its rows.
    new_mine = or_(HumanTask.created_at > _SEEN_AT, HumanTask.claimed_at > _SEEN_AT) if seen else true()
    new_available = HumanTask.created_at > _SEEN_AT if seen else true()
    counted = [select(func.count().label("n"), func.count().filter(or_(new, HumanTask.due_at < _NOW)).label("told"))
               .select_from(HumanTask).where(*queue.task_conditions).subquery()
               for queue, new in ((mine, new_mine), (available, new_available))]
    columns = [counted[0].c.n.label("mine"), counted[1].c.n.label("available"),
               (counted[0].c.told + counted[1].c.told).label("notifications")]
    if unstaffed:
        columns.append(select(func.count()).select_from(HumanTask).where(*unstaffed[0].task_conditions)
                       .scalar_subquery().label("unstaffed"))
    return select(*columns).select_from(counted[0].join(counted[1], true()))


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

"""回避 (avoidance): whoever handled the original claim stands aside from the complaint about it.

One rule, one place. Every path that reads or changes a complaint asks this module: the runtime
(claim, complete, assign, unclaim, and whether anyone may still work a new task), the queues and the
search (which leave the complaints out), and every page and API call that shows a complaint (403).
The rule is data, not code: `complaint.claim_handler` names the user who handled the original claim.
It covers every process instance of the complaint (its main one and those beside it, e.g. a call to the
customer or a review), all linked by their business key, the complaint number.

A process that must be worked by someone independent of the handling (config INDEPENDENT_PROCESSES,
e.g. the review 核查, R-AVOID/R-REVIEW) also keeps out everyone who completed a task of the complaint's
other instances: they may still read the complaint, but not work that process's tasks.
"""
from typing import Optional

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from .errors import Forbidden
from .extensions import constant
from .models import AuditEvent, Complaint, HumanTask, ProcessInstance, User

ACTION_SENT = "case_event_sent"     # app.case_events.SENT: a handler told the procedure something

REASON = "{user} handled the original claim of this complaint and must stand aside (回避)"
HANDLED = "{user} took part in handling this complaint and may not work on its review (回避)"


def _excluded_by(claim_handler) -> dict:
    """The rule itself: {username: reason} of whoever must stand aside, given the claim's handler."""
    return {claim_handler: REASON.format(user=claim_handler)} if claim_handler else {}


# What the rule needs to know of an instance: its complaint (by business key) and that complaint's claim handler.
FACTS = (ProcessInstance.business_key, ProcessInstance.process_id, Complaint.claim_handler)


def facts_of(instance, complaint) -> tuple:
    """FACTS of an instance and its complaint (None: it has none) already loaded, e.g. by the runtime's lock."""
    return instance.business_key, instance.process_id, complaint.claim_handler if complaint is not None else None


def with_facts(query):
    """`query` (on ProcessInstance) joined to what the rule reads: select FACTS from it."""
    return query.outerjoin(Complaint, Complaint.number == ProcessInstance.business_key)


def excluded_usernames(session, instance_id, independent=frozenset(), facts=None) -> dict:
    """{username: reason} of the users who must stay out of this instance's complaint: the complaint
    whose number is the instance's business key (one query over two unique-index lookups, unless the
    caller read `facts`, the instance's FACTS, with its own); for a process in `independent`, also
    whoever completed a task of the complaint's other instances."""
    if facts is None:
        facts = session.execute(with_facts(select(*FACTS)).where(ProcessInstance.id == instance_id)).one_or_none()
    key, process_id, claim_handler = facts or (None, None, None)
    excluded = _excluded_by(claim_handler) if key else {}
    if key and process_id in independent:
        for username in _handlers(session, key, instance_id):
            excluded.setdefault(username, HANDLED.format(user=username))
    return excluded


def _handlers(session, business_key, besides) -> list[str]:
    """Who took part in the handling of `business_key` outside the instance `besides`: completed a task
    of its other instances, or told its procedure something besides a task (app.case_events: asked
    for more time, recorded an appraisal)."""
    others = select(ProcessInstance.id).where(ProcessInstance.business_key == business_key,
                                              ProcessInstance.id != besides)
    by_task = select(User.username).join(HumanTask, HumanTask.completed_by_id == User.id).where(
        HumanTask.instance_id.in_(others), HumanTask.state == "completed")
    by_action = select(AuditEvent.actor).where(AuditEvent.business_key == business_key,
                                               AuditEvent.action == ACTION_SENT)
    return sorted(set(session.execute(by_task.union(by_action)).scalars()))


def took_part(reason: str) -> bool:
    """Whether `reason` (of excluded_usernames) is the independent process's rule (HANDLED), not the claim's."""
    return reason.endswith(HANDLED.format(user=""))


def reason_for(user, complaint) -> Optional[str]:
    """Why `user` must stay out of `complaint` (already loaded), or None."""
    return _excluded_by(complaint.claim_handler).get(user.username) if complaint is not None else None


def check_may_read(user, complaint):
    """Refuse (403, code "excluded") a user who must stand aside from this complaint."""
    reason = reason_for(user, complaint)
    if reason:
        raise Forbidden(reason, code="excluded")


def visible_to(user):
    """A condition on Complaint for lists and searches: the complaints `user` may see."""
    return or_(Complaint.claim_handler.is_(None), Complaint.claim_handler != user.username)


def avoided_instances(username):
    """The ids of every instance of the complaints the user `username` (a value or a bind parameter) must stay
    out of, as a subquery (a handful of rows: complaint by claim_handler, then process_instance by business_key,
    both indexed)."""
    return select(ProcessInstance.id).join(Complaint, Complaint.number == ProcessInstance.business_key) \
        .where(Complaint.claim_handler == username)


# Built once: an alias made per call costs SQLAlchemy a copy of every column on every request.
_OTHER_INSTANCE, _DONE_TASK = aliased(ProcessInstance), aliased(HumanTask)


def not_independent_of(user_id, username, independent):
    """A condition on HumanTask for the queues: leave out the tasks of the running instances of an
    `independent` process (e.g. a review) of a complaint on whose other instances the user (`user_id`,
    `username`: values or bind parameters) completed a task or sent an action (R-AVOID, as `_handlers`): the
    runtime refuses them that task, so the queue does not offer it. A small NOT IN, driven by the few running
    instances of those processes (indexed by process and status): each is checked with EXISTS on its complaint's
    other instances (by business key) and their tasks (by instance), so that the filter never reads the user's
    history — a join that let the database start from the user's completed tasks took 3.3 s per queue page on
    SQLite at 100,000 complaints with 300 running reviews (benchmarks/reads.py).
    Those checks (a few index reads per running review, 3 ms for 300 reviews) are made only if the
    queue holds a task of such an instance at all: a task of any other instance passes on the cheap
    first test (e.g. every task of a claims specialist's queue, which holds no review)."""
    if not independent:
        return and_(True)
    others, done = _OTHER_INSTANCE, _DONE_TASK
    # The constants are written into the SQL: planned for any status, PostgreSQL's generic plan of the role queue
    # read every instance (a sequential scan, 100 ms, and a JIT compilation of 1.5 s).
    running = (ProcessInstance.process_id.in_([constant(name) for name in sorted(independent)]),
               ProcessInstance.status == constant("running"))
    completed_one = select(done.id).where(done.instance_id == others.id, done.state == constant("completed"),
                                          done.completed_by_id == user_id).exists()
    took_part = select(others.id).where(others.business_key == ProcessInstance.business_key,
                                        others.id != ProcessInstance.id, completed_one).exists()
    sent_an_action = select(AuditEvent.id).where(
        AuditEvent.business_key == ProcessInstance.business_key, AuditEvent.actor == username,
        AuditEvent.action == constant(ACTION_SENT)).exists()
    closed_to_user = select(ProcessInstance.id).where(*running, or_(took_part, sent_an_action))
    return or_(HumanTask.instance_id.not_in(select(ProcessInstance.id).where(*running)),
               HumanTask.instance_id.not_in(closed_to_user))

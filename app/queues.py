"""The task queues: indexed reads of human_task joined to complaint, never a workflow.

A task belongs to the complaint whose number is its business key: the tasks of every process that
runs for a complaint (its main one and those beside it) show with that complaint's columns."""
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from sqlalchemy import bindparam, func, or_, select, union
from sqlalchemy.orm import Bundle

from . import avoidance
from .errors import AppError
from .extensions import constant
from .models import Complaint, HumanTask

# "unstaffed": open tasks nobody may work (flagged at creation), for the supervisors.
QUEUES = ("mine", "available", "unstaffed")
MAX_PAGE = 100_000      # the highest page number asked for: an OFFSET every database can hold

# 'open' written into the statement, not bound: a database takes a partial index (models.OPEN_SQL,
# UNCLAIMED_SQL) only when the query's own text implies the index's condition, which a parameter does not
# (PostgreSQL's prepared statements plan for any value).
OPEN = constant("open")

# The complaint of a task: one lookup on complaint's unique number per task row.
COMPLAINT_OF_TASK = Complaint.number == HumanTask.business_key

# human_task.due_at keeps a missed deadline, so overdue tasks sort first.
ORDERS = {
    "due": (HumanTask.due_at.asc().nulls_last(), HumanTask.created_at),
    "received": (Complaint.received_at.asc(), HumanTask.created_at),
    "created": (HumanTask.created_at.asc(),),
}

# What a queue's conditions and pages read of the request, as bind parameters: the conditions, and the statements
# made of them, are built once per shape (which queue, which filters) and kept. Building them on every request
# cost about 2 ms of a role queue page's 18 at 100,000 complaints (issue 10).
_USER_ID, _USERNAME = bindparam("queue_user_id"), bindparam("queue_username")
_ROLES = bindparam("queue_roles", expanding=True)
_STEP, _CHANNEL, _CATEGORY = bindparam("queue_step"), bindparam("queue_channel"), bindparam("queue_category")
_OVERDUE_AT, _OFFSET, _LIMIT = bindparam("queue_overdue_at"), bindparam("queue_offset"), bindparam("queue_limit")


@dataclass(frozen=True, eq=False)
class Queue:
    """The conditions of one queue: on human_task alone, and on the task's complaint (filters); `params`, the
    values of their bind parameters, to be given with every statement made of them. `shape`: what
    `queue_query` built them from, the same for every user (None: conditions made by the caller), so that
    statements made of them are kept."""
    task_conditions: tuple
    complaint_conditions: tuple = ()
    params: dict = field(default_factory=dict)
    shape: Optional[tuple] = None


def queue_query(user, queue, *, step=None, channel=None, category=None, overdue_at=None,
                independent=()) -> Queue:
    """Open tasks assigned to the user ("mine"), unclaimed tasks of the user's roles ("available"), or
    tasks nobody may work ("unstaffed", for supervisors: the caller checks). Optional filters: the task's
    element id (`step`), the complaint's channel and category, and only tasks whose deadline is before
    `overdue_at`. `independent`: the processes whose tasks are not offered to anyone who took part in
    the complaint's handling (config INDEPENDENT_PROCESSES)."""
    if queue not in QUEUES:
        raise AppError("queue must be one of: " + ", ".join(QUEUES), fields={"queue": "unknown queue"},
                       code="bad_query")
    independent = tuple(sorted(independent or ())) if queue == "available" else ()     # only the role queue reads it
    shape = (queue, bool(step), bool(channel), bool(category), overdue_at is not None, independent)
    params = {"queue_user_id": user.id, "queue_username": user.username, "queue_roles": sorted(user.roles),
              "queue_step": step, "queue_channel": channel, "queue_category": category,
              "queue_overdue_at": overdue_at}
    return Queue(*_conditions(*shape), params=params, shape=shape)


@lru_cache(maxsize=None)        # a few dozen shapes at most: 3 queues, 4 filters, one INDEPENDENT_PROCESSES
def _conditions(queue, step, channel, category, overdue, independent) -> tuple[tuple, tuple]:
    # 回避: leave out every instance of the (few) complaints about a claim this user handled. A small
    # NOT IN keeps the queue and its count on the human_task index instead of joining every row to complaint.
    conditions = [HumanTask.state == OPEN, HumanTask.instance_id.not_in(avoidance.avoided_instances(_USERNAME))]
    if queue == "mine":
        conditions.append(HumanTask.assignee_id == _USER_ID)
    elif queue == "available":     # read from the partial index ix_human_task_unclaimed
        conditions += [HumanTask.assignee_id.is_(None), HumanTask.role.in_(_ROLES),
                       avoidance.not_independent_of(_USER_ID, _USERNAME, independent)]
    else:
        conditions.append(HumanTask.unstaffed.is_(True))
    if step:
        conditions.append(HumanTask.element_id == _STEP)
    if overdue:
        conditions.append(HumanTask.due_at < _OVERDUE_AT)
    on_complaint = ([Complaint.channel == _CHANNEL] if channel else []) + \
        ([Complaint.category == _CATEGORY] if category else [])
    return tuple(conditions), tuple(on_complaint)


def _count_query(queue: Queue):
    query = select(func.count()).select_from(HumanTask).where(*queue.task_conditions)
    if queue.complaint_conditions:
        query = query.join(Complaint, COMPLAINT_OF_TASK).where(*queue.complaint_conditions)
    return query


@lru_cache(maxsize=128)
def _kept_count_query(shape):
    return _count_query(of_shape(shape))


def of_shape(shape) -> Queue:
    """The queue `queue_query` builds for `shape` (its conditions, without a user's values): for statements that
    combine queues and are kept per shape, as `count` and `page` keep theirs."""
    return Queue(*_conditions(*shape), shape=shape)


def _kept(queue: Queue) -> bool:
    """Whether statements kept for the queue's shape hold its conditions (not a Queue changed after queue_query)."""
    if queue.shape is None:
        return False
    task_conditions, complaint_conditions = _conditions(*queue.shape)
    return queue.task_conditions is task_conditions and queue.complaint_conditions is complaint_conditions


def joint_params(*found: Queue) -> dict:
    """The bind values of several queues whose conditions one statement combines: they must agree on each name."""
    joint = {}
    for queue in found:
        for name, value in queue.params.items():
            if joint.setdefault(name, value) != value:
                raise ValueError(f"queues combined in one statement bind {name} to different values")
    return joint


def count(session, queue: Queue) -> int:
    """How many tasks a queue holds, exactly; joins complaint only when a filter needs it. The role queue's and
    "my tasks"' are read from their index alone. (The top bar counts its queues in one statement of its own:
    notifications.top_bar_counts.)"""
    query = _kept_count_query(queue.shape) if _kept(queue) else _count_query(queue)
    return session.execute(query, queue.params).scalar_one()


def complaint_columns(names) -> Bundle:
    """Just these columns of a task's complaint, for `page`."""
    return Bundle("complaint", *(getattr(Complaint, name) for name in names))


def task_columns(names) -> Bundle:
    """Just these columns of a task, for `page`."""
    return Bundle("task", *(getattr(HumanTask, name) for name in names))


def page(session, queue: Queue, page_no, per_page, order="due", task=HumanTask, complaint=Complaint):
    """(rows of (task, complaint), total) of one page, soonest deadline first (tasks without a
    deadline last) unless `order` is "received" (oldest complaint first) or "created" (oldest task first).
    `task` and `complaint` are what each row holds of them: the ORM objects, or a Bundle of some columns
    (`complaint_columns`, `api.rows.RowDump.bundle`), made once: loading 50 complaints whole cost more than the
    queries. The complaint is None for a task without one (its business key names no complaint)."""
    query = _kept_page_query(queue.shape, order, task, complaint) if _kept(queue) else \
        _page_query(queue, order, task, complaint)
    window = {"queue_offset": (page_no - 1) * per_page, "queue_limit": per_page}
    rows = session.execute(query, {**queue.params, **window}).all()
    total = rows[0][3] if rows else 0 if page_no <= 1 else count(session, queue)
    return [(task, found if complaint_id is not None else None) for task, found, complaint_id, _total in rows], total


def _page_query(queue: Queue, order, task, complaint):
    """When neither the filters nor the order need the complaint, the page's tasks are chosen first and
    only they are joined to their complaints: PostgreSQL otherwise joined every task of the queue
    before sorting (28 ms for a queue of 2,500 at 100,000 complaints, 10 ms so). The total comes with
    the page's rows (a subquery evaluated once); `page` counts in a statement of its own only for an empty
    page after the first (an empty first page is an empty queue)."""
    columns = (task, complaint, Complaint.id, _count_query(queue).correlate(None).scalar_subquery())  # never per row
    if queue.complaint_conditions or order == "received":
        return select(*columns).outerjoin(Complaint, COMPLAINT_OF_TASK) \
            .where(*queue.task_conditions, *queue.complaint_conditions) \
            .order_by(*ORDERS[order]).offset(_OFFSET).limit(_LIMIT)
    chosen = select(HumanTask.id).where(*queue.task_conditions).order_by(*ORDERS[order]).offset(_OFFSET).limit(_LIMIT)
    return select(*columns).outerjoin(Complaint, COMPLAINT_OF_TASK) \
        .where(HumanTask.id.in_(chosen)).order_by(*ORDERS[order])


@lru_cache(maxsize=256)     # `task` and `complaint`: the callers' module-level bundles, or the classes
def _kept_page_query(shape, order, task, complaint):
    return _page_query(of_shape(shape), order, task, complaint)


def waiting_steps(session) -> list:
    """(element id, task name) of every step an open task waits at (the name of one of its tasks), in element order,
    for the step filters of the team page and the complaint list: a loose scan of ix_human_task_element (state,
    element_id, …), one index probe per step, instead of a GROUP BY over every open task (13 ms for 10,000 open
    tasks at 100,000 complaints on PostgreSQL)."""
    return session.execute(_waiting_steps_query()).all()


@lru_cache(maxsize=1)
def _waiting_steps_query():
    first = select(func.min(HumanTask.element_id)).where(HumanTask.state == OPEN).scalar_subquery()
    steps = select(first.label("element_id")).cte("steps", recursive=True)
    following = select(func.min(HumanTask.element_id)).where(
        HumanTask.state == OPEN, HumanTask.element_id > steps.c.element_id).scalar_subquery()
    steps = steps.union_all(select(following).where(steps.c.element_id.is_not(None)))
    # The name of the step's first task by the index's order (min(name) read every open task of the step: 300 ms).
    name = select(HumanTask.name).where(HumanTask.state == OPEN, HumanTask.element_id == steps.c.element_id) \
        .order_by(HumanTask.due_at).limit(1).scalar_subquery()
    return select(steps.c.element_id, name).where(steps.c.element_id.is_not(None)).order_by(steps.c.element_id)


def open_steps(session, user) -> list:
    """(element id, task name) of the steps the tasks of the user's queues wait at ("mine" and "available"),
    for the queue page's step filter: from the role queue's partial index and the assignee index (a DISTINCT over
    every open task of the user's roles took 17 ms at 100,000 complaints). 回避 is left to the queues themselves:
    a step offered here may show an empty list."""
    held = HumanTask.assignee_id == user.id
    unclaimed = HumanTask.assignee_id.is_(None) & HumanTask.role.in_(sorted(user.roles))
    mine = select(HumanTask.element_id).where(HumanTask.state == OPEN, held)
    available = select(HumanTask.element_id).where(HumanTask.state == OPEN, unclaimed)
    steps = union(mine, available).subquery()
    # The name of the step's first task in the queues (by the element index's order: a few rows read).
    name = select(HumanTask.name).where(HumanTask.state == OPEN, HumanTask.element_id == steps.c.element_id,
                                        or_(held, unclaimed)).order_by(HumanTask.due_at).limit(1).scalar_subquery()
    return session.execute(select(steps.c.element_id, name).order_by(steps.c.element_id)).all()

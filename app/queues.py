"""The task queues: indexed reads of human_task joined to complaint, never a workflow.

A task belongs to the complaint whose number is its business key: the tasks of every process that
runs for a complaint (its main one and those beside it) show with that complaint's columns."""
from dataclasses import dataclass

from sqlalchemy import func, literal, or_, select, union
from sqlalchemy.orm import Bundle

from . import avoidance
from .errors import AppError
from .models import Complaint, HumanTask

# "unstaffed": open tasks nobody may work (flagged at creation), for the supervisors.
QUEUES = ("mine", "available", "unstaffed")
MAX_PAGE = 100_000      # the highest page number asked for: an OFFSET every database can hold

# 'open' written into the statement, not bound: a database takes a partial index (models.OPEN_SQL,
# UNCLAIMED_SQL) only when the query's own text implies the index's condition, which a parameter does not
# (PostgreSQL's prepared statements plan for any value).
OPEN = literal("open", literal_execute=True)

# The complaint of a task: one lookup on complaint's unique number per task row.
COMPLAINT_OF_TASK = Complaint.number == HumanTask.business_key

# human_task.due_at keeps a missed deadline, so overdue tasks sort first.
ORDERS = {
    "due": (HumanTask.due_at.asc().nulls_last(), HumanTask.created_at),
    "received": (Complaint.received_at.asc(), HumanTask.created_at),
    "created": (HumanTask.created_at.asc(),),
}


@dataclass(frozen=True)
class Queue:
    """The conditions of one queue: on human_task alone, and on the task's complaint (filters)."""
    task_conditions: tuple
    complaint_conditions: tuple = ()


def queue_query(user, queue, *, step=None, channel=None, category=None, overdue_at=None,
                independent=()) -> Queue:
    """Open tasks assigned to the user ("mine"), unclaimed tasks of the user's roles ("available"), or
    tasks nobody may work ("unstaffed", for supervisors: the caller checks). Optional filters: the task's
    element id (`step`), the complaint's channel and category, and only tasks whose deadline is before
    `overdue_at`. `independent`: the processes whose tasks are not offered to anyone who took part in
    the complaint's handling (config INDEPENDENT_PROCESSES)."""
    # 回避: leave out every instance of the (few) complaints about a claim this user handled. A small
    # NOT IN keeps the queue and its count on the human_task index instead of joining every row to complaint.
    conditions = [HumanTask.state == OPEN, HumanTask.instance_id.not_in(avoidance.avoided_instances(user))]
    if queue == "mine":
        conditions.append(HumanTask.assignee_id == user.id)
    elif queue == "available":     # read from the partial index ix_human_task_unclaimed
        conditions += [HumanTask.assignee_id.is_(None), HumanTask.role.in_(sorted(user.roles)),
                       avoidance.not_independent_of(user, independent)]
    elif queue == "unstaffed":
        conditions.append(HumanTask.unstaffed.is_(True))
    else:
        raise AppError("queue must be one of: " + ", ".join(QUEUES), fields={"queue": "unknown queue"},
                       code="bad_query")
    if step:
        conditions.append(HumanTask.element_id == step)
    if overdue_at is not None:
        conditions.append(HumanTask.due_at < overdue_at)
    on_complaint = ([Complaint.channel == channel] if channel else []) + \
        ([Complaint.category == category] if category else [])
    return Queue(tuple(conditions), tuple(on_complaint))


def _count_query(queue: Queue):
    query = select(func.count()).select_from(HumanTask).where(*queue.task_conditions)
    if queue.complaint_conditions:
        query = query.join(Complaint, COMPLAINT_OF_TASK).where(*queue.complaint_conditions)
    return query


def count(session, queue: Queue) -> int:
    """How many tasks a queue holds, exactly; joins complaint only when a filter needs it (the nav shows
    these counts on every page). The role queue's and "my tasks"' are read from their index alone."""
    return session.execute(_count_query(queue)).scalar_one()


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
    (`complaint_columns`, `api.rows.RowDump.bundle`): loading 50 complaints whole cost more than the
    queries. The complaint is None for a task without one (its business key names no complaint).

    When neither the filters nor the order need the complaint, the page's tasks are chosen first and
    only they are joined to their complaints: PostgreSQL otherwise joined every task of the queue
    before sorting (28 ms for a queue of 2,500 at 100,000 complaints, 10 ms so). The total comes with
    the page's rows (a subquery evaluated once), a statement of its own only for an empty page."""
    window = ((page_no - 1) * per_page, per_page)
    columns = (task, complaint, Complaint.id, _count_query(queue).correlate(None).scalar_subquery())  # never per row
    if queue.complaint_conditions or order == "received":
        query = select(*columns).outerjoin(Complaint, COMPLAINT_OF_TASK) \
            .where(*queue.task_conditions, *queue.complaint_conditions) \
            .order_by(*ORDERS[order]).offset(window[0]).limit(window[1])
    else:
        chosen = select(HumanTask.id).where(*queue.task_conditions).order_by(*ORDERS[order]) \
            .offset(window[0]).limit(window[1])
        query = select(*columns).outerjoin(Complaint, COMPLAINT_OF_TASK) \
            .where(HumanTask.id.in_(chosen)).order_by(*ORDERS[order])
    rows = session.execute(query).all()
    total = rows[0][3] if rows else count(session, queue)
    return [(task, found if complaint_id is not None else None) for task, found, complaint_id, _total in rows], total


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

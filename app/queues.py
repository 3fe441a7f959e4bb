"""The task queues: indexed reads of human_task joined to complaint, never a workflow.

A task belongs to the complaint whose number is its business key: the tasks of every process that
runs for a complaint (its main one and those beside it) show with that complaint's columns."""
from dataclasses import dataclass

from sqlalchemy import func, select

from . import avoidance
from .errors import AppError
from .models import Complaint, HumanTask

# "unstaffed": open tasks nobody may work (flagged at creation), for the supervisors.
QUEUES = ("mine", "available", "unstaffed")
MAX_PAGE = 100_000      # the highest page number asked for: an OFFSET every database can hold

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
    conditions = [HumanTask.state == "open", HumanTask.instance_id.not_in(avoidance.avoided_instances(user))]
    if queue == "mine":
        conditions.append(HumanTask.assignee_id == user.id)
    elif queue == "available":
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


def count(session, queue: Queue) -> int:
    """How many tasks a queue holds; joins complaint only when a filter needs it (the nav shows
    these counts on every page)."""
    query = select(func.count()).select_from(HumanTask).where(*queue.task_conditions)
    if queue.complaint_conditions:
        query = query.join(Complaint, COMPLAINT_OF_TASK).where(*queue.complaint_conditions)
    return session.execute(query).scalar_one()


def page(session, queue: Queue, page_no, per_page, order="due"):
    """(rows of (task, complaint), total) of one page, soonest deadline first (tasks without a
    deadline last) unless `order` is "received" (oldest complaint first) or "created" (oldest task first)."""
    query = select(HumanTask, Complaint).outerjoin(Complaint, COMPLAINT_OF_TASK) \
        .where(*queue.task_conditions, *queue.complaint_conditions)
    rows = session.execute(query.order_by(*ORDERS[order]).limit(per_page).offset((page_no - 1) * per_page)).all()
    return rows, count(session, queue)

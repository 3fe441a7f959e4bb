"""The task queues: indexed reads of human_task joined to complaint, never a workflow."""
from sqlalchemy import func, or_, select

from .errors import AppError
from .models import Complaint, HumanTask

QUEUES = ("mine", "available")

# human_task.due_at keeps a missed deadline, so overdue tasks sort first.
ORDERS = {
    "due": (HumanTask.due_at.asc().nulls_last(), HumanTask.created_at),
    "received": (Complaint.received_at.asc(), HumanTask.created_at),
    "created": (HumanTask.created_at.asc(),),
}


def queue_query(user, queue, *, step=None, channel=None, category=None, overdue_at=None):
    """Open tasks assigned to the user ("mine"), or unclaimed tasks of the user's roles ("available").
    Optional filters: the task's element id (`step`), the complaint's channel and category, and only
    tasks whose deadline is before `overdue_at`."""
    q = select(HumanTask, Complaint).outerjoin(Complaint, Complaint.instance_id == HumanTask.instance_id) \
        .where(HumanTask.state == "open")
    if queue == "mine":
        q = q.where(HumanTask.assignee_id == user.id)
    elif queue == "available":
        q = q.where(HumanTask.assignee_id.is_(None), HumanTask.role.in_(sorted(user.roles)),
                    or_(Complaint.claim_handler.is_(None), Complaint.claim_handler != user.username))
    else:
        raise AppError("queue must be 'mine' or 'available'", fields={"queue": "unknown queue"}, code="bad_query")
    if step:
        q = q.where(HumanTask.element_id == step)
    if channel:
        q = q.where(Complaint.channel == channel)
    if category:
        q = q.where(Complaint.category == category)
    if overdue_at is not None:
        q = q.where(HumanTask.due_at < overdue_at)
    return q


def count(session, query) -> int:
    return session.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def page(session, query, page_no, per_page, order="due"):
    """(rows, total) of one page, soonest deadline first (tasks without a deadline last) unless
    `order` is "received" (oldest complaint first) or "created" (oldest task first)."""
    total = count(session, query)
    rows = session.execute(query.order_by(*ORDERS[order]).limit(per_page).offset((page_no - 1) * per_page)).all()
    return rows, total

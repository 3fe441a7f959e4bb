"""The task queues: indexed reads of human_task joined to complaint, never a workflow."""
from sqlalchemy import func, or_, select

from .errors import AppError
from .models import Complaint, HumanTask

QUEUES = ("mine", "available")


def queue_query(user, queue):
    """Open tasks assigned to the user ("mine"), or unclaimed tasks of the user's roles ("available")."""
    q = select(HumanTask, Complaint).outerjoin(Complaint, Complaint.instance_id == HumanTask.instance_id) \
        .where(HumanTask.state == "open")
    if queue == "mine":
        return q.where(HumanTask.assignee_id == user.id)
    if queue == "available":
        return q.where(HumanTask.assignee_id.is_(None), HumanTask.role.in_(sorted(user.roles)),
                       or_(Complaint.claim_handler.is_(None), Complaint.claim_handler != user.username))
    raise AppError("queue must be 'mine' or 'available'", fields={"queue": "unknown queue"}, code="bad_query")


def page(session, query, page_no, per_page):
    """(rows, total) of one page, soonest deadline first; tasks without a deadline last."""
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.created_at)
                           .limit(per_page).offset((page_no - 1) * per_page)).all()
    return rows, total

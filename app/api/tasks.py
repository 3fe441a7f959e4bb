from flask import current_app, g, request
from sqlalchemy import func, or_, select

from .. import complaints
from ..errors import AppError, Forbidden, NotFound
from ..extensions import db
from ..models import AuditEvent, Complaint, HumanTask, User
from . import bp
from .auth import require
from .complaints import READERS, complaint_view
from .errors import body
from .schemas import AuditOut, TaskOut

WORKERS = ("customer_service", "claims_specialist", "management", "training")


def runtime():
    return current_app.extensions["runtime"]


def queue_query(user, queue):
    q = select(HumanTask, Complaint).outerjoin(Complaint, Complaint.instance_id == HumanTask.instance_id) \
        .where(HumanTask.state == "open")
    if queue == "mine":
        return q.where(HumanTask.assignee_id == user.id)
    if queue == "available":
        return q.where(HumanTask.assignee_id.is_(None), HumanTask.role.in_(sorted(user.roles)),
                       or_(Complaint.claim_handler.is_(None), Complaint.claim_handler != user.username))
    raise AppError("queue must be 'mine' or 'available'", fields={"queue": "unknown queue"}, code="bad_query")


@bp.get("/tasks")
@require(*WORKERS)
def list_tasks():
    queue = request.args.get("queue", "mine")
    try:
        page = max(int(request.args.get("page", 1)), 1)
        per_page = min(max(int(request.args.get("per_page", 50)), 1), 200)
    except ValueError:
        raise AppError("page and per_page must be integers", code="bad_query")
    q = queue_query(g.user, queue)
    total = db.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    rows = db.session.execute(q.order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.created_at)
                              .limit(per_page).offset((page - 1) * per_page)).all()
    items, schema = [], TaskOut()
    for task, complaint in rows:
        item = schema.dump(task)
        if complaint is not None:
            item["complaint"] = complaints.masked({
                "number": complaint.number, "customer_name": complaint.customer_name,
                "channel": complaint.channel, "category": complaint.category,
                "received_at": complaint.received_at.isoformat()})
        items.append(item)
    return {"queue": queue, "page": page, "per_page": per_page, "total": total, "items": items}


def _task_for(user, task_id, write=True) -> HumanTask:
    task = db.session.get(HumanTask, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    if task.role not in user.roles and (write or "compliance" not in user.roles):
        raise Forbidden(f"this task belongs to the role {task.role}", code="wrong_role")
    return task


@bp.get("/tasks/<task_id>")
@require(*READERS)
def get_task(task_id):
    task = _task_for(g.user, task_id, write=False)
    complaint = db.session.execute(select(Complaint).where(Complaint.instance_id == task.instance_id)) \
        .scalar_one_or_none()
    history = db.session.execute(select(AuditEvent).where(AuditEvent.instance_id == task.instance_id,
                                                          AuditEvent.action == "task_completed")
                                 .order_by(AuditEvent.id)).scalars().all()
    return {"task": TaskOut().dump(task), "form": runtime().form_schema(task),
            "complaint": complaint_view(complaint, g.user) if complaint else None,
            "decisions": AuditOut(many=True).dump(history)}


@bp.post("/tasks/<task_id>/claim")
@require(*WORKERS)
def claim(task_id):
    return {"task": TaskOut().dump(runtime().claim(task_id, g.user))}


@bp.post("/tasks/<task_id>/unclaim")
@require(*WORKERS)
def unclaim(task_id):
    return {"task": TaskOut().dump(runtime().unclaim(task_id, g.user))}


@bp.post("/tasks/<task_id>/assign")
@require(*WORKERS)
def assign(task_id):
    username = body().get("username")
    assignee = db.session.execute(select(User).where(User.username == str(username))).scalar_one_or_none()
    if assignee is None:
        raise NotFound(f"no user {username}", fields={"username": "unknown user"})
    return {"task": TaskOut().dump(runtime().assign(task_id, g.user, assignee))}


@bp.post("/tasks/<task_id>/complete")
@require(*WORKERS)
def complete(task_id):
    payload = body()
    data = payload.get("data")
    if not isinstance(data, dict):
        raise AppError('the body must be {"data": {...form fields...}}', fields={"data": "must be an object"},
                       code="malformed_body")
    _task_for(g.user, task_id)
    change = runtime().complete(task_id, g.user, data)
    return {"completed": task_id, "complaint_number": change.instance.business_key,
            "instance_status": change.instance.status,
            "next_tasks": TaskOut(many=True).dump(change.created_tasks)}

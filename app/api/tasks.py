from typing import Optional

from flask import current_app, g, request
from sqlalchemy import bindparam, select

from .. import avoidance, complaints, queues
from ..errors import AppError, Forbidden, NotFound
from ..extensions import db
from ..models import AuditEvent, Complaint, HumanTask, ProcessInstance, User
from ..permissions import TASK_READERS, WORKERS
from . import bp
from .auth import require
from .complaints import HISTORY_ROW, TASK_OUT, TASK_ROW, complaint_view
from .errors import form_data, load
from .rows import RowDump
from .schemas import AssignIn, QueueComplaintOut

# A queue page is read as plain rows (queues.page with these bundles, built once), never ORM objects.
QUEUE_COMPLAINT_ROW = RowDump(QueueComplaintOut(), Complaint)
QUEUE_COLUMNS = {"task": TASK_ROW.bundle("task"), "complaint": QUEUE_COMPLAINT_ROW.bundle("complaint")}
ASSIGN_IN = AssignIn()


def runtime():
    return current_app.extensions["runtime"]


@bp.get("/tasks")
@require(*WORKERS)
def list_tasks():
    queue = request.args.get("queue", "mine")
    if queue == "unstaffed" and not runtime().is_supervisor(g.user):
        raise Forbidden("only supervisors see the tasks nobody may work", code="wrong_role")
    try:
        page = min(max(int(request.args.get("page", 1)), 1), queues.MAX_PAGE)
        per_page = min(max(int(request.args.get("per_page", 50)), 1), 200)
    except ValueError:
        raise AppError("page and per_page must be integers", code="bad_query")
    query = queues.queue_query(g.user, queue, independent=current_app.config["INDEPENDENT_PROCESSES"])
    rows, total = queues.page(db.session, query, page, per_page, **QUEUE_COLUMNS)
    items = []
    for task, complaint in rows:
        item = TASK_ROW.one(task)
        if complaint is not None:
            item["complaint"] = complaints.masked(QUEUE_COMPLAINT_ROW.one(complaint))
        items.append(item)
    return {"queue": queue, "page": page, "per_page": per_page, "total": total, "items": items}


# A task with what its checks and its page need, in one statement: its instance's version (for the form),
# the 回避 rule's facts, and its complaint (the one its business key names).
TASK_IN_CONTEXT = avoidance.with_facts(
    select(HumanTask, ProcessInstance.version_id, Complaint, *avoidance.FACTS)
    .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)).where(HumanTask.id == bindparam("task_id"))
# The decisions taken so far on the task's instance, the columns the page shows.
DECISIONS = select(*HISTORY_ROW.columns).where(
    AuditEvent.instance_id == bindparam("instance_id"), AuditEvent.action == "task_completed").order_by(AuditEvent.id)


def _task_for(user, task_id, write=True) -> tuple[HumanTask, int, Optional[Complaint]]:
    """(task, its instance's version id, its complaint) if `user` may read it (or work it, `write`)."""
    found = db.session.execute(TASK_IN_CONTEXT, {"task_id": str(task_id)}).one_or_none()
    if found is None:
        raise NotFound(f"no task {task_id}")
    task, version_id, complaint, *facts = found
    if task.role not in user.roles and (write or "compliance" not in user.roles):
        raise Forbidden(f"this task belongs to the role {task.role}", code="wrong_role")
    reason = runtime().exclusion(user, task, facts)     # 回避 keeps the user out of reads as well as writes
    if reason:
        raise Forbidden(reason, code="excluded")
    return task, version_id, complaint


@bp.get("/tasks/<task_id>")
@require(*TASK_READERS)
def get_task(task_id):
    task, version_id, complaint = _task_for(g.user, task_id, write=False)
    history = db.session.execute(DECISIONS, {"instance_id": task.instance_id}).all()
    # Dumped before complaint_view, whose audit commit would expire the task.
    out = {"task": TASK_OUT.dump(task), "form": runtime().form_schema(task, version_id),
           "decisions": HISTORY_ROW.many(history)}
    # The complaint is shown with the task of its main instance (as before: a side process's task
    # stands on its own).
    mine = complaint is not None and complaint.instance_id == task.instance_id
    return {**out, "complaint": complaint_view(complaint, g.user) if mine else None}


@bp.post("/tasks/<task_id>/claim")
@require(*WORKERS)
def claim(task_id):
    return {"task": TASK_OUT.dump(runtime().claim(task_id, g.user))}


@bp.post("/tasks/<task_id>/unclaim")
@require(*WORKERS)
def unclaim(task_id):
    return {"task": TASK_OUT.dump(runtime().unclaim(task_id, g.user))}


@bp.post("/tasks/<task_id>/assign")
@require(*WORKERS)
def assign(task_id):
    username = load(ASSIGN_IN)["username"]
    assignee = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if assignee is None:
        raise NotFound(f"no user {username}", fields={"username": "unknown user"})
    return {"task": TASK_OUT.dump(runtime().assign(task_id, g.user, assignee))}


@bp.post("/tasks/<task_id>/complete")
@require(*WORKERS)
def complete(task_id):
    data = form_data()
    change = runtime().complete(task_id, g.user, data)      # checks the role and 回避 on the task it locks
    return {"completed": task_id, "complaint_number": change.instance.business_key,
            "instance_status": change.instance.status,
            "next_tasks": TASK_OUT.dump(change.created_tasks, many=True)}

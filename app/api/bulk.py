"""Bulk assign / release (POST /api/v1/tasks/bulk), for supervisors: the runtime's assign or unclaim once
per task, each in its own transaction, so that each task keeps the rules of a single call (its role,
回避, still open); the answer says per task whether it was done and, if not, why (the error a single
call would have given). Nothing is half-done silently: a task is either changed or named as refused."""
from flask import current_app, g
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from ..config import Config
from ..errors import AppError, Forbidden, NotFound
from ..extensions import db
from ..input_rules import CleanTextSchema
from ..models import HumanTask, User
from . import bp
from .auth import require
from .errors import load

# The roles the configuration marks as supervisors; the view asks the runtime too (it decides).
SUPERVISORS = tuple(sorted(code for code, spec in Config.ROLES.items() if spec.get("supervisor")))
ACTIONS = ("assign", "release")
MAX_BULK = 200                  # tasks per request: each is a transaction of its own
TASK_ID_MAX = 64                # human_task.id is 36 characters (a UUID); anything longer is no task


class BulkTasksIn(CleanTextSchema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS), metadata={
        "description": "assign: give every task to `username`; release: put every task back in its role's queue"})
    task_ids = fields.List(fields.String(validate=validate.Length(min=1, max=TASK_ID_MAX)), required=True,
                           validate=validate.Length(min=1, max=MAX_BULK), metadata={
                               "description": f"the tasks, 1 to {MAX_BULK}; an id given twice is acted on once"})
    username = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64),
                             metadata={"description": "whom to give the tasks to (required with assign)"})

    @validates_schema
    def assignee_named(self, data, **kwargs):
        if data.get("action") == "assign" and not data.get("username"):
            raise ValidationError("required with action assign", "username")


class BulkErrorOut(Schema):
    code = fields.String(required=True, metadata={"description": "as a single call's error: wrong_role, excluded, "
                                                                 "assignee_lacks_role, assignee_inactive, "
                                                                 "task_completed, not_held, …"})
    message = fields.String(required=True)


class BulkResultOut(Schema):
    task_id = fields.String(required=True)
    complaint_number = fields.String(required=True, allow_none=True)
    ok = fields.Boolean(required=True)
    error = fields.Nested(BulkErrorOut, required=True, allow_none=True, metadata={"description": "null when ok"})


class BulkTasksOut(Schema):
    action = fields.String(required=True, metadata={"enum": list(ACTIONS)})
    username = fields.String(required=True, allow_none=True)
    done = fields.Integer(required=True, metadata={"description": "how many tasks were changed"})
    refused = fields.Integer(required=True, metadata={"description": "how many were not (see their error)"})
    results = fields.List(fields.Nested(BulkResultOut), required=True,
                          metadata={"description": "one per distinct task id, in the order given"})


BULK_IN, BULK_OUT = BulkTasksIn(), BulkTasksOut()


def runtime():
    return current_app.extensions["runtime"]


@bp.post("/tasks/bulk")
@require(*SUPERVISORS)
def bulk_tasks():
    if not runtime().is_supervisor(g.user):
        raise Forbidden("only a supervisor can assign or release tasks in bulk", code="wrong_role")
    data = load(BULK_IN)
    assignee = None
    if data["action"] == "assign":
        assignee = db.session.execute(select(User).where(User.username == data["username"])).scalar_one_or_none()
        if assignee is None:
            raise NotFound(f"no user {data['username']}", fields={"username": "unknown user"})
    results = [_act(task_id, data["action"], g.user, assignee) for task_id in dict.fromkeys(data["task_ids"])]
    done = sum(1 for r in results if r["ok"])
    return BULK_OUT.dump({"action": data["action"], "username": assignee.username if assignee else None,
                          "done": done, "refused": len(results) - done, "results": results})


def _act(task_id, action, user, assignee) -> dict:
    task = db.session.get(HumanTask, task_id)
    number = task.business_key if task is not None else None
    try:
        if task is None:
            raise NotFound(f"no task {task_id}")
        if action == "assign":
            runtime().assign(task_id, user, assignee)
        else:
            # A task nobody holds is refused rather than "released" again (an event that changes nothing).
            if task.state == "open" and task.assignee_id is None and not runtime().exclusion(user, task):
                raise AppError("nobody holds this task: it is already in its role's queue", code="not_held")
            runtime().unclaim(task_id, user)
    except AppError as err:
        db.session.rollback()
        return {"task_id": task_id, "complaint_number": number, "ok": False,
                "error": {"code": err.code, "message": err.message}}
    return {"task_id": task_id, "complaint_number": number, "ok": True, "error": None}

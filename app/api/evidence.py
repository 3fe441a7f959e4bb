"""Evidence files and notes of a complaint (app/evidence/, app/notes.py): list, upload (multipart), download
(checked against its hash, audited) and add a note. A form's file field takes the SHA-256 of a file uploaded
here (POST /complaints/{number}/evidence, or /tasks/{task_id}/evidence for a case without a complaint)."""
from flask import Response, current_app, g, request
from sqlalchemy import select

from .. import complaints, notes
from ..errors import Conflict, Forbidden, InvalidData, NotFound
from ..evidence import files
from ..evidence.store import store_of
from ..extensions import db
from ..input_guard import accepts_uploads
from ..models import Complaint, EvidenceFile, HumanTask
from ..permissions import EVIDENCE_READERS, HANDLERS, NOTE_WRITERS, READERS, WORKERS
from . import bp
from .auth import require
from .complaints import complaint_view
from .errors import load
from .schemas import NoteIn, NoteOut

def _full_names(complaint) -> bool:
    return complaint_view(complaint, g.user)["personal_data"] == "full"


@bp.get("/complaints/<number>/evidence")
@require(*READERS)
def list_evidence(number):
    complaint = complaints.readable(db.session, g.user, number)
    return {"items": files.entries(db.session, complaint.number, _full_names(complaint))}


@bp.post("/complaints/<number>/evidence")
@require(*HANDLERS)
@accepts_uploads
def upload_evidence(number):
    complaint = complaints.readable(db.session, g.user, number)
    if complaint.status != "open":
        raise Conflict("the complaint is closed: its case file takes no more files", code="complaint_closed")
    return _upload(files.Case.of(complaint.number, complaint.instance_id), None, _full_names(complaint))


@bp.post("/tasks/<task_id>/evidence")
@require(*WORKERS)
@accepts_uploads
def upload_task_evidence(task_id):
    task = db.session.get(HumanTask, task_id)
    if task is None:
        raise NotFound("no such task")
    runtime = current_app.extensions["runtime"]
    if task.role not in g.user.roles:
        raise Forbidden("this task belongs to another role", code="wrong_role")
    if runtime.exclusion(g.user, task):
        raise Forbidden("you must stand aside from this complaint (回避)", code="excluded")
    if task.state != "open" or task.assignee_id not in (None, g.user.id):
        raise Conflict("only the open task's holder (or, unclaimed, its role) attaches files to it",
                       code="task_not_open")
    return _upload(files.Case.of(task.business_key, task.instance_id), task.id, False)


def _upload(case, task_id, full_names):
    upload = request.files.get("file")
    if upload is None:
        raise InvalidData("send the file as multipart/form-data field `file`", fields={"file": "required"})
    field = request.form.get("field") or None
    if field is not None and len(field) > 100:
        raise InvalidData("field names a form field: at most 100 characters", fields={"field": "too long"})
    row = files.attach(db.session, store_of(current_app), files.Limits.from_config(current_app.config), case, g.user,
                       upload.filename or "", upload.read(), task_id=task_id, field=field,
                       description=request.form.get("description", ""))
    db.session.commit()
    return next(e for e in files.entries(db.session, case.key, full_names) if e["id"] == row.id), 201


@bp.get("/evidence/<int:file_id>")
@require(*EVIDENCE_READERS)
def download_evidence(file_id):
    row = db.session.get(EvidenceFile, file_id)
    if row is None:
        raise NotFound("no such file")
    complaint = db.session.execute(select(Complaint).where(Complaint.number == row.case_key)).scalar_one_or_none()
    if complaint is None:
        raise NotFound("no such file")          # files of other cases are read on their task pages
    complaints.readable(db.session, g.user, complaint.number)
    content = files.read(store_of(current_app), row)
    files.record_view(db.session, g.user.username, row, files.Case.of(complaint.number, complaint.instance_id))
    db.session.commit()
    return Response(content, mimetype=row.media_type, headers={"Cache-Control": "private, no-store"})


@bp.post("/complaints/<number>/notes")
@require(*NOTE_WRITERS)
def add_note(number):
    complaint = complaints.readable(db.session, g.user, number)
    data = load(NoteIn(), "the note")
    event = notes.add(db.session, g.user.username, complaint.number, complaint.instance_id, data["text"])
    db.session.commit()
    return NoteOut().dump({"actor": event.actor, "at": event.at, "text": event.data["text"]}), 201

"""Uploading evidence, downloading it (checked against its hash, audited) and writing notes."""
from urllib.parse import urlsplit

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _, ngettext
from sqlalchemy import select

from ... import notes
from ...errors import AppError, InvalidData
from ...evidence import files, kinds
from ...extensions import db
from ...input_guard import accepts_uploads
from ...models import Complaint, EvidenceFile, HumanTask
from ...permissions import EVIDENCE_READERS, HANDLERS, NOTE_WRITERS, TASK_READERS, WORKERS
from ..common import attachment, readable_or_abort, roles_required, runtime, safe_next
from ..evidence_ui import case_of_complaint, case_of_task, posted_files, read_refusal, store, take
from ..ui import error_message, has_any, me, pii_roles, stand_aside
from . import bp


def _report(attached, refused):
    if attached:
        flash(ngettext("%(num)d file attached.", "%(num)d files attached.", len(attached)), "success")
    for sentence in refused:
        flash(sentence, "error")
    if not attached and not refused:
        flash(_("Choose a file to attach first. Nothing was stored."), "error")


@bp.post("/complaints/<number>/evidence")
@roles_required(*HANDLERS)
@accepts_uploads
def attach_to_complaint(number):
    found = readable_or_abort(number)
    if found.status != "open":
        flash(_("This complaint is closed: its case file takes no more files. Nothing was stored."), "error")
        return redirect(url_for("complaints.complaint", number=found.number, _anchor="evidence"))
    attached, refused = take(case_of_complaint(found), me(), posted_files("files"),
                             description=request.form.get("description", ""))
    db.session.commit()
    _report(attached, refused)
    return redirect(url_for("complaints.complaint", number=found.number, _anchor="evidence"))


@bp.post("/tasks/<task_id>/evidence")
@roles_required(*WORKERS)
@accepts_uploads
def attach_to_task(task_id):
    task = _task_for(me(), task_id, work=True)
    if task.state != "open" or task.assignee_id not in (None, me().id):
        flash(_("Only the open task's holder (or, unclaimed, its role) attaches files to it. Nothing was stored."),
              "error")
        return redirect(url_for("tasks.task", task_id=task.id))
    attached, refused = take(case_of_task(task), me(), posted_files("files"), task_id=task.id,
                             description=request.form.get("description", ""))
    db.session.commit()
    _report(attached, refused)
    return redirect(url_for("tasks.task", task_id=task.id, _anchor="evidence"))


def _task_for(user, task_id, work=False) -> HumanTask:
    task = db.session.get(HumanTask, task_id)
    if task is None:
        abort(404)
    reason = runtime().exclusion(user, task)
    if reason:                                      # 回避 closes reading as well as working
        abort(403, description=stand_aside(reason))
    if task.role not in user.roles and (work or "compliance" not in user.roles):
        abort(403, description=_("This task belongs to another role."))
    return task


@bp.get("/evidence/<int:file_id>")
@roles_required(*EVIDENCE_READERS, *TASK_READERS)
def download(file_id):
    row = db.session.get(EvidenceFile, file_id) or abort(404)
    user = me()
    case = _readable_case(user, row)
    try:
        content = files.read(store(), row)
    except AppError as err:
        flash(read_refusal(err) or error_message(err), "error")
        return redirect(safe_next(_same_site_path(request.referrer), url_for("tasks.home")))
    files.record_view(db.session, user.username, row, case)
    db.session.commit()
    name = kinds.safe_download_name(row.filename, row.media_type) if has_any(user, pii_roles()) else \
        f"file-{row.id}.{kinds.extension(row.media_type)}"          # the name may be personal data
    return Response(content, mimetype=row.media_type,
                    headers={"Content-Disposition": attachment(name), "Cache-Control": "private, no-store"})


def _same_site_path(referrer):
    """The path of a referring page of this site (browsers send the whole URL), else None."""
    parts = urlsplit(referrer or "")
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _readable_case(user, row) -> files.Case:
    """The case of `row` if `user` may read its files: a complaint's under 回避 and for EVIDENCE_READERS;
    another instance's for whoever may read one of its tasks."""
    complaint = db.session.execute(select(Complaint).where(Complaint.number == row.case_key)).scalar_one_or_none()
    if complaint is not None:
        readable_or_abort(complaint.number)
        if not has_any(user, EVIDENCE_READERS):
            abort(403, description=_("Your role may see that this file exists but not open it."))
        return case_of_complaint(complaint)
    task = db.session.execute(select(HumanTask).where(HumanTask.id == row.task_id)).scalar_one_or_none() \
        if row.task_id else None
    if task is None:
        abort(403)
    return case_of_task(_task_for(user, task.id))


@bp.post("/complaints/<number>/notes")
@roles_required(*NOTE_WRITERS)
def add_note(number):
    found = readable_or_abort(number)
    try:
        notes.add(db.session, me().username, found.number, found.instance_id, request.form.get("text", ""))
        db.session.commit()
    except InvalidData as err:
        db.session.rollback()
        flash({"note_empty": _("Write the note first. Nothing was saved."),
               "note_too_long": _("A note has at most %(num)d characters. Nothing was saved.", num=notes.NOTE_MAX),
               }.get(err.code, _("The note contains characters that are not allowed. Nothing was saved.")), "error")
        return redirect(url_for("complaints.complaint", number=found.number, _anchor="notes"))
    flash(_("Note added."), "success")
    return redirect(url_for("complaints.complaint", number=found.number, _anchor="notes"))

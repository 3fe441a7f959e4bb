"""Evidence files and notes as the pages use them (the complaint page, a task's form, the evidence
blueprint): the case of a complaint or task, uploads taken from a request, refusals as translated
sentences, and a case's files as listed for the reader (names masked unless the role sees personal data)."""
from flask import current_app, request
from flask_babel import gettext as _

from .. import evidence, input_guard
from ..errors import AppError
from ..evidence import files
from ..evidence.fields import file_fields
from ..evidence.store import store_of
from ..extensions import db
from ..permissions import EVIDENCE_READERS
from .ui import fmt_datetime, has_any, pii_roles


def case_of_complaint(complaint) -> files.Case:
    return files.Case.of(complaint.number, complaint.instance_id)


def case_of_task(task) -> files.Case:
    return files.Case.of(task.business_key, task.instance_id)


def store():
    return store_of(current_app)


def limits() -> files.Limits:
    return files.Limits.from_config(current_app.config)


def refusal(err: AppError, filename: str) -> str:
    """Why `filename` was not attached, as a sentence in the page's language."""
    fields = getattr(err, "details", None) or {}
    message = {
        "evidence_empty": _("“%(name)s” is empty. Nothing was stored."),
        "evidence_too_big": _("“%(name)s” is too large (%(size)s); at most %(max)s per file. Nothing was stored."),
        "evidence_program": _("“%(name)s” is a program, not a document, whatever its name says. Nothing was stored."),
        "evidence_type": _("“%(name)s” is of a type that is not accepted (%(type)s). Accepted are PDF, Word, Excel, "
                           "pictures, sound and video recordings, and plain text. Nothing was stored."),
        "evidence_duplicate": _("“%(name)s” is already attached to this case (since %(time)s). Nothing was stored."),
        "evidence_infected": _("The virus scanner found malware in “%(name)s”. Nothing was stored."),
        "evidence_scan_failed": _("“%(name)s” could not be checked for viruses, so it was not accepted; try again "
                                  "later or tell an administrator. Nothing was stored."),
        "evidence_description": _("“%(name)s” was not attached: its description may hold at most %(limit)d "
                                  "characters. Nothing was stored."),
        "evidence_store_unavailable": _("“%(name)s” was not attached: the evidence store is unavailable. Nothing "
                                        "was stored; try again later or tell an administrator."),
    }.get(err.code)
    if message is None:
        return _("“%(name)s” was not attached: %(reason)s", name=filename, reason=err.message)
    return message % {"name": filename, "size": size_text(fields.get("size")), "max": size_text(fields.get("max_bytes")),
                      "type": fields.get("media_type", "?"), "time": fmt_datetime(fields.get("uploaded_at")),
                      "limit": files.DESCRIPTION_MAX}


def read_refusal(err: AppError) -> str | None:
    """Why a stored file cannot be handed out (app.evidence.files.read), as a sentence; None for other errors."""
    if err.code == "evidence_store_unavailable":
        return _("The evidence store is unavailable, so its files cannot be handed out now. Try again later or "
                 "tell an administrator.")
    if err.code in ("evidence_missing", "evidence_corrupt"):
        return _("This file cannot be handed out: its stored content is missing or does not match the hash "
                 "recorded when it was attached. Tell an administrator.")
    return None


def size_text(size) -> str:
    return input_guard.size_text(size) if isinstance(size, int) else "?"


def take(case: files.Case, user, uploads, *, task_id=None, field=None, description="") -> tuple[list, list[str]]:
    """Attach each uploaded file (werkzeug FileStorage) to `case`, each in a savepoint of its own: a refused
    one leaves nothing and does not stop the others. Returns (rows attached, refusal sentences)."""
    attached, refused = [], []
    for upload in uploads:
        if upload is None or (not upload.filename and not upload.content_length):
            continue
        name = upload.filename or ""
        content = upload.read()
        try:
            with db.session.begin_nested():
                attached.append(files.attach(db.session, store(), limits(), case, user, name, content,
                                             task_id=task_id, field=field, description=description))
        except AppError as err:
            refused.append(refusal(err, name or _("(no name)")))
    return attached, refused


def posted_files(name: str) -> list:
    return [f for f in request.files.getlist(name) if f and (f.filename or f.content_length)]


def listing(rows, user) -> list[dict]:
    """A case's files for `user`: names in full only for roles that see personal data in full (a file
    name often holds the customer's name), and whether they may download them."""
    full_names, readable = has_any(user, pii_roles()), has_any(user, EVIDENCE_READERS)
    return [{"row": r, "name": r.filename if full_names else _("File %(num)d (.%(ext)s)", num=i,
                                                                  ext=evidence.kinds.extension(r.media_type)),
             "size": size_text(r.size), "downloadable": readable} for i, r in enumerate(rows, 1)]


# ---- file fields of a task's form (app/evidence/fields.py) ------------------------------------------------
UPLOAD_SUFFIX = "__upload"      # the file input of a field; its kept files come back as hidden values of the field


def take_form_files(schema, task, user, data: dict, raw: dict) -> dict:
    """Attach the files posted in the form's file fields to the task's case (committed at once, so that a
    form shown again with another field's error keeps them), add their hashes to `data` and `raw`, and
    return {field: refusal sentences} for the files refused."""
    errors = {}
    for name, (_accept, multiple) in file_fields(schema).items():
        attached, refused = take(case_of_task(task), user, posted_files(name + UPLOAD_SUFFIX), task_id=task.id,
                                 field=name)
        hashes = [row.sha256 for row in attached]
        if hashes:
            kept = raw.get(name) or []
            raw[name] = (kept + hashes) if multiple else hashes[-1:]
            data[name] = raw[name] if multiple else raw[name][0]
        if refused:
            errors[name] = " ".join(refused)
    db.session.commit()
    return errors


def name_kept_files(form_fields, task, user):
    """Show each kept file of the form by its name (as the reader may see it), not its hash."""
    names = {item["row"].sha256: item["name"] for item in listing(files.files_of(db.session, case_of_task(task).key),
                                                                  user)}
    for f in form_fields:
        f["kept"] = [(sha, names.get(sha, label)) for sha, label in f.get("kept", [])]
    return form_fields

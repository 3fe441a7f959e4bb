"""My work (two queues, and for management the tasks nobody may work), claim / unclaim / assign, and a
task with its form. Every state change goes through the runtime's verbs, exactly as the JSON API does."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import queues
from ...errors import AppError, InvalidData
from ...extensions import db
from ...forms import drop_inapplicable, field_errors
from ...input_rules import find_problems
from ...models import AuditEvent, Complaint, HumanTask, User
from ...permissions import ADMINS, READERS, TASK_READERS, WORKERS
from ...timeutil import utcnow
from .. import formrender, formrender_codes, queue_rows
from ...input_guard import accepts_uploads
from ..common import colleagues, page_arg, roles_required, runtime, safe_next, task_read_refusal
from ..evidence_ui import name_kept_files, take_form_files
from ..ui import (CHANNEL_LABELS, error_message, forms_of_version, has_any, lang, latest_forms, me, pii_roles,
                  step_label, time_left)
from . import bp, drafts
from .context import complaint_context

SORTS = ("due", "received", "created")
DRAFT_BUTTON = "_save_draft"       # the task form's second submit button: keep the input, submit nothing
SEEN = "_task_version"             # the task form's hidden field: the task's row_version it was shown at

bp.record_once(drafts.register)    # a completed or withdrawn task's drafts go with it


def _task_or_404(task_id) -> HumanTask:
    task = db.session.get(HumanTask, str(task_id))
    if task is None:
        abort(404, description=_("There is no task with this number. It may have been removed."))
    return task


def _back(default=None):
    return redirect(safe_next(request.form.get("next"), default))


def _flash_failure(err, task_id, assignee=None):
    """Roll the failed change back and say why, as the task stands now."""
    db.session.rollback()
    flash(error_message(err, db.session.get(HumanTask, str(task_id)), assignee), "error")


# ---- home: my work ----------------------------------------------------------------------------------
@bp.get("/")
@roles_required()
def home():
    user = me()
    if not has_any(user, WORKERS):
        if has_any(user, READERS):
            return redirect(url_for("complaints.search"))
        if has_any(user, ADMINS):
            return redirect(url_for("admin.users"))
        return render_template("tasks/no_work.html")
    filters = {"step": request.args.get("step") or None, "channel": request.args.get("channel") or None,
               "category": request.args.get("category") or None,
               "overdue": request.args.get("overdue") == "1"}
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "due"
    steps = queues.open_steps(db.session, user)
    categories = formrender_codes.filter_options("category") or [(c, c) for c in db.session.execute(
        select(Complaint.category).where(Complaint.status == "open").distinct()
        .order_by(Complaint.category).limit(200)).scalars()]
    forms = latest_forms()
    return render_template("tasks/home.html", lists=_queue_lists(user, filters, sort, forms), filters=filters,
                           sort=sort, steps=[(e, step_label(e, n, forms)) for e, n in dict(steps).items()],
                           categories=categories, channels=CHANNEL_LABELS)


def _queue_lists(user, filters, sort, forms) -> dict:
    """One page of each queue the user sees: mine, available, and for management unstaffed."""
    now = utcnow()
    per_page = current_app.config["WEB_PER_PAGE"]
    rows = queue_rows.QueueRows(has_any(user, pii_roles()), forms, now)
    lists = {}
    queues_shown = (("mine", "pm"), ("available", "pa"))
    if runtime().is_supervisor(user):
        queues_shown += (("unstaffed", "pu"),)
    for queue, arg in queues_shown:
        page_no = page_arg(arg)
        query = queues.queue_query(user, queue, step=filters["step"], channel=filters["channel"],
                                   category=filters["category"], overdue_at=now if filters["overdue"] else None,
                                   independent=current_app.config["INDEPENDENT_PROCESSES"])
        found, total = queues.page(db.session, query, page_no, per_page, order=sort,
                                   task=queue_rows.TASK_COLUMNS, complaint=queue_rows.COMPLAINT_COLUMNS)
        lists[queue] = {"rows": [rows.row(task, complaint) for task, complaint in found],
                        "total": total, "page": page_no, "pages": max((total + per_page - 1) // per_page, 1),
                        "arg": arg}
    return lists


# ---- claim, unclaim, assign --------------------------------------------------------------------------
@bp.post("/tasks/<task_id>/claim")
@roles_required(*WORKERS)
def claim(task_id):
    user, task = me(), _task_or_404(task_id)
    if task.role not in user.roles:
        abort(403, description=_("This task belongs to another role."))
    try:
        runtime().claim(task_id, user)
    except AppError as err:
        _flash_failure(err, task_id)
        return _back()
    flash(_("You claimed “%(step)s” of %(number)s.", step=step_label(task.element_id, task.name),
            number=task.business_key), "success")
    return redirect(url_for("tasks.task", task_id=task_id))


@bp.post("/tasks/<task_id>/unclaim")
@roles_required(*WORKERS)
def unclaim(task_id):
    task = _task_or_404(task_id)
    try:
        runtime().unclaim(task_id, me())
    except AppError as err:
        _flash_failure(err, task_id)
        return _back(url_for("tasks.task", task_id=task_id))
    flash(_("“%(step)s” of %(number)s is back in the open queue.", step=step_label(task.element_id, task.name),
            number=task.business_key), "success")
    return _back()


@bp.post("/tasks/<task_id>/assign")
@roles_required(*WORKERS)
def assign(task_id):
    user, task = me(), _task_or_404(task_id)
    if not runtime().is_supervisor(user):
        abort(403, description=_("Only management can reassign tasks."))
    username = request.form.get("username", "")
    assignee = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    default = url_for("complaints.complaint", number=task.business_key) if task.business_key else None
    if assignee is None:
        flash(_("Choose a colleague to give the task to."), "error")
        return _back(default)
    try:
        runtime().assign(task_id, user, assignee)
    except AppError as err:
        _flash_failure(err, task_id, assignee)
        return _back(default)
    flash(_("“%(step)s” of %(number)s is now with %(name)s.", step=step_label(task.element_id, task.name),
            number=task.business_key, name=assignee.display_name), "success")
    return _back(default)


# ---- a task: its form beside the complaint -------------------------------------------------------------
@bp.route("/tasks/<task_id>", methods=["GET", "POST"])
@roles_required(*TASK_READERS)
@accepts_uploads
def task(task_id):
    user, task = me(), _task_or_404(task_id)
    own_role = task.role in user.roles
    reason = task_read_refusal(user, task, runtime().is_supervisor(user))
    if reason:
        abort(403, description=reason)
    schema = runtime().form_schema(task) or {}
    errors, raw, status = {}, None, 200
    if request.method == "POST":
        if not own_role or not has_any(user, WORKERS):
            abort(403, description=_("You can read this task but not work on it."))
        refusal = _refusal(task, user)
        if refusal or _changed_since_shown(task):
            return _stale(task, user, schema, refusal)
        data, raw = formrender.coerce(schema, request.form)
        refused = take_form_files(schema, task, user, data, raw)
        if request.form.get(DRAFT_BUTTON):
            errors = _save_draft(schema, task, user, raw, refused)
            if not errors:
                return redirect(url_for("tasks.task", task_id=task_id))
        else:
            data = drop_inapplicable(schema, data)      # a hidden field's stale answer is not sent
            errors = formrender.explain(schema, field_errors(schema, data)) if schema else {}
            errors.update(refused)
        if not errors:
            try:
                change = runtime().complete(task_id, user, data)
            except InvalidData as err:
                db.session.rollback()
                errors = formrender.explain(schema, err.fields) or {"_": error_message(err)}
            except AppError as err:
                db.session.rollback()         # lost a race (completed, claimed, changed meanwhile)
                task = _task_or_404(task_id)
                return _stale(task, user, schema, error_message(err, task), (data, raw))
            else:
                _flash_completed(task, change)
                return redirect(url_for("tasks.home"))
        status = 422
    return _page(task, user, schema, raw, errors), status


def _page(task, user, schema, raw=None, errors=None, stale=None):
    """The task page: the form (with `raw` as typed, else the user's draft) while the user may work the
    task, else the task as it stands; `stale`: why a submission was not taken, with what was typed."""
    own_role = task.role in user.roles
    supervisor = runtime().is_supervisor(user)
    due = task.due_at
    can_work = (task.state == "open" and own_role and has_any(user, WORKERS)
                and task.assignee_id in (None, user.id))
    draft = drafts.find(db.session, task, user) if can_work else None
    if raw is None and draft is not None:
        raw = draft.data
    form_fields = name_kept_files(formrender.fields(schema, raw, errors, lang()), task, user) if schema else []
    return render_template("tasks/task.html", task=task, schema=schema, title=formrender.titles(schema, lang()),
                           intro=formrender.instructions(schema, lang(), user.roles), draft=draft,
                           fields=form_fields, errors=errors or {}, can_work=can_work, own_role=own_role,
                           submitted=_submitted(task, schema), is_supervisor=supervisor, stale=stale,
                           colleagues=colleagues(task) if supervisor else [], seen=SEEN,
                           task_due=due, left=time_left(due), **complaint_context(user, task))


# ---- a form sent for a task that changed since it was shown ----------------------------------------------
def _refusal(task, user):
    """Why this user's submission cannot be taken now (the task is closed, or someone else holds it), or None."""
    if task.state != "open":
        return _closed_message(task)
    if task.assignee_id not in (None, user.id):
        return error_message(AppError("", code="not_assignee"), task)
    return None


def _changed_since_shown(task) -> bool:
    """The form was shown for an earlier state of the task (claimed, released, given to someone, its deadline
    moved) than the one it has now. A post without the form's version (a script, a page older than the
    field) is not compared."""
    seen = request.form.get(SEEN)
    return seen is not None and seen != str(task.row_version)


def _stale(task, user, schema, message, sent=None):
    """A submission not taken because the task changed meanwhile keeps what the user typed: the form again,
    filled in as it was sent, while they may still work the task (to check and send again); else the task
    as it stands, with the typed values to copy. A post without the form's version, or the same answers
    sent again for a task they completed with them (a double click), loses nothing: the message and the
    task page, as before. `sent`: (data, raw) as the route read them (with the files it took), else read
    from the form."""
    data, raw = sent or formrender.coerce(schema, request.form)
    data = drop_inapplicable(schema, data)
    if request.form.get(SEEN) is None or _same_as_completed(task, user, data):
        flash(message, "error")
        return redirect(url_for("tasks.task", task_id=task.id))
    may_work = task.state == "open" and task.assignee_id in (None, user.id)
    typed = [] if may_work else _typed_rows(schema, data)
    stale = {"message": message or _("This task changed while you were filling in the form (it was claimed, "
                                      "released or given to someone, or its deadline moved)."),
             "typed": typed, "text": "\n".join(f"{label}: {value}" for _name, label, value in typed)}
    return _page(task, user, schema, raw if may_work else None, stale=stale), 409


def _typed_rows(schema, data) -> list:
    """(name, label, value) of what was typed, file fields left out (files are not kept from a refused post)."""
    props = schema.get("properties", {})
    kept = {k: v for k, v in data.items() if formrender.widget(props.get(k, {})) not in ("file", "files")}
    return formrender.describe_data(schema, kept, lang())


def _same_as_completed(task, user, data) -> bool:
    if task.state != "completed" or task.completed_by_id != user.id:
        return False
    event = _completion(task)
    return event is not None and (event.data.get("form_data") or {}) == data


def _save_draft(schema, task, user, raw, refused) -> dict:
    """Keep the user's input as their draft of the task (only app.input_rules are checked: no NUL etc.);
    {field: message} when it cannot be kept."""
    errors = formrender.explain(schema, find_problems(raw))
    errors.update(refused)
    if errors:
        return errors
    try:
        drafts.save(db.session, task, user, raw)
        try:
            db.session.commit()
        except IntegrityError:          # the same user's first draft saved twice at once: the other one won
            db.session.rollback()
            drafts.save(db.session, task, user, raw)
            db.session.commit()
    except AppError as err:             # the task closed meanwhile: what was typed is shown again, not kept
        db.session.rollback()
        return {"_": error_message(err, task)}
    flash(_("Your draft is saved; nothing was submitted. It is here when you come back."), "success")
    return {}


def _submitted(task, schema):
    """What was entered when the task was completed (rows of the form's data), or None."""
    if task.state != "completed":
        return None
    event = _completion(task)
    if event is None:
        return None
    return formrender.describe_data(schema, event.data.get("form_data") or {}, lang())


def _completion(task):
    """The audit event of the task's completion, or None."""
    return db.session.execute(select(AuditEvent).where(AuditEvent.task_id == task.id,
                                                       AuditEvent.action == "task_completed")
                              .order_by(AuditEvent.id.desc()).limit(1)).scalar_one_or_none()


def _closed_message(task):
    code = "task_completed" if task.state == "completed" else "task_cancelled"
    return error_message(AppError("", code=code), task)


def _flash_completed(task, change):
    forms = forms_of_version(change.instance.version_id)
    nxt = "、".join(step_label(t.element_id, t.name, forms) for t in change.created_tasks)
    done = step_label(task.element_id, task.name, forms)
    if nxt:
        flash(_("“%(step)s” of %(number)s is done. Next: %(next)s.", step=done, number=task.business_key,
                next=nxt), "success")
    elif change.instance.status == "completed" and change.record is not None:
        flash(_("“%(step)s” of %(number)s is done. The complaint is closed.", step=done,
                number=task.business_key), "success")
    else:
        flash(_("“%(step)s” of %(number)s is done.", step=done, number=task.business_key), "success")

"""The pages: my work (two queues), claim/unclaim/assign, a task with its form, register a complaint,
search, a complaint with its deadlines and timeline, and the language switch. Every state change
goes through the runtime's verbs, exactly as the JSON API does."""
from functools import wraps

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import login_required
from flask_wtf.csrf import CSRFError
from sqlalchemy import or_, select

from .. import avoidance, complaints, queues
from ..errors import AppError, Forbidden, InvalidData, NotFound
from ..extensions import db
from ..forms import field_errors
from ..input_rules import BAD_TEXT
from ..models import AuditEvent, Complaint, Deadline, HumanTask, ProcessInstance, User
from ..permissions import READERS, REGISTRARS, WORKERS, allow, public
from ..timeutil import utcnow
from . import bp, formrender
from .auth import safe_next
from .ui import (CHANNEL_LABELS, error_message, fmt_datetime, forms_of_version, has_any, lang,
                 latest_forms, me, message_label, pii_roles, role_label, step_label, time_left)

SORTS = ("due", "received", "created")

HIDDEN_BY_DEFAULT = {"personal_data_viewed"}


def runtime():
    return current_app.extensions["runtime"]


def roles_required(*roles):
    """Logged in, with at least one of the roles (else 403); with no roles, any logged-in user."""
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if roles and not has_any(me(), roles):
                abort(403)
            return view(*args, **kwargs)
        return allow(wrapper, roles)
    return decorator


def _int_arg(name, default=1):
    try:
        return min(max(int(request.args.get(name, default)), 1), queues.MAX_PAGE)
    except ValueError:
        return default


def _task_or_404(task_id) -> HumanTask:
    task = db.session.get(HumanTask, str(task_id))
    if task is None:
        abort(404, description=_("There is no task with this number. It may have been removed."))
    return task


def _back(default=None):
    return redirect(safe_next(request.form.get("next"), default))


STAND_ASIDE = _l("You handled the original claim of this complaint and must stand aside (回避).")


def _excluded_reason(user, task):
    """The exclusion rules (e.g. 回避) that keep this user off this task, as a translated sentence."""
    return str(STAND_ASIDE) if runtime().exclusion(user, task) else None


def readable_or_abort(number) -> Complaint:
    """complaints.readable as a page: a translated 404 when there is no such complaint, 403 under 回避."""
    try:
        return complaints.readable(db.session, me(), number)
    except NotFound:
        abort(404, description=_("There is no complaint %(number)s. Check the number or search again.",
                                 number=number))
    except Forbidden:
        abort(403, description=str(STAND_ASIDE))


# ---- home: my work ----------------------------------------------------------------------------------
@bp.get("/")
@roles_required()
def home():
    user = me()
    if not has_any(user, WORKERS):
        if has_any(user, READERS):
            return redirect(url_for("web.search"))
        return render_template("web/no_work.html")
    now = utcnow()
    filters = {"step": request.args.get("step") or None, "channel": request.args.get("channel") or None,
               "category": request.args.get("category") or None,
               "overdue": request.args.get("overdue") == "1"}
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "due"
    per_page = current_app.config["WEB_PER_PAGE"]
    pii = has_any(user, pii_roles())
    forms = latest_forms()
    lists = {}
    queues_shown = (("mine", "pm"), ("available", "pa"))
    if runtime().is_supervisor(user):
        queues_shown += (("unstaffed", "pu"),)
    for queue, arg in queues_shown:
        page_no = _int_arg(arg)
        query = queues.queue_query(user, queue, step=filters["step"], channel=filters["channel"],
                                   category=filters["category"], overdue_at=now if filters["overdue"] else None)
        rows, total = queues.page(db.session, query, page_no, per_page, order=sort)
        lists[queue] = {"rows": [_queue_row(task, complaint, pii, forms, now, task.due_at)
                                 for task, complaint in rows],
                        "total": total, "page": page_no, "pages": max((total + per_page - 1) // per_page, 1),
                        "arg": arg}
    steps = db.session.execute(
        select(HumanTask.element_id, HumanTask.name).where(
            HumanTask.state == "open",
            or_(HumanTask.role.in_(sorted(user.roles)), HumanTask.assignee_id == user.id))
        .distinct().order_by(HumanTask.element_id)).all()
    categories = db.session.execute(select(Complaint.category).where(Complaint.status == "open")
                                    .distinct().order_by(Complaint.category).limit(200)).scalars().all()
    return render_template("web/home.html", lists=lists, filters=filters, sort=sort,
                           steps=[(e, step_label(e, n, forms)) for e, n in dict(steps).items()],
                           categories=categories, channels=CHANNEL_LABELS)


def _queue_row(task, complaint, pii, forms, now, due):
    customer = None
    if complaint is not None:
        customer = complaint.customer_name if pii else complaints.mask_name(complaint.customer_name)
    return {"task": task, "complaint": complaint, "customer": customer,
            "step": step_label(task.element_id, task.name, forms), "due": due, "left": time_left(due, now)}


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
        db.session.rollback()
        flash(error_message(err, db.session.get(HumanTask, str(task_id))), "error")
        return _back()
    flash(_("You claimed “%(step)s” of %(number)s.", step=step_label(task.element_id, task.name),
            number=task.business_key), "success")
    return redirect(url_for("web.task", task_id=task_id))


@bp.post("/tasks/<task_id>/unclaim")
@roles_required(*WORKERS)
def unclaim(task_id):
    task = _task_or_404(task_id)
    try:
        runtime().unclaim(task_id, me())
    except AppError as err:
        db.session.rollback()
        flash(error_message(err, db.session.get(HumanTask, str(task_id))), "error")
        return _back(url_for("web.task", task_id=task_id))
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
    default = url_for("web.complaint", number=task.business_key) if task.business_key else None
    if assignee is None:
        flash(_("Choose a colleague to give the task to."), "error")
        return _back(default)
    try:
        runtime().assign(task_id, user, assignee)
    except AppError as err:
        db.session.rollback()
        flash(error_message(err, db.session.get(HumanTask, str(task_id)), assignee), "error")
        return _back(default)
    flash(_("“%(step)s” of %(number)s is now with %(name)s.", step=step_label(task.element_id, task.name),
            number=task.business_key, name=assignee.display_name), "success")
    return _back(default)


def colleagues(task) -> list[User]:
    """Whom a supervisor may give this task: active users with its role that 回避 does not exclude."""
    return runtime().eligible_users(task.role, runtime().excluded(task.instance_id))


# ---- a task: its form beside the complaint -------------------------------------------------------------
@bp.route("/tasks/<task_id>", methods=["GET", "POST"])
@roles_required(*READERS)
def task(task_id):
    user, task = me(), _task_or_404(task_id)
    own_role = task.role in user.roles
    if not own_role and "compliance" not in user.roles:
        abort(403, description=_("This task belongs to another role."))
    reason = _excluded_reason(user, task)      # 回避 closes reading as well as working
    if reason:
        abort(403, description=reason)
    schema = runtime().form_schema(task) or {}
    errors, raw, status = {}, None, 200
    if request.method == "POST":
        if not own_role or not has_any(user, WORKERS):
            abort(403, description=_("You can read this task but not work on it."))
        if task.state != "open":
            flash(_closed_message(task), "error")
            return redirect(url_for("web.task", task_id=task_id))
        if task.assignee_id not in (None, user.id):
            flash(error_message(AppError("", code="not_assignee"), task), "error")
            return redirect(url_for("web.task", task_id=task_id))
        data, raw = formrender.coerce(schema, request.form)
        errors = formrender.explain(schema, field_errors(schema, data)) if schema else {}
        if not errors:
            try:
                change = runtime().complete(task_id, user, data)
            except InvalidData as err:
                db.session.rollback()
                errors = formrender.explain(schema, err.fields) or {"_": error_message(err)}
            except AppError as err:
                db.session.rollback()
                flash(error_message(err, db.session.get(HumanTask, str(task_id))), "error")
                return redirect(url_for("web.task", task_id=task_id))
            else:
                _flash_completed(task, change)
                return redirect(url_for("web.home"))
        status = 422
    due = task.due_at
    can_work = (task.state == "open" and own_role and has_any(user, WORKERS)
                and task.assignee_id in (None, user.id))
    ctx = _complaint_context(user, task)
    form_fields = formrender.fields(schema, raw, errors, lang()) if schema else []
    submitted = None
    if task.state == "completed":
        event = db.session.execute(select(AuditEvent).where(AuditEvent.task_id == task.id,
                                                            AuditEvent.action == "task_completed")
                                   .order_by(AuditEvent.id.desc()).limit(1)).scalar_one_or_none()
        if event is not None:
            submitted = formrender.describe_data(schema, event.data.get("form_data") or {}, lang())
    return render_template("web/task.html", task=task, schema=schema, title=formrender.titles(schema, lang()),
                           fields=form_fields, errors=errors, can_work=can_work, own_role=own_role,
                           submitted=submitted, is_supervisor=runtime().is_supervisor(user),
                           colleagues=colleagues(task) if runtime().is_supervisor(user) else [],
                           task_due=due, left=time_left(due), **ctx), status


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
    elif change.instance.status == "completed":
        flash(_("“%(step)s” of %(number)s is done. The complaint is closed.", step=done,
                number=task.business_key), "success")
    else:
        flash(_("“%(step)s” of %(number)s is done.", step=done, number=task.business_key), "success")


def _complaint_context(user, task):
    """The complaint beside a task: personal data as personal_view allows (audited), earlier
    decisions with their data, the highlighted reasons (e.g. of a dissatisfaction), open deadlines
    and the recent history."""
    complaint = db.session.execute(select(Complaint).where(Complaint.instance_id == task.instance_id)) \
        .scalar_one_or_none()
    version_id = db.session.execute(select(ProcessInstance.version_id).where(
        ProcessInstance.id == task.instance_id)).scalar_one()
    forms = forms_of_version(version_id)
    person, full = ({}, False)
    if complaint is not None:
        person, full = complaints.personal_view(db.session, user, complaint,
                                                {k: getattr(complaint, k) for k in complaints.PERSONAL}, pii_roles())
    events = db.session.execute(select(AuditEvent).where(AuditEvent.instance_id == task.instance_id)
                                .order_by(AuditEvent.id)).scalars().all()
    decisions = [_decision(e, forms) for e in events if e.action == "task_completed" and e.task_id != task.id]
    highlight = set(current_app.config["WEB_HIGHLIGHT_FIELDS"])
    highlights = [(d, name, label, value) for d in decisions for name, label, value in d["rows"]
                  if name in highlight and value != "—"]
    deadlines = db.session.execute(select(Deadline).where(Deadline.instance_id == task.instance_id)
                                   .order_by(Deadline.due_at)).scalars().all()
    history = [e for e in events if e.action not in HIDDEN_BY_DEFAULT]
    return {"complaint": complaint, "person": person, "full_personal": full, "decisions": decisions,
            "highlights": list(reversed(highlights)), "deadlines": deadlines, "forms": forms,
            "history": _timeline(history[-30:], forms), "names": _names({e.actor for e in events})}


def _decision(event, forms):
    schema = forms.get(event.element_id) or {}
    return {"event": event, "step": step_label(event.element_id, (event.data or {}).get("name"), forms),
            "rows": formrender.describe_data(schema, (event.data or {}).get("form_data") or {}, lang())}


def _names(usernames) -> dict:
    found = db.session.execute(select(User.username, User.display_name).where(
        User.username.in_(sorted(u for u in usernames if u)))).all()
    return dict(found)


def _timeline(events, forms):
    """Each audit event as (event, step label, detail lines, submitted data rows)."""
    out = []
    for e in events:
        data = e.data or {}
        step = step_label(e.element_id, data.get("name") or data.get("deadline"), forms) if e.element_id else ""
        details, rows = [], []
        if e.action == "task_completed":
            rows = formrender.describe_data(forms.get(e.element_id) or {}, data.get("form_data") or {}, lang())
        elif e.action == "task_created" and data.get("role"):
            details.append(_("for %(role)s", role=role_label(data["role"])))
        elif e.action == "task_assigned":
            details.append(_("to %(name)s", name=data.get("assignee")))
        elif e.action == "task_unclaimed" and data.get("previous_assignee"):
            details.append(_("was with %(name)s", name=data["previous_assignee"]))
        elif e.action in ("deadline_set", "deadline_met", "deadline_missed"):
            step = data.get("deadline") or step
            if data.get("due_at"):
                details.append(_("due %(time)s", time=fmt_datetime(data["due_at"])))
            if data.get("provisional"):
                details.append(_("provisional: the holiday calendar for that year is not published yet"))
        elif e.action == "deadline_recomputed":
            step = data.get("deadline") or step
            details.append(_("from %(was)s to %(now)s", was=fmt_datetime(data.get("was")), now=fmt_datetime(data.get("now"))))
        elif e.action == "customer_message_queued":
            details.append(message_label(data.get("template", "")))
        elif e.action == "instance_started":
            details.append(_("procedure version %(version)s", version=data.get("version")))
        elif e.action == "instance_migrated":
            details.append(_("from version %(old)s to version %(new)s", old=data.get("from_version"),
                             new=data.get("to_version")))
        elif e.action == "instance_error":
            details.append(str(data.get("error", "")))
        out.append({"event": e, "step": step, "details": details, "rows": rows})
    return out


# ---- register a complaint ------------------------------------------------------------------------------
def intake_schema() -> dict:
    """The intake fields (see complaints.ComplaintIn) described like a form schema, for the same macros."""
    handlers = complaints.claim_handlers(db.session)
    return {"type": "object", "required": ["channel", "customer_name", "phone", "policy_number", "category",
                                           "description", "received_at"],
            "properties": {
                "channel": {"type": "string", "title": _("Channel"), "enum": list(CHANNEL_LABELS),
                            "x-enumNames": [str(v) for v in CHANNEL_LABELS.values()], "x-widget": "select"},
                "received_at": {"type": "string", "format": "date-time", "title": _("Received at"),
                                "description": _("When the customer complained (Beijing time).")},
                "customer_name": {"type": "string", "title": _("Customer name"), "maxLength": 100},
                "phone": {"type": "string", "title": _("Phone"), "maxLength": 32, "x-input": "tel"},
                "email": {"type": "string", "title": _("E-mail"), "maxLength": 254, "x-input": "email"},
                "id_number": {"type": "string", "title": _("ID number"), "maxLength": 32},
                "policy_number": {"type": "string", "title": _("Policy number"), "maxLength": 64},
                "claim_number": {"type": "string", "title": _("Claim number"), "maxLength": 64},
                "claim_handler": {"type": "string", "title": _("Handler of the original claim"),
                                  "description": _("They may not see or handle this complaint (回避)."),
                                  "enum": [u.username for u in handlers],
                                  "x-enumNames": [f"{u.display_name} ({u.username})" for u in handlers],
                                  "x-widget": "select"},
                "claim_handler_external": {
                    "type": "string", "title": _("Handler outside the system"), "maxLength": 100,
                    "description": _("Only when the original claim was handled by someone without an account "
                                     "here (e.g. an agency). Recorded for the file; it excludes nobody.")},
                "category": {"type": "string", "title": _("Category"), "maxLength": 64,
                             "description": _("For example 理赔时效 (claim delays), 理赔金额 (amount)."),
                             "x-suggestions": db.session.execute(
                                 select(Complaint.category).distinct().order_by(Complaint.category)
                                 .limit(100)).scalars().all()},
                "description": {"type": "string", "title": _("Description"), "maxLength": 5000,
                                "x-widget": "textarea"},
            }}


INTAKE_MESSAGES = {
    "Missing data for required field.": "required", "Field may not be null.": "required",
    "Not a valid email address.": "email", "not a valid phone number": "phone",
    "received_at is in the future": "future", "received_at is before 2000": "too_old",
    "no such user": "unknown_user", BAD_TEXT: "bad_text", "Not a valid datetime.": "datetime",
    "Not a valid aware datetime.": "datetime", "Must be one of": "choice", "Longer than maximum length": "long",
}


def intake_errors(schema, fields: dict) -> dict:
    out = {}
    for name, message in fields.items():
        kind = next((k for text, k in INTAKE_MESSAGES.items() if text in message), None)
        prop = schema["properties"].get(name, {})
        out[name] = {
            "required": _("This field is required."), "email": _("Not a valid e-mail address."),
            "phone": _("Not a valid phone number."), "future": _("The time received cannot be in the future."),
            "too_old": _("The time received cannot be before the year 2000."),
            "bad_text": _("This text contains characters that are not allowed (such as NUL)."),
            "unknown_user": _("Choose a user from the list; a handler without an account goes in “Handler "
                              "outside the system”."),
            "datetime": _("Enter a date and time."), "choice": _("Choose one of the options."),
            "long": _("At most %(num)d characters.", num=prop.get("maxLength", 0)),
        }.get(kind, message)
    return out


@bp.route("/complaints/new", methods=["GET", "POST"])
@roles_required(*REGISTRARS)
def register():
    schema = intake_schema()
    raw, errors, status = {"received_at": formrender.iso_to_local(utcnow())}, {}, 200
    if request.method == "POST":
        data, raw = formrender.coerce(schema, request.form)
        try:
            complaint, _change = complaints.register(runtime(), db.session, data, me(),
                                                     current_app.config["COMPLAINT_PROCESS"],
                                                     current_app.config["COMPLAINT_NUMBER_FORMAT"])
        except InvalidData as err:
            db.session.rollback()
            errors, status = intake_errors(schema, err.fields), 422
        except AppError as err:
            db.session.rollback()
            flash(error_message(err), "error")
            status = err.status
        else:
            session["registered"] = complaint.number
            flash(_("Complaint %(number)s is registered; its initial review is in the queue.",
                    number=complaint.number), "success")
            for deadline in complaints.missed_at_registration(db.session, complaint):
                flash(_("The time received is already past the deadline “%(name)s” (due %(time)s): it is "
                        "recorded as missed.", name=deadline.name, time=fmt_datetime(deadline.due_at)), "error")
            return redirect(url_for("web.complaint", number=complaint.number))
    by_name = {f["name"]: f for f in formrender.fields(schema, raw, errors, None)}
    return render_template("web/register.html", by=by_name, errors=errors), status


# ---- find and follow a complaint -------------------------------------------------------------------------
@bp.route("/complaints", methods=["GET", "POST"])
@roles_required(*READERS)
def search():
    """The form posts its term, so a phone or ID number never sits in a URL (or an access log); a GET
    with ?q= finds by complaint, policy or claim number only (links, bookmarks)."""
    user = me()
    personal = request.method == "POST"
    q = ((request.form if personal else request.args).get("q") or "").strip()
    if q:
        rows = complaints.search(db.session, user, q, personal=personal)
    else:
        rows = db.session.execute(select(Complaint).where(avoidance.visible_to(user))
                                  .order_by(Complaint.received_at.desc()).limit(50)).scalars().all()
    if q and len(rows) == 1 and rows[0].number == q:
        return redirect(url_for("web.complaint", number=q))
    pii = has_any(user, pii_roles())
    items = [{"c": c, "customer": c.customer_name if pii else complaints.mask_name(c.customer_name),
              "phone": complaints.mask_phone(c.phone)} for c in rows]
    return render_template("web/search.html", q=q, items=items)


@bp.get("/complaints/<number>")
@roles_required(*READERS)
def complaint(number):
    user = me()
    found = readable_or_abort(number)
    person, full = complaints.personal_view(db.session, user, found, {k: getattr(found, k) for k in complaints.PERSONAL},
                                            pii_roles())
    version_id = db.session.execute(select(ProcessInstance.version_id).where(
        ProcessInstance.id == found.instance_id)).scalar_one_or_none()
    forms = forms_of_version(version_id) if version_id else {}
    tasks = db.session.execute(select(HumanTask).where(HumanTask.instance_id == found.instance_id)
                               .order_by(HumanTask.created_at)).scalars().all()
    deadlines = db.session.execute(select(Deadline).where(Deadline.instance_id == found.instance_id)
                                   .order_by(Deadline.due_at, Deadline.id)).scalars().all()
    show_all = request.args.get("all") == "1"
    events = db.session.execute(select(AuditEvent).where(AuditEvent.business_key == found.number)
                                .order_by(AuditEvent.id)).scalars().all()
    hidden = 0 if show_all else sum(1 for e in events if e.action in HIDDEN_BY_DEFAULT)
    shown = events if show_all else [e for e in events if e.action not in HIDDEN_BY_DEFAULT]
    supervisor = runtime().is_supervisor(user)
    open_tasks = [t for t in tasks if t.state == "open"]
    from .procedure import complaint_diagram
    return render_template(
        "web/complaint.html", c=found, person=person, full_personal=full, forms=forms,
        diagram=complaint_diagram(found),
        open_tasks=open_tasks, tasks=tasks, deadlines=deadlines, entries=_timeline(shown, forms),
        hidden=hidden, show_all=show_all, names=_names({e.actor for e in events}),
        just_registered=session.pop("registered", None) == found.number, is_supervisor=supervisor,
        colleagues={t.id: colleagues(t) for t in open_tasks} if supervisor else {})


# ---- language ------------------------------------------------------------------------------------------
@bp.get("/language/<code>")
@public
def language(code):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")))


# ---- errors --------------------------------------------------------------------------------------------
@bp.errorhandler(403)
def forbidden(err):
    return render_template("web/error.html", code=403, title=_("Not allowed"),
                           message=_description(err) or _("Your role does not allow this page or action.")), 403


@bp.errorhandler(404)
def not_found(err):
    return render_template("web/error.html", code=404, title=_("Not found"),
                           message=_description(err) or _("This page does not exist.")), 404


@bp.errorhandler(CSRFError)
def csrf_error(err):
    return render_template("web/error.html", code=400, title=_("The form has expired"),
                           message=_("The form was missing its security token or it has expired (for example "
                                     "after logging out in another tab). Nothing was saved: go back, reload "
                                     "the page and submit again.")), 400


def _description(err):
    """abort(code, description=...) texts are already translated; werkzeug's defaults are not shown."""
    default = type(err).description
    return err.description if err.description and err.description != default else None

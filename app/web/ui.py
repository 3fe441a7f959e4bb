"""Display helpers for the pages: times in Asia/Shanghai, time left to a deadline in working days,
translated labels for codes, step names in the chosen language, and the queue counts in the nav."""
from datetime import datetime, timedelta

from flask import current_app, g
from babel import dates
from flask_babel import get_locale, get_timezone, gettext as _, lazy_gettext as _l, ngettext
from flask_login import current_user
from sqlalchemy import select

from .. import avoidance, notifications, vocab_store
from ..extensions import db
from ..models import ProcessInstance, ProcessVersion
from ..permissions import ADMINS, ANALYSTS, PROCEDURE_READERS, READERS, REGISTRARS, WORKERS, pii_roles  # noqa: F401  (the pages import it from here)
from ..timeutil import utcnow

CHANNEL_LABELS = {"hotline": _l("Hotline"), "website": _l("Website"), "mobile_app": _l("Mobile app"),
                  "email": _l("E-mail"), "other": _l("Other")}
# The same code means different things for a complaint, a task and a deadline.
STATUS_LABELS = {
    "complaint": {"open": _l("In progress"), "closed": _l("Closed")},
    "task": {"open": _l("To do"), "completed": _l("Completed"), "cancelled": _l("Withdrawn")},
    "deadline": {"open": _l("Open"), "met": _l("Met"), "missed": _l("Missed"), "cancelled": _l("Cancelled")},
    "instance": {"running": _l("In progress"), "completed": _l("Completed"), "error": _l("Stopped by an error")},
    # a customer message and each of its deliveries (e-mail, SMS)
    "message": {"queued": _l("Waiting to be sent"), "sending": _l("Sending"), "sent": _l("Delivered"),
                "failed": _l("Could not be delivered"), "not_sent": _l("Never sent (written before delivery existed)")},
}
CHANNEL_NAMES = {"email": _l("E-mail"), "sms": _l("SMS")}
OUTCOME_LABELS = {"resolved": _l("Resolved"), "not_accepted": _l("Not accepted"), "malicious": _l("Malicious"),
                  "withdrawn": _l("Withdrawn by the customer")}
RISK_LABELS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High")}
ACTION_LABELS = {
    "instance_started": _l("Complaint registered, procedure started"),
    "task_created": _l("Task created"),
    "task_claimed": _l("Task claimed"),
    "task_unclaimed": _l("Task released"),
    "task_assigned": _l("Task assigned"),
    "task_completed": _l("Task completed"),
    "task_cancelled": _l("Task withdrawn by the procedure"),
    "task_unstaffed": _l("Nobody may work this task: flagged to management"),
    "task_assignee_unavailable": _l("The user the procedure names cannot take this task: left in the queue"),
    "deadline_set": _l("Deadline set"),
    "deadline_met": _l("Deadline met"),
    "deadline_cancelled": _l("Deadline ended with its task (withdrawn)"),
    "deadline_missed": _l("Deadline missed"),
    "deadline_recomputed": _l("Deadline recomputed"),
    "deadline_confirmed": _l("Provisional deadline confirmed"),
    "customer_message_queued": _l("Message to the customer queued"),
    "personal_data_viewed": _l("Personal data viewed in full"),
    "evidence_attached": _l("Evidence attached"),
    "evidence_viewed": _l("Evidence file opened"),
    "note_added": _l("Internal note"),
    "instance_error": _l("Procedure error"),
    "account_locked": _l("Account locked"),
    "account_unlocked": _l("Account unlocked"),
    "user_created": _l("User created"), "user_updated": _l("User changed"), "user_disabled": _l("User disabled"),
    "user_enabled": _l("User enabled"), "password_reset": _l("Password reset by an administrator"),
    "password_changed": _l("Password changed"), "second_factor_enabled": _l("Second factor turned on"),
    "second_factor_disabled": _l("Second factor turned off"),
    "second_factor_reset": _l("Second factor removed by an administrator"),
    "api_token_issued": _l("API token issued"),
    "login_sso": _l("Logged in through single sign-on"), "login_sso_refused": _l("Single sign-on refused"),
    "sso_user_created": _l("User created through single sign-on"),
    "sso_account_linked": _l("Account linked to single sign-on"),
    "sso_roles_changed": _l("Roles changed by single sign-on"),
    "sso_admin_kept": _l("Administrator role kept (the last administrator)"),
    "job_cancelled": _l("Background job cancelled"), "backup_restored": _l("Backup restored"),
    "instance_migrated": _l("Moved to another version of the procedure"),
    "process_deployed": _l("Procedure version deployed"),
    "message_received": _l("Message received by the procedure"),
    "case_event_sent": _l("Recorded by a handler"),
    "survey_answered": _l("Satisfaction survey answered by the customer"),
    "review_requested": _l("Review (核查) requested"),
    "customer_message_sent": _l("Message delivered to the customer"),
    "customer_message_failed": _l("Message could not be delivered"),
    "customer_message_retry": _l("Message delivery will be retried"),
    "customer_message_undelivered": _l("Customer could not be reached by message"),
}

# Messages to the customer (notify_customer('…') in the BPMN scripts), by template code: (zh, en).
MESSAGE_LABELS = {
    "acknowledgement": ("投诉登记回执", "Complaint registered"),
    "not_accepted": ("不予受理通知", "Notice that the complaint is not accepted"),
    "accepted": ("受理通知", "Complaint accepted"),
    "reopened": ("重新处理通知", "Complaint handled again"),
    "result": ("处理结果通知", "Result of the handling"),
    "satisfaction_survey": ("满意度回访", "Satisfaction survey"),
    "malicious_closed": ("恶意投诉结案通知", "Notice of closing as a malicious complaint"),
    "withdrawn": ("撤诉确认", "Withdrawal confirmed"),
    "review_received": ("核查申请受理通知", "Review request received"),
    "review_result": ("核查结果通知", "Result of the review"),
    "decision_extended": ("延长处理期限通知", "Time limit extended"),
    "appraisal_started": ("中止计时通知", "Clock paused for an appraisal"),
    "appraisal_ended": ("恢复计时通知", "Clock running again after the appraisal"),
    "progress": ("处理进展通知", "Progress"),
    "confirmation_deemed": ("处理结果视为已接受", "Result taken as accepted"),
}


def id_type_labels() -> dict:
    """The identity document types (contact_rules.ID_TYPES) by code, in the page's language."""
    return {"resident_id": _("Resident ID card (居民身份证)"), "passport": _("Passport"),
            "hk_macao_permit": _("Hong Kong/Macao permit (回乡证)"), "taiwan_permit": _("Taiwan permit (台胞证)"),
            "other": _("Other document")}


def id_type_label(code) -> str:
    return id_type_labels().get(code, code or "")


def init_app(app):
    app.jinja_env.globals.update(
        fmt_datetime=fmt_datetime, time_left=time_left, decision_clock=decision_clock, channel_label=channel_label, channel_name=channel_name,
        role_label=role_label, status_label=status_label, outcome_label=outcome_label, risk_label=risk_label,
        action_label=action_label, message_label=message_label, lang=lang, id_type_label=id_type_label)
    app.jinja_env.filters["dt"] = fmt_datetime
    app.context_processor(_nav_context)


def lang() -> str:
    return "en" if str(get_locale()).startswith("en") else "zh"


def fmt_datetime(value, seconds=False) -> str:
    """A UTC datetime in Asia/Shanghai (BABEL_DEFAULT_TIMEZONE), written the locale's way."""
    return datetime_formatter(seconds)(value)


def datetime_formatter(seconds=False):
    """`fmt_datetime` with the page's locale and time zone looked up once, for a page that formats many dates
    (Babel directly, no flask_babel wrapper)."""
    locale, tz = get_locale(), get_timezone()
    pattern = ("d MMM yyyy, HH:mm" if locale.language == "en" else "yyyy年M月d日 HH:mm") + (":ss" if seconds else "")

    def formatted(value) -> str:
        if not value:
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return dates.format_datetime(value, pattern, tzinfo=tz, locale=locale)
    return formatted


def channel_label(code):
    return CHANNEL_LABELS.get(code, code)


def channel_name(code):
    """The channel a message went out on (e-mail, SMS), not the one the complaint came in by."""
    return CHANNEL_NAMES.get(code, code)


def status_label(code, kind):
    return STATUS_LABELS[kind].get(code, code)


def outcome_label(code):
    return OUTCOME_LABELS.get(code, code) if code else "—"


def risk_label(code):
    return RISK_LABELS.get(code, code) if code else "—"


def message_label(code):
    """A customer message's template in the page's language (an unknown code as it is)."""
    labels = MESSAGE_LABELS.get(code)
    return (labels[1] if lang() == "en" else labels[0]) if labels else str(code)


def action_label(code, data=None):
    """An audit event's action in the page's language; the start of a process other than the complaint's
    (e.g. a quarterly review) registers no complaint."""
    if code == "instance_started" and (data or {}).get("process_id") not in (None, current_app.config["COMPLAINT_PROCESS"]):
        return _("Procedure started")
    return ACTION_LABELS.get(code, code)


def role_label(code):
    spec = current_app.config["ROLES"].get(code)
    if not spec:
        return code or "—"
    return spec["en"] if lang() == "en" else spec["zh"]


def calendar():
    """The runtime's working-day calendar (with admin overrides), once per request."""
    if "work_calendar" not in g:
        g.work_calendar = current_app.extensions["runtime"].calendar()
    return g.work_calendar


def decision_clock(complaint, now=None) -> dict:
    """{text, state} of the regulator's clock (监管时限) the diagram keeps on the complaint row: the
    calendar days left until the decision is due, "soon" within the diagram's warning days, "paused"
    while an external appraisal runs (its days do not count). A closed
    complaint whose clock was neither met nor missed (withdrawn) shows none."""
    clock = getattr(complaint, "decision_clock", None)
    due = getattr(complaint, "decision_due_at", None)
    if clock in (None, "stopped") or due is None or (clock not in ("met", "missed") and complaint.status == "closed"):
        return {"text": "—", "state": "none"}
    if clock == "met":
        return {"text": _("Decided in time"), "state": "met"}
    now = now or utcnow()
    if clock == "missed" or due <= now:
        return {"text": _("Regulatory limit passed"), "state": "overdue"}
    days = max((due - now).days, 0)
    text = ngettext("%(num)d day left", "%(num)d days left", days) if days else _("Due today")
    if clock == "paused":       # an external appraisal: the limit shown assumes it ends as expected (R-PAUSE)
        return {"text": _("Paused for an appraisal · %(left)s", left=text), "state": "paused"}
    warning = complaint.decision_warning_days
    soon = warning is not None and now >= due - timedelta(days=warning)
    return {"text": text, "state": "soon" if soon else "ok"}


def time_left(due, now=None) -> dict:
    """{text, state}: state is "none", "ok", "soon" (under one working day or 24 hours left) or
    "overdue"; the text counts working days, or hours when less than a day is left."""
    if due is None:
        return {"text": _("No deadline"), "state": "none"}
    now = now or utcnow()
    cal = calendar()
    if due <= now:
        days = cal.working_days_between(due, now) if now - due >= timedelta(hours=24) else 0
        if days >= 1:
            text = ngettext("Overdue by %(num)d working day", "Overdue by %(num)d working days", days)
        else:
            text = _overdue_short(now - due)
        return {"text": text, "state": "overdue"}
    left = due - now
    days = cal.working_days_between(now, due)
    if left.total_seconds() < 24 * 3600 or days == 0:
        hours = int(left.total_seconds() // 3600)
        if hours >= 1:
            text = ngettext("%(num)d hour left", "%(num)d hours left", hours)
        else:
            text = ngettext("%(num)d minute left", "%(num)d minutes left", max(int(left.total_seconds() // 60), 1))
        return {"text": text, "state": "soon"}
    return {"text": ngettext("%(num)d working day left", "%(num)d working days left", days), "state": "ok"}


def _overdue_short(delta):
    hours = int(delta.total_seconds() // 3600)
    if hours >= 1:
        return ngettext("Overdue by %(num)d hour", "Overdue by %(num)d hours", hours)
    return ngettext("Overdue by %(num)d minute", "Overdue by %(num)d minutes", max(int(delta.total_seconds() // 60), 1))


# ---- forms and step names per process version (versions are immutable: cached for good) -------------
def forms_of_version(version_id) -> dict:
    cache = current_app.extensions.setdefault("web_forms", {})
    if version_id not in cache:
        cache[version_id] = db.session.execute(select(ProcessVersion.forms).where(
            ProcessVersion.id == version_id)).scalar_one_or_none() or {}
    return cache[version_id]


def forms_of_instances(instance_ids) -> dict:
    """The forms of the versions the given instances run on, merged (e.g. a complaint's main instance
    and the processes beside it: a call to the customer, a review)."""
    version_ids = db.session.execute(select(ProcessInstance.version_id).where(
        ProcessInstance.id.in_(sorted(instance_ids)))).scalars().all() if instance_ids else []
    return forms_of_versions(version_ids)


def forms_of_versions(version_ids) -> dict:
    """The forms of these versions, merged (in the order of their ids)."""
    merged = {}
    for version_id in sorted(set(version_ids)):
        merged.update(forms_of_version(version_id))
    return merged


def newest_versions() -> list:
    """The newest deployed version of every process (vocab_store.newest_versions' rows), the complaint process's
    last, so that what is merged from them in this order takes its names where two give one."""
    main, newest = current_app.config["COMPLAINT_PROCESS"], vocab_store.newest_versions(db.session)
    return [newest[process_id] for process_id in sorted(newest, key=lambda p: (p == main, p))]


def latest_forms() -> dict:
    """The forms of the newest deployed version of every process, the complaint process's last (for labels in
    lists, which show the steps of a review or a quarterly review beside the complaint's)."""
    if "latest_forms" not in g:
        g.latest_forms = {}
        for version in newest_versions():
            g.latest_forms.update(forms_of_version(version.id))
    return g.latest_forms


def step_label(element_id, name, forms=None) -> str:
    """A step's name: the diagram's (Chinese) name, in English the form's `x-title-en` if it has one."""
    form = (forms if forms is not None else latest_forms()).get(element_id) or {} if element_id else {}
    if lang() == "en" and form.get("x-title-en"):
        return form["x-title-en"]
    return name or form.get("title") or element_id or "—"


# ---- who may do what ------------------------------------------------------------------------------
def me():
    """The logged-in User model (what the runtime verbs take)."""
    return current_user.user


def has_any(user, roles) -> bool:
    return bool(user.roles & set(roles))


def _nav_context():
    if not current_user.is_authenticated:
        return {}
    user = me()
    counts = None
    if has_any(user, WORKERS):
        counts = notifications.top_bar_counts(db.session, user, utcnow(),
                                              independent=current_app.config["INDEPENDENT_PROCESSES"],
                                              supervisor=current_app.extensions["runtime"].is_supervisor(user))
    return {"nav_counts": counts, "is_worker": has_any(user, WORKERS), "is_reader": has_any(user, READERS),
            "is_registrar": has_any(user, REGISTRARS), "is_procedure_reader": has_any(user, PROCEDURE_READERS),
            "is_analyst": has_any(user, ANALYSTS), "is_admin": has_any(user, ADMINS),
            "step_label": step_label}


def stand_aside(reason: str, name=None) -> str:
    """The 回避 rule that keeps someone off a task (a reason of avoidance.excluded_usernames) as a sentence: said
    of `name`, else to the reader."""
    if avoidance.took_part(reason or ""):
        if name:
            return _("%(name)s took part in handling this complaint and may not work on its review (回避).",
                     name=name)
        return _("You took part in handling this complaint and may not work on its review (回避).")
    if name:
        return _("%(name)s handled the original claim of this complaint and must stand aside (回避).", name=name)
    return _("You handled the original claim of this complaint and must stand aside (回避).")


def error_message(err, task=None, assignee=None) -> str:
    """A runtime error (app.errors.AppError) as a translated sentence for a flash message."""
    code = err.code
    holder = task.assignee.display_name if task is not None and task.assignee is not None else None
    done_by = task.completed_by.display_name if task is not None and task.completed_by is not None else None
    if code == "wrong_role":
        return _("This task belongs to another role.")
    if code == "excluded":
        other = assignee is not None and err.fields.get("user") == assignee.username
        return stand_aside(err.message, assignee.display_name if other else None)
    if code == "already_claimed":
        return _("Someone else claimed this task first (%(name)s). Nothing was changed.", name=holder or "?")
    if code == "not_assignee":
        return _("This task is assigned to %(name)s. Nothing was changed.", name=holder or "?")
    if code == "task_completed":
        return _("This task has already been completed (by %(name)s). Nothing was changed.", name=done_by or "?")
    if code in ("task_cancelled", "task_not_ready"):
        return _("This task is no longer open: the procedure has moved on. Nothing was changed.")
    if code == "concurrent_change":
        return _("Someone else changed this complaint at the same moment. Nothing was saved; reload and try again.")
    if code == "not_withdrawable":
        return _("This complaint can no longer be withdrawn: it is closed or its handling has ended. Nothing was changed.")
    if code == "review_requested":
        return _("A review of this decision was already requested. Nothing was changed.")
    if code == "review_ended":
        return _("The 30 days for asking for a review of this decision are over. Nothing was changed.")
    if code == "review_undecided":
        return _("There is no decision to review yet. Nothing was changed.")
    if code == "review_not_modelled":
        return _("No process handles review requests; tell the process owner. Nothing was changed.")
    if code == "assignee_lacks_role":
        return _("%(name)s does not have the role of this task.",
                 name=assignee.display_name if assignee is not None else "?")
    if code == "assignee_inactive":
        return _("The account of %(name)s is disabled: give the task to someone else.",
                 name=assignee.display_name if assignee is not None else "?")
    if code == "forbidden" and "release" in err.message:
        return _("Only the assignee or management can release this task.")
    if code == "forbidden" and "assign" in err.message:
        return _("Only management can reassign tasks.")
    if code in ("not_now", "not_waiting", "conflict"):
        return _("This is not possible at this stage of the complaint. Nothing was changed.")
    if code in ("role_required", "forbidden"):
        return _("Your role may not do this. Nothing was changed.")
    if code == "not_for_customer":
        return _("This step is the customer's to answer, through their own link. Nothing was changed.")
    if code == "not_found":
        return _("Not found.")
    if code == "invalid_data":
        return _("The form has errors; nothing was saved.")
    if code == "process_error":
        return _("The procedure could not continue after this step; nothing was saved. Tell the process "
                 "owner: %(detail)s", detail=err.message)
    return err.message

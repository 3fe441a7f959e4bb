"""A complaint's audit events as the pages show them (the task page and the complaint page): the
timeline with a step label, detail lines and the submitted data of each event, and an earlier
decision with its form data."""
from flask_babel import gettext as _

from . import formrender
from .evidence_ui import size_text
from .ui import fmt_datetime, lang, message_label, role_label, step_label

# Audit events that the timeline leaves out unless asked for everything.
HIDDEN_BY_DEFAULT = {"personal_data_viewed", "evidence_viewed"}
# What the machinery does around each decision (tasks opened and claimed, clocks set and met): the complaint
# page folds them, so that its timeline reads as decisions, messages, notes and evidence, missed deadlines.
ROUTINE = {"task_created", "task_claimed", "task_unclaimed", "task_cancelled", "deadline_set", "deadline_met",
           "deadline_cancelled", "deadline_confirmed", "deadline_recomputed", "customer_message_sent",
           "customer_message_retry"}


def decision(event, forms) -> dict:
    """A completed task's event with its step label and its submitted data as rows."""
    schema = forms.get(event.element_id) or {}
    return {"event": event, "step": step_label(event.element_id, (event.data or {}).get("name"), forms),
            "rows": formrender.describe_data(schema, (event.data or {}).get("form_data") or {}, lang())}


def timeline(events, forms) -> list[dict]:
    """Each audit event as {event, step label, detail lines, submitted data rows}."""
    out = []
    for e in events:
        data = e.data or {}
        step = step_label(e.element_id, data.get("name") or data.get("deadline"), forms) if e.element_id else ""
        rows = []
        if e.action == "task_completed":
            rows = formrender.describe_data(forms.get(e.element_id) or {}, data.get("form_data") or {}, lang())
        elif e.action == "case_event_sent":        # app.case_events.SENT: the action's form names it
            schema = forms.get(data.get("message")) or {}
            step = formrender.titles(schema, lang())[0] or data.get("message", "")
            rows = formrender.describe_data(schema, data.get("form_data") or {}, lang())
        elif e.action.startswith("deadline_"):
            step = data.get("deadline") or step
        out.append({"event": e, "step": step, "details": _details(e.action, data), "rows": rows})
    return out


def _details(action, data) -> list[str]:
    """The detail lines of one event, in the page's language."""
    details = []
    if action == "task_created" and data.get("role"):
        details.append(_("for %(role)s", role=role_label(data["role"])))
    elif action == "task_assigned":
        details.append(_("to %(name)s", name=data.get("assignee")))
    elif action == "task_unclaimed" and data.get("previous_assignee"):
        details.append(_("was with %(name)s", name=data["previous_assignee"]))
    elif action in ("deadline_set", "deadline_met", "deadline_missed", "deadline_cancelled", "deadline_confirmed"):
        if data.get("due_at"):
            details.append(_("due %(time)s", time=fmt_datetime(data["due_at"])))
        if data.get("provisional"):
            details.append(_("provisional: the holiday calendar for that year is not published yet"))
    elif action == "deadline_recomputed":
        details.append(_("from %(was)s to %(now)s", was=fmt_datetime(data.get("was")), now=fmt_datetime(data.get("now") or data.get("due_at"))))
    elif action == "customer_message_queued":
        details.append(message_label(data.get("template", "")))
    elif action == "instance_started":
        details.append(_("procedure version %(version)s", version=data.get("version")))
    elif action == "instance_migrated":
        details.append(_("from version %(old)s to version %(new)s", old=data.get("from_version"),
                         new=data.get("to_version")))
    elif action == "note_added":
        details.append(data.get("text", ""))
    elif action == "evidence_attached":
        details.append(_("%(type)s, %(size)s, SHA-256 %(hash)s…", type=data.get("media_type"),
                         size=size_text(data.get("size")), hash=str(data.get("sha256", ""))[:12]))
    elif action == "instance_error":
        details.append(str(data.get("error", "")))
    return details

"""The complaint beside a task: personal data as personal_view allows (audited), the earlier decisions
with their data, the highlighted reasons (e.g. of a dissatisfaction), the deadlines and the recent
history."""
from flask import current_app
from sqlalchemy import select

from ... import analysis, complaints
from ...extensions import db
from ...permissions import ANALYSTS
from ...models import AuditEvent, Deadline, ProcessInstance
from ...evidence import files
from ..common import display_names
from ..evidence_ui import case_of_task, listing
from ..timeline import HIDDEN_BY_DEFAULT, decision, timeline
from ..ui import forms_of_version, has_any, pii_roles


def complaint_context(user, task) -> dict:
    """What the task page shows of the task's complaint, as template variables."""
    complaint = complaints.complaint_of(db.session, task.business_key)
    version_id = db.session.execute(select(ProcessInstance.version_id).where(
        ProcessInstance.id == task.instance_id)).scalar_one()
    forms = forms_of_version(version_id)
    person, full = ({}, False)
    if complaint is not None:
        person, full = complaints.personal_view(db.session, user, complaint,
                                                {k: getattr(complaint, k) for k in complaints.PERSONAL}, pii_roles())
    events = db.session.execute(select(AuditEvent).where(AuditEvent.instance_id == task.instance_id)
                                .order_by(AuditEvent.id)).scalars().all()
    decisions = [decision(e, forms) for e in events if e.action == "task_completed" and e.task_id != task.id]
    highlight = set(current_app.config["WEB_HIGHLIGHT_FIELDS"])
    highlights = [(d, name, label, value) for d in decisions for name, label, value in d["rows"]
                  if name in highlight and value != "—"]
    deadlines = db.session.execute(select(Deadline).where(Deadline.instance_id == task.instance_id)
                                   .order_by(Deadline.due_at)).scalars().all()
    history = [e for e in events if e.action not in HIDDEN_BY_DEFAULT]
    return {"complaint": complaint, "person": person, "full_personal": full, "decisions": decisions,
            "highlights": list(reversed(highlights)), "deadlines": deadlines, "forms": forms,
            "history": timeline(history[-30:], forms), "names": display_names({e.actor for e in events}),
            "reports": analysis.reports_of(db.session, task.instance_id), "may_read_analysis": has_any(user, ANALYSTS),
            "evidence": listing(files.files_of(db.session, case_of_task(task).key), user),
            "max_mb": current_app.config["EVIDENCE_MAX_BYTES"] // (1024 * 1024)}

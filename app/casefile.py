"""A complaint's complete case file (C-3.5.1): the record, every decision with who and when,
deadlines met or missed, the messages sent, and the diagram version(s) it ran on."""
from sqlalchemy import select

from .complaints import instances_of
from .evidence.files import entries as evidence_entries
from .models import (AuditEvent, Deadline, Delivery, HumanTask, OutboxMessage, ProcessInstance, ProcessVersion,
                     SurveyResponse)


def _iso(at):
    return at.isoformat() if at else None


def deliveries_by_message(session, messages) -> dict:
    """{message id: [Delivery, …]} of `messages`, by one query."""
    found = {}
    if messages:
        for d in session.execute(select(Delivery).where(Delivery.message_id.in_([m.id for m in messages]))
                                 .order_by(Delivery.id)).scalars():
            found.setdefault(d.message_id, []).append(d)
    return found


def message_entries(session, messages) -> list[dict]:
    """Each message with its deliveries (channel, status, attempts, last error, sent_at)."""
    deliveries = deliveries_by_message(session, messages)
    return [{"template": m.template, "status": m.status, "language": m.language, "created_at": _iso(m.created_at),
             "sent_at": _iso(m.sent_at),
             "deliveries": [{"channel": d.channel, "status": d.status, "attempts": d.attempts,
                             "last_error": d.last_error, "sent_at": _iso(d.sent_at)}
                            for d in deliveries.get(m.id, [])]} for m in messages]


def case_file(session, complaint, complaint_values: dict) -> dict:
    """`complaint_values` is the complaint as the reader may see it (personal data masked or not)."""
    inst = session.execute(select(ProcessInstance.process_id, ProcessInstance.status)     # not its workflow
                           .where(ProcessInstance.id == complaint.instance_id)).one()
    events = session.execute(select(AuditEvent).where(AuditEvent.business_key == complaint.number)
                             .order_by(AuditEvent.id)).scalars().all()
    # Creation order: by time, and by the audit row that recorded it where times are equal.
    created = {e.task_id: e.id for e in events if e.action == "task_created"}
    # Every instance of the complaint: the main one and those beside it (a call to the customer, a review).
    tasks = sorted(session.execute(select(HumanTask).where(HumanTask.instance_id.in_(instances_of(complaint))))
                   .scalars(), key=lambda t: (t.created_at, created.get(t.id, 0)))
    deadlines = session.execute(select(Deadline).where(Deadline.instance_id.in_(instances_of(complaint)))
                                .order_by(Deadline.created_at, Deadline.id)).scalars().all()
    messages = session.execute(select(OutboxMessage).where(OutboxMessage.business_key == complaint.number)
                               .order_by(OutboxMessage.id)).scalars().all()
    survey = session.execute(select(SurveyResponse).where(SurveyResponse.complaint_id == complaint.id)) \
        .scalar_one_or_none()
    version_numbers = [e.data.get("version") for e in events if e.action == "instance_started"]
    version_numbers += [e.data.get("to_version") for e in events if e.action == "instance_migrated"]
    versions = session.execute(select(ProcessVersion.version, ProcessVersion.content_hash, ProcessVersion.deployed_at,
                                      ProcessVersion.deployed_by).where(   # not their BPMN, spec and forms
        ProcessVersion.process_id == inst.process_id, ProcessVersion.version.in_(version_numbers))
        .order_by(ProcessVersion.version)).all()
    completions = {e.task_id: e for e in events if e.action == "task_completed"}
    return {
        "complaint": complaint_values,
        "process": {"process_id": inst.process_id, "status": inst.status,
                    "versions": [{"version": v.version, "content_hash": v.content_hash,
                                  "deployed_at": v.deployed_at.isoformat(), "deployed_by": v.deployed_by}
                                 for v in versions]},
        "decisions": [{"step": t.name, "element_id": t.element_id, "role": t.role, "state": t.state,
                       "created_at": t.created_at.isoformat(),
                       "completed_at": t.completed_at.isoformat() if t.completed_at else None,
                       "completed_by": t.completed_by.username if t.completed_by else
                       ("customer" if t.completed_by_customer else None),
                       "data": completions[t.id].data.get("form_data") if t.id in completions else None}
                      for t in tasks],
        "deadlines": [{"name": d.name, "element_id": d.element_id, "task": d.host_element_id,
                       "due_at": d.due_at.isoformat(), "state": d.state, "provisional": d.provisional,
                       "closed_at": d.closed_at.isoformat() if d.closed_at else None} for d in deadlines],
        "messages": message_entries(session, messages),
        "evidence": evidence_entries(session, complaint.number, complaint_values.get("personal_data") == "full"),
        "survey": {"form": survey.form, "answers": survey.answers, "submitted_at": survey.submitted_at.isoformat()}
        if survey else None,
        "audit": [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                   "element_id": e.element_id, "data": e.data, "hash": e.hash} for e in events],
    }

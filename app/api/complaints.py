from flask import current_app, g
from sqlalchemy import select

from .. import audit, complaints
from ..extensions import db
from ..models import AuditEvent, Deadline, HumanTask
from . import bp
from .auth import require
from .errors import body
from .schemas import AuditOut, ComplaintOut, DeadlineOut, TaskOut

READERS = ("customer_service", "claims_specialist", "management", "training", "compliance")


def complaint_view(complaint, user) -> dict:
    """The complaint as this user may see it; a full view of personal data is audited (C-7.1)."""
    data = ComplaintOut().dump(complaint)
    pii_roles = [r for r, spec in current_app.config["ROLES"].items() if spec.get("pii")]
    if complaints.may_see_personal_data(db.session, user, complaint, pii_roles):
        audit.record(db.session, user.username, "personal_data_viewed", instance_id=complaint.instance_id,
                     business_key=complaint.number)
        db.session.commit()
        data["personal_data"] = "full"
    else:
        data = complaints.masked(data)
        data["personal_data"] = "masked"
    return data


@bp.post("/complaints")
@require("customer_service")
def register_complaint():
    runtime = current_app.extensions["runtime"]
    complaint, change = complaints.register(runtime, db.session, body(), g.user,
                                            current_app.config["COMPLAINT_PROCESS"],
                                            current_app.config["COMPLAINT_NUMBER_FORMAT"])
    return {"number": complaint.number, "complaint": complaint_view(complaint, g.user),
            "tasks": TaskOut(many=True).dump(change.created_tasks)}, 201


@bp.get("/complaints/<number>")
@require(*READERS)
def get_complaint(number):
    complaint = complaints.get_by_number(db.session, number)
    tasks = db.session.execute(select(HumanTask).where(HumanTask.instance_id == complaint.instance_id)
                               .order_by(HumanTask.created_at)).scalars().all()
    deadlines = db.session.execute(select(Deadline).where(Deadline.instance_id == complaint.instance_id)
                                   .order_by(Deadline.created_at, Deadline.id)).scalars().all()
    history = db.session.execute(select(AuditEvent).where(AuditEvent.business_key == complaint.number)
                                 .order_by(AuditEvent.id)).scalars().all()
    return {
        "complaint": complaint_view(complaint, g.user),
        "current_tasks": TaskOut(many=True).dump([t for t in tasks if t.state == "open"]),
        "tasks": TaskOut(many=True).dump(tasks),
        "deadlines": DeadlineOut(many=True).dump(deadlines),
        "history": AuditOut(many=True).dump(history),
    }

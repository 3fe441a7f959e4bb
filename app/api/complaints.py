import json

from flask import current_app, g, request
from sqlalchemy import bindparam, case, null, select

from .. import case_events, complaint_list, complaints, customer_requests
from ..analysis.dimensions import FilterError, dimensions
from ..analysis.periods import PeriodError
from ..errors import AppError, InvalidData, NotFound
from ..extensions import db
from ..models import (AuditEvent, Complaint, Deadline, ElementVisit, HumanTask, InstanceSnapshot, ProcessInstance,
                      ProcessVersion, User)
from ..permissions import HANDLERS, READERS, REGISTRARS, pii_roles
from ..timeutil import utcnow
from . import bp
from .auth import require
from .errors import body, form_data
from .rows import RowDump, SideBySide
from .schemas import AuditOut, ComplaintOut, DeadlineOut, TaskOut

SUMMARY = ("number", "channel", "customer_name", "phone", "policy_number", "claim_number", "category",
           "received_at", "status", "current_step", "outcome")
# The reads' schemas, built once: building one costs up to a millisecond and a half (marshmallow copies its
# fields), more than dumping a complaint's rows with it.
COMPLAINT_OUT, TASK_OUT = ComplaintOut(), TaskOut()


def _username(user_id):
    """The user's name by a lookup, made only for a row that names one (PostgreSQL ran the lookup, a scan of the
    small user table, for each of a role queue's 50 unclaimed tasks)."""
    return case((user_id.is_(None), null()), else_=select(User.username).where(User.id == user_id).scalar_subquery())


# Lists are read as plain rows of the columns their schema dumps, never ORM objects (api/rows.py).
SUMMARY_ROW = RowDump(ComplaintOut(only=SUMMARY), Complaint)
TASK_ROW = RowDump(TASK_OUT, HumanTask, computed={
    "complaint_number": HumanTask.business_key, "assignee": _username(HumanTask.assignee_id),
    "completed_by": _username(HumanTask.completed_by_id), "has_form": HumanTask.form.is_not(None)})
DEADLINE_ROW, HISTORY_ROW = RowDump(DeadlineOut(), Deadline), RowDump(AuditOut(), AuditEvent)
_INSTANCES = complaints.instances_of(bindparam("number"))
# A complaint's tasks, deadlines and history in one statement (its page). The task rows carry assignee_id too, for
# the personal-data decision (complaints.may_see_personal_data).
CASE_LISTS = SideBySide(
    (select(*TASK_ROW.columns, HumanTask.assignee_id.label("assignee_id")).where(HumanTask.instance_id.in_(_INSTANCES)),
     complaints.TASK_ORDER),
    (select(*DEADLINE_ROW.columns).where(Deadline.instance_id.in_(_INSTANCES)), (Deadline.created_at, Deadline.id)),
    (select(*HISTORY_ROW.columns).where(AuditEvent.business_key == bindparam("number")), (AuditEvent.id,)))


def complaint_view(complaint, user, tasks=None) -> dict:
    """The complaint as this user may see it (personal data masked unless the role needs it); `tasks`:
    all its tasks, if the caller read them."""
    data, full = complaints.personal_view(db.session, user, complaint, COMPLAINT_OUT.dump(complaint), pii_roles(),
                                          tasks)
    return {**data, "personal_data": "full" if full else "masked"}


@bp.post("/complaints")
@require(*REGISTRARS)
def register_complaint():
    runtime = current_app.extensions["runtime"]
    complaint, change = complaints.register(runtime, db.session, body(), g.user,
                                            current_app.config["COMPLAINT_PROCESS"],
                                            current_app.config["COMPLAINT_NUMBER_FORMAT"])
    missed = complaints.missed_at_registration(db.session, complaint)
    return {"number": complaint.number, "complaint": complaint_view(complaint, g.user),
            "tasks": TASK_OUT.dump(change.created_tasks, many=True),
            "missed_deadlines": DeadlineOut(many=True).dump(missed),
            "warnings": [f"received_at is already past the deadline {d.name} (due {d.due_at.isoformat()})"
                         for d in missed]}, 201


def _query(value) -> str:
    q = (value if isinstance(value, str) else "").strip()
    if not q:
        raise AppError("give q: a complaint number, policy or claim number, customer name, phone or ID number",
                       fields={"q": "required"}, code="bad_query")
    return q


def _int_arg(name, default, most) -> int:
    value = request.args.get(name, str(default))
    if not (value.isascii() and value.isdigit() and len(value) <= 6) or not 1 <= int(value) <= most:
        raise AppError(f"{name} must be a whole number from 1 to {most}", fields={name: f"1 to {most}"},
                       code="bad_query")
    return int(value)


def _listed(term, personal):
    """One page of the complaint list (app.complaint_list) for the query string's filters and `term`."""
    try:
        asked = complaint_list.from_args(request.args, term, personal, names=bool(g.user.roles & set(pii_roles())))
        conditions = complaint_list.where(db.session, g.user, asked, dimensions(db.session), utcnow())
    except PeriodError as err:
        field = err.params.get("field", "from")
        raise AppError(str(err), fields={field: str(err)}, code="bad_query") from None
    except complaint_list.ListError as err:
        raise AppError(str(err), fields={err.field: str(err)}, code="bad_query") from None
    except FilterError as err:
        raise AppError(str(err), fields={err.params.get("dimension", "filter"): str(err)}, code="bad_query") from None
    per_page = _int_arg("per_page", 50, 100)
    found = complaint_list.page(db.session, conditions, _int_arg("page", 1, 100_000), per_page,
                                columns=SUMMARY_ROW.columns)
    items = [complaints.masked(values) for values in SUMMARY_ROW.many(found["rows"])]
    return {"q": term, "items": items, "total": found["total"], "capped": found["capped"], "page": found["page"],
            "pages": found["pages"]}


@bp.get("/complaints")
@require(*READERS)
def search_complaints():
    """The complaint list: filters in the query string; `q` finds a complaint, policy or claim number, in part
    from three characters. Personal identifiers (name, phone, ID number) are searched with POST
    /complaints/search, so they never sit in a URL or a log."""
    return _listed((request.args.get("q") or "").strip(), personal=False)


@bp.post("/complaints/search")
@require(*READERS)
def search_complaints_by_body():
    """The complaint list for a term given in the body: also the customer's name (in part), phone or ID number."""
    return _listed(_query(body().get("q")), personal=True)


@bp.get("/complaints/<number>")
@require(*READERS)
def get_complaint(number):
    complaint = complaints.readable(db.session, g.user, number)
    tasks, deadlines, history = CASE_LISTS.read(db.session, number=complaint.number)
    # Dumped before complaint_view: a full view of personal data commits its audit row, which expires
    # the complaint.
    rest = {"current_tasks": TASK_ROW.many(t for t in tasks if t.state == "open"),
            "tasks": TASK_ROW.many(tasks),
            "deadlines": DEADLINE_ROW.many(deadlines),
            "history": HISTORY_ROW.many(history)}
    return {"complaint": complaint_view(complaint, g.user, tasks), **rest}


def _reason(payload, required) -> str:
    """The request's reason, stripped; 422 naming the field when it is not text, too long or missing, or naming a
    field the request does not take (as every other body here)."""
    unknown = sorted(set(payload) - {"reason"})
    if unknown:
        raise InvalidData("the request takes only `reason`", fields={name: "unknown field" for name in unknown})
    reason = payload.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidData("reason must be text", fields={"reason": "must be a string"})
    reason, problem = customer_requests.clean_reason(reason, required)
    if problem == "too_long":
        raise InvalidData("reason is too long",
                          fields={"reason": f"at most {customer_requests.REASON_MAX} characters"})
    if problem == "required":
        raise InvalidData("give the customer's reason", fields={"reason": "required"})
    return reason


def _recorded(complaint, change, status):
    db.session.refresh(complaint)
    return {"number": complaint.number, "complaint": complaint_view(complaint, g.user),
            "tasks": TASK_OUT.dump(change.created_tasks, many=True)}, status


@bp.post("/complaints/<number>/withdrawal")
@require(*REGISTRARS)
def record_withdrawal(number):
    """Customer service records a withdrawal the customer gave by phone or letter (R-WITHDRAW)."""
    complaint = complaints.readable(db.session, g.user, number)
    reason = _reason(body(), required=False)
    change = customer_requests.withdraw(current_app.extensions["runtime"], db.session, complaint, reason,
                                        customer_requests.BY_PHONE, actor=g.user.username)
    return _recorded(complaint, change, 200)


@bp.post("/complaints/<number>/review-request")
@require(*REGISTRARS)
def record_review_request(number):
    """Customer service records a request for a review (核查) of the decision (R-REVIEW)."""
    complaint = complaints.readable(db.session, g.user, number)
    reason = _reason(body(), required=True)
    change = customer_requests.request_review(current_app.extensions["runtime"], db.session, complaint, reason,
                                              customer_requests.BY_PHONE, actor=g.user.username)
    db.session.commit()
    return _recorded(complaint, change, 201)


@bp.get("/complaints/<number>/actions")
@require(*HANDLERS)
def list_actions(number):
    """What the caller may tell this complaint's procedure now besides its tasks (e.g. ask for more
    time, record an external appraisal): each with the form its data must fill."""
    complaint = complaints.readable(db.session, g.user, number)
    return {"number": complaint.number,
            "actions": [{"name": e.name, "form": e.schema} for e in case_events.available(db.session, g.user, complaint)]}


@bp.post("/complaints/<number>/actions/<name>")
@require(*HANDLERS)
def send_action(number, name):
    """Send one of those actions with its form data; the diagram decides what follows."""
    complaint = complaints.readable(db.session, g.user, number)
    data = form_data()
    change = case_events.send(current_app.extensions["runtime"], db.session, g.user, complaint, name, data)
    return _recorded(complaint, change, 200)


@bp.get("/complaints/<number>/case-file")
@require(*READERS)
def get_case_file(number):
    """The complete case file as JSON (C-3.5.1)."""
    from ..casefile import case_file
    complaint = complaints.readable(db.session, g.user, number)
    return case_file(db.session, complaint, complaint_view(complaint, g.user))


@bp.get("/complaints/<number>/path")
@require(*READERS)
def get_path(number):
    """What to mark on the complaint's own diagram: the elements it passed through in order (every
    round), where it is now, and the deadlines it missed."""
    complaint = complaints.readable(db.session, g.user, number)
    inst = db.session.execute(select(ProcessInstance.id, ProcessInstance.process_id, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
                              .where(ProcessInstance.id == complaint.instance_id)).one()
    visits = db.session.execute(select(ElementVisit).where(ElementVisit.instance_id == inst.id)
                                .order_by(ElementVisit.id)).scalars().all()
    current = db.session.execute(select(HumanTask.element_id).where(
        HumanTask.instance_id == inst.id, HumanTask.state == "open")).scalars().all()
    missed = db.session.execute(select(Deadline.element_id).where(
        Deadline.instance_id == inst.id, Deadline.state == "missed")).scalars().all()
    return {"number": number, "process_id": inst.process_id, "version": inst.version,
            "visits": [{"process": v.process_id, "element_id": v.element_id, "at": v.at.isoformat()} for v in visits],
            "current": sorted(set(current)), "missed_deadlines": sorted(set(missed))}


@bp.get("/complaints/<number>/snapshots")
@require(*READERS, "process_owner")
def list_snapshots(number):
    """The complaint's workflow as it was before each migration, for inspection."""
    complaint = complaints.readable(db.session, g.user, number)
    rows = db.session.execute(select(InstanceSnapshot, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == InstanceSnapshot.version_id)
                              .where(InstanceSnapshot.instance_id == complaint.instance_id)
                              .order_by(InstanceSnapshot.id)).all()
    return {"number": number, "snapshots": [
        {"id": snap.id, "version": version, "reason": snap.reason, "created_by": snap.created_by,
         "created_at": snap.created_at.isoformat()} for snap, version in rows]}


@bp.get("/complaints/<number>/snapshots/<int:snapshot_id>")
@require(*READERS, "process_owner")
def get_snapshot(number, snapshot_id):
    """A pre-migration workflow. Workflows hold no personal data (it lives on the complaint row); any
    personal key found in an old one is left out all the same."""
    complaint = complaints.readable(db.session, g.user, number)
    snap = db.session.get(InstanceSnapshot, snapshot_id)
    if snap is None or snap.instance_id != complaint.instance_id:
        raise NotFound(f"no snapshot {snapshot_id} of {number}")
    return {"id": snap.id, "version": db.session.get(ProcessVersion, snap.version_id).version,
            "reason": snap.reason, "created_by": snap.created_by, "created_at": snap.created_at.isoformat(),
            "workflow": complaints.without_personal_data(json.loads(snap.workflow_json))}

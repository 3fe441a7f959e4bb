"""The complaint business record: intake, complaint numbers, masking, and keeping the row in step
with its workflows. No procedure steps live here: those are in processes/.

A complaint has one main process instance (`complaint.instance_id`: registration starts it, and it
decides the outcome and closes the complaint) and may have others beside it (e.g. a call to the
customer, a review). Every instance and task of the complaint carries its number as business key,
which is how they are linked: instances_of() and tasks_of()."""
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from typing import Optional

from marshmallow import ValidationError, fields, post_load, validate, validates, validates_schema
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from . import avoidance, contact_rules, vocab_store
from .errors import InvalidData, NotFound
from .input_rules import CleanTextSchema, Text
from .models import Complaint, ComplaintCounter, Deadline, HumanTask, ProcessInstance, User
from .permissions import HANDLERS
from .timeutil import BUSINESS_TZ, UTCDateTime, parse_iso, utcnow

CHANNELS = ("hotline", "website", "mobile_app", "email", "other")
CUSTOMER_LANGUAGES = ("zh", "en")
# The workflow gets the complaint number, the received time and these non-personal fields (see PERSONAL).
WORKFLOW_FIELDS = ("channel", "category", "product_line", "policy_number", "claim_number")
# Intake fields coded by a vocabulary of processes/vocabularies/ (field -> vocabulary): when the deployed
# complaint process has that vocabulary, the field is required and must be a code it offers.
CODED_INTAKE = {"category": "category", "product_line": "product_line"}
# received_at must lie in this window: older complaints are typing errors, not complaints.
EARLIEST_RECEIVED = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _rule(problem):
    """A marshmallow validator from a check of app.contact_rules (None when fine, else what is wrong)."""
    def check(value):
        message = problem(value)
        if message:
            raise ValidationError(message)
    return check


class ComplaintIn(CleanTextSchema):   # no NUL / lone surrogates in any field (422 on it)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    customer_name = Text(required=True, validate=validate.Length(min=1, max=100))
    # Contact data is checked and stored as app/contact_rules.py says (phone: mainland digits or E.164).
    phone = fields.String(required=True, validate=_rule(contact_rules.phone_problem), metadata={
        "description": "a mainland mobile (11 digits) or landline with its area code (010-12345678), +86 allowed; "
                       "a number abroad with + and its country code. Stored as the mainland digits "
                       "(13800138000, 01012345678) or E.164 (+85291234567)", "example": "13800138000"})
    email = fields.String(load_default=None, allow_none=True, metadata={"format": "email"},
                          validate=[validate.Length(max=254), _rule(contact_rules.email_problem)])
    id_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32), metadata={
        "description": "the number of the identity document of type `id_type` (required with it); a resident ID "
                       "is checked with its check digit. Stored without spaces or hyphens, letters upper-case"})
    id_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(contact_rules.ID_TYPES),
                            metadata={"description": "the kind of identity document id_number is: resident_id "
                                      "(居民身份证), passport, hk_macao_permit (回乡证), taiwan_permit (台胞证), other"})
    policy_number = Text(required=True, validate=validate.Length(min=1, max=64))
    claim_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    # The username of whoever handled the original claim (回避); checked against the users in register().
    claim_handler = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    # A handler outside the system, as free text: recorded, but it excludes nobody.
    claim_handler_external = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    category = Text(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "a code of the `category` vocabulary (processes/vocabularies/category.toml) that is on "
                       "offer: not retired, not a group"})
    product_line = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64), metadata={
        "description": "a code of the `product_line` vocabulary (processes/vocabularies/product_line.toml); "
                       "required when the deployed procedure has that vocabulary"})
    description = Text(required=True, validate=validate.Length(min=1, max=5000))
    received_at = fields.AwareDateTime(required=True)
    # How the customer is told: their language, and the channels they do not want (phone -> SMS, e-mail).
    language = fields.String(load_default="zh", validate=validate.OneOf(CUSTOMER_LANGUAGES))
    sms_opt_out = fields.Boolean(load_default=False)
    email_opt_out = fields.Boolean(load_default=False)

    @validates("received_at")
    def in_window(self, value, **kwargs):
        # The year is looked at first: year 1 at +14:00 (or 9999 at -14:00) has no UTC value to compare.
        if value.year < EARLIEST_RECEIVED.year or value < EARLIEST_RECEIVED:
            raise ValidationError("received_at is before 2000")
        if value.year > utcnow().year + 1 or value > utcnow() + timedelta(minutes=5):
            raise ValidationError("received_at is in the future")

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def document(self, data, original_data, **kwargs):
        """An ID number needs its document type, and must be a number of that type."""
        number = (data.get("id_number") or "").strip()
        if not number:
            return
        id_type = data.get("id_type")
        if id_type is None:
            if not (isinstance(original_data, dict) and original_data.get("id_type")):  # else refused already
                raise ValidationError(contact_rules.ID_TYPE_NEEDED, "id_type")
            return
        problem = contact_rules.document_problem(id_type, number)
        if problem:
            raise ValidationError(problem, "id_number")

    @post_load
    def stored_forms(self, data, **kwargs):
        data["phone"] = contact_rules.stored_phone(data["phone"])
        if data.get("email"):
            data["email"] = contact_rules.stored_email(data["email"])
        number = (data.get("id_number") or "").strip()
        data["id_number"] = contact_rules.compact_document(data.get("id_type"), number) if number else None
        data["id_type"] = data.get("id_type") if number else None
        return data


def next_number(session, number_format: str) -> str:
    """Next complaint number for today's business date, taken in a short transaction of its own: the
    counter row is updated in place (so concurrent registrations never share a number) and committed at
    once, so it is locked for one statement, not for a whole registration, and registrations run side
    by side. A registration that fails after taking its number leaves a gap in the day's sequence.
    SQLite has one writer at a time whatever the rows: there the number is taken in the registration's
    own transaction (a second connection would wait for a caller that already wrote)."""
    today = utcnow().astimezone(BUSINESS_TZ)
    key = today.strftime("%Y%m%d")
    bind = session.get_bind()
    with (nullcontext(session) if bind.dialect.name == "sqlite" else Session(bind=bind)) as own:
        for _ in range(3):
            seq = own.execute(update(ComplaintCounter).where(ComplaintCounter.key == key)
                              .values(value=ComplaintCounter.value + 1)
                              .returning(ComplaintCounter.value)).scalar_one_or_none()
            if seq is None:
                try:
                    with own.begin_nested():
                        own.add(ComplaintCounter(key=key, value=1))
                    seq = 1
                except IntegrityError:
                    continue      # another registration created today's counter first; increment it
            if own is not session:
                own.commit()
            return number_format.format(date=today, seq=seq)
    raise RuntimeError("could not allocate a complaint number")


def _load_intake(session, payload, process_id) -> dict:
    errors = {}
    try:
        data = ComplaintIn().load(payload or {})
    except ValidationError as err:
        errors = {k: "; ".join(v) if isinstance(v, list) else str(v) for k, v in err.messages.items()}
        data = err.valid_data if isinstance(err.valid_data, dict) else {}
    # The coded fields are checked against the vocabularies in force in the same answer as the rest.
    errors.update(vocab_store.refusals(vocab_store.in_force(session, process_id), data,
                                       {k: v for k, v in CODED_INTAKE.items() if k not in errors}))
    if errors:
        raise InvalidData("the complaint is not valid", fields=errors)
    handler = (data.get("claim_handler") or "").strip() or None
    if handler is not None and not handles_work(session.execute(
            select(User).where(User.username == handler)).scalar_one_or_none()):
        # A name that matches nobody would silently exclude nobody: refuse it, and offer the free-text field.
        raise InvalidData("the complaint is not valid", fields={
            "claim_handler": "no such user with a handler role; a handler outside the system goes in "
                             "claim_handler_external"})
    data["claim_handler"] = handler
    data["claim_handler_external"] = (data.get("claim_handler_external") or "").strip() or None
    return data


def handles_work(user) -> bool:
    """Whether `user` may be named as an original claim's handler: a user with a role that handles
    work (deactivated ones too: they may still have handled the claim)."""
    return user is not None and bool(user.roles & set(HANDLERS))


def claim_handlers(session) -> list[User]:
    """Everyone handles_work() accepts, for the registration form's list."""
    return [u for u in session.execute(select(User).order_by(User.display_name)).scalars() if handles_work(u)]


def register(runtime, session, payload, user, process_id, number_format) -> tuple[Complaint, object]:
    data = _load_intake(session, payload, process_id)
    try:
        number = next_number(session, number_format)
        complaint = Complaint(number=number, registered_by_id=user.id, **data)
        session.add(complaint)
        start_data = {**{k: data[k] for k in WORKFLOW_FIELDS}, "complaint_number": number,
                      "received_at": data["received_at"].isoformat()}

        def link(instance):
            complaint.instance_id = instance.id

        change = runtime.start(process_id, start_data, actor=user.username, business_key=number, on_created=link)
    except Exception:
        session.rollback()
        raise
    return complaint, change


def missed_at_registration(session, complaint) -> list[Deadline]:
    """The deadlines already past when the complaint was registered (received_at long ago)."""
    return session.execute(select(Deadline).where(Deadline.instance_id == complaint.instance_id,
                                                  Deadline.state == "missed").order_by(Deadline.due_at)).scalars().all()


def search(session, user, q, personal=False) -> list[Complaint]:
    """Complaints whose number, policy or claim number is `q` — or, with `personal`, whose customer phone
    or ID number is `q` (asked in a request body, never in a URL). Leaves out those the user must
    stand aside from (回避)."""
    keys = [Complaint.number == q, Complaint.policy_number == q, Complaint.claim_number == q]
    if personal:     # as typed, and in the form it is stored in (app/contact_rules.py)
        keys += [Complaint.phone.in_({q, contact_rules.stored_phone(q) or q}),
                 Complaint.id_number.in_({q, contact_rules.compact_document(None, q)})]
    return session.execute(select(Complaint).where(or_(*keys), avoidance.visible_to(user))
                           .order_by(Complaint.received_at.desc()).limit(100)).scalars().all()


def get_by_number(session, number) -> Complaint:
    complaint = session.execute(select(Complaint).where(Complaint.number == number)).scalar_one_or_none()
    if complaint is None:
        raise NotFound(f"no complaint {number}")
    return complaint


def readable(session, user, number) -> Complaint:
    """The complaint `number` if `user` may read it: 404 when there is none (or it has no process yet),
    403 under 回避. Every page and API call that shows a complaint goes through here."""
    complaint = get_by_number(session, number)
    if complaint.instance_id is None:
        raise NotFound(f"no complaint {number}")
    avoidance.check_may_read(user, complaint)
    return complaint


# A complaint's tasks, oldest first, the earlier instance's first at equal times.
TASK_ORDER = (HumanTask.created_at, HumanTask.instance_id, HumanTask.id)


def instances_of(complaint):
    """The ids of every process instance of `complaint` (main and beside it; or of the complaint number given as a
    bind parameter), as a subquery on the process_instance.business_key index."""
    number = complaint if isinstance(complaint, BindParameter) else complaint.number
    return select(ProcessInstance.id).where(ProcessInstance.business_key == number)


def tasks_of(session, complaint, open_only=False) -> list[HumanTask]:
    """Every human task of every instance of `complaint` in TASK_ORDER (index reads, no workflow)."""
    query = select(HumanTask).where(HumanTask.instance_id.in_(instances_of(complaint)))
    if open_only:
        query = query.where(HumanTask.state == "open")
    return session.execute(query.order_by(*TASK_ORDER)).scalars().all()


def open_tasks_after(change) -> list[HumanTask]:
    """The complaint's open tasks as `change` leaves them, before it is written: the runtime read the
    open tasks of all its instances (the complaint number is their business key) and shows this
    change's closed ones in their new state."""
    rows = [t for t in change.open_tasks if t.state == "open"]
    return sorted(rows, key=lambda t: (t.created_at, t.instance_id, t.id))


def complaint_of(session, business_key) -> Optional[Complaint]:
    """The complaint a task or instance belongs to (its business key is the complaint number)."""
    if business_key is None:
        return None
    return session.execute(select(Complaint).where(Complaint.number == business_key)).scalar_one_or_none()


def make_record_sync(record_fields: dict, side_fields: Optional[dict] = None, deadline_fields: Optional[dict] = None):
    """A runtime hook that keeps the complaint row in step with its instances: the current step lists
    the open tasks of all of them; the main instance copies `record_fields` and closes the complaint.
    A process beside it (a call to the customer, a review) never changes the outcome or the status:
    it copies only `side_fields` (e.g. the review period, started again when customer service told
    the customer a decision that never reached them); the rest stays in its own data, audit trail
    and messages. `deadline_fields` (timer element id -> column) keep the due time of the main
    instance's deadlines on the row, also when a recompute moves them."""
    def sync(session, inst, change):
        complaint = change.record = change.record if change.record is not None \
            else complaint_of(session, inst.business_key)
        if complaint is None:
            return
        main = complaint.instance_id == inst.id
        _copy_record_fields(complaint, record_fields if main else (side_fields or {}), change.changed_data)
        for deadline in change.deadlines if main and deadline_fields else ():
            if deadline.element_id in deadline_fields:
                setattr(complaint, deadline_fields[deadline.element_id], deadline.due_at)
        names = [t.name for t in open_tasks_after(change)]
        complaint.current_step = "、".join(dict.fromkeys(names))[:400]
        complaint.updated_at = utcnow()
        # The diagram closes the case (closed_at) even while a deadline follow-up is still open.
        if main and inst.status == "completed" and complaint.closed_at is None:
            complaint.closed_at = inst.completed_at
        if complaint.closed_at is not None:
            complaint.status = "closed"
            complaint.stop_clock()
    return sync


def _copy_record_fields(complaint, record_fields: dict, changed_data: dict):
    """Task data holds times as ISO strings; the complaint's time columns (e.g. closed_at,
    review_until) hold datetimes."""
    columns = Complaint.__mapper__.columns
    for key, column in record_fields.items():
        if key in changed_data:
            value = changed_data[key]
            if value and isinstance(columns[column].type, UTCDateTime):
                value = parse_iso(value)
            setattr(complaint, column, value)


# ---- personal data (C-2.2, C-7.1) -------------------------------------------------------------------
def mask_phone(v):
    if not v:
        return v
    digits = v.replace(" ", "").replace("-", "")
    return digits[:3] + "*" * max(len(digits) - 7, 1) + digits[-4:] if len(digits) > 7 else "*" * len(digits)


def mask_email(v):
    if not v or "@" not in v:
        return v
    local, domain = v.split("@", 1)
    return (local[:1] + "***@" + domain) if local else "***@" + domain


def mask_id(v):
    return v[:3] + "*" * max(len(v) - 7, 1) + v[-4:] if v and len(v) > 7 else ("*" * len(v) if v else v)


def mask_name(v):
    return v[:1] + "*" * max(len(v) - 1, 1) if v else v


PERSONAL_FIELDS = {"customer_name": mask_name, "phone": mask_phone, "email": mask_email, "id_number": mask_id}
# Personal data (C-7.1) lives on the complaint row only: never in workflow data, snapshots, audit rows,
# outbox payloads, URLs or logs.
PERSONAL = tuple(PERSONAL_FIELDS)


def may_see_personal_data(session, user, complaint, pii_roles, tasks=None) -> bool:
    """Customer service and whoever currently holds an open task of any instance of this complaint see
    it in full (the user's own open tasks, on the assignee index, filtered by the complaint number; or
    among `tasks`, all the complaint's tasks, when the caller read them)."""
    if user.roles & set(pii_roles):
        return True
    if tasks is not None:
        return any(t.state == "open" and t.assignee_id == user.id for t in tasks)
    return session.execute(select(HumanTask.id).where(
        HumanTask.state == "open", HumanTask.assignee_id == user.id,
        HumanTask.business_key == complaint.number).limit(1)).first() is not None


def without_personal_data(node):
    """`node` (e.g. a serialized workflow) with the personal keys removed from every dict in it."""
    if isinstance(node, dict):
        return {k: without_personal_data(v) for k, v in node.items() if k not in PERSONAL}
    if isinstance(node, list):
        return [without_personal_data(v) for v in node]
    return node


def masked(values: dict) -> dict:
    return {k: (PERSONAL_FIELDS[k](v) if k in PERSONAL_FIELDS else v) for k, v in values.items()}


def personal_view(session, user, complaint, values: dict, pii_roles, tasks=None) -> tuple[dict, bool]:
    """`values` of the complaint as this user may see them, and whether in full; a full view of
    personal data is written to the audit trail (C-7.1). `tasks`: all the complaint's tasks, if read."""
    from . import audit
    if may_see_personal_data(session, user, complaint, pii_roles, tasks):
        audit.record(session, user.username, "personal_data_viewed", instance_id=complaint.instance_id,
                     business_key=complaint.number)
        session.commit()
        return values, True
    return masked(values), False

"""Marshmallow schemas for what the API returns and accepts. The route modules dump with the first five
(TaskOut … ComplaintOut); the rest describe the dicts those routes build, so that app.api.openapi can
generate the OpenAPI document from them and schemathesis can hold every response to it. `allow_none`
marks what may be null (it does not change dumping); fields.Function carries its JSON type in metadata."""
from marshmallow import Schema, fields, validate

from ..customer_requests import REASON_MAX
from ..input_rules import CleanTextSchema

NULLABLE_STRING = {"type": ["string", "null"]}
# Coded data: codes, never labels (the labels are in processes/vocabularies/ and the forms' `oneOf`).
CODED = "a code of the `{name}` vocabulary (processes/vocabularies/{name}.toml; a retired code stays valid on old complaints)"


class TaskOut(Schema):
    id = fields.String()
    name = fields.String()
    element_id = fields.String()
    complaint_number = fields.Function(lambda t: t.business_key, metadata=NULLABLE_STRING)
    business_key = fields.String(allow_none=True, metadata={"description": "the instance's business key: a "
                                 "complaint's number, or e.g. QR-2026Q4 for a quarterly review"})
    subject = fields.String(allow_none=True, metadata={"description": "what this task is about, in a line, when "
                            "the diagram says (e.g. which improvement measure)"})
    role = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": ["open", "completed", "cancelled"]})
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None, metadata=NULLABLE_STRING)
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None,
                                   metadata=NULLABLE_STRING)
    due_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)
    has_form = fields.Function(lambda t: t.form is not None, metadata={"type": "boolean"})


class QueueComplaintOut(Schema):
    """The complaint beside a queue row (personal data masked)."""
    number = fields.String()
    customer_name = fields.String()
    channel = fields.String()
    category = fields.String()
    received_at = fields.AwareDateTime()
    decision_due_at = fields.AwareDateTime(allow_none=True)
    decision_clock = fields.String(allow_none=True)


class QueueRowOut(TaskOut):
    complaint = fields.Nested(QueueComplaintOut)


class DeadlineOut(Schema):
    name = fields.String()
    element_id = fields.String()
    task = fields.String(attribute="host_element_id", allow_none=True)
    due_at = fields.AwareDateTime()
    state = fields.String(metadata={"enum": ["open", "met", "missed", "cancelled"]})
    closed_at = fields.AwareDateTime(allow_none=True)
    provisional = fields.Boolean(metadata={"description": "due_at was computed without the official holiday "
                                                          "schedule of its year; it is recomputed once that is out"})


class AuditOut(Schema):
    at = fields.AwareDateTime()
    actor = fields.String()
    action = fields.String()
    task_id = fields.String(allow_none=True)
    element_id = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)


class ComplaintOut(Schema):
    number = fields.String()
    channel = fields.String()
    customer_name = fields.String()
    phone = fields.String()
    email = fields.String(allow_none=True)
    id_number = fields.String(allow_none=True)
    id_type = fields.String(allow_none=True, metadata={"description": "the document id_number is (as ComplaintIn)"})
    policy_number = fields.String(allow_none=True)
    claim_number = fields.String(allow_none=True)
    claim_handler = fields.String(allow_none=True)
    claim_handler_external = fields.String(allow_none=True)
    category = fields.String(metadata={"description": CODED.format(name="category") + "; a complaint registered "
                                                      "before coded categories may hold its free text until mapped"})
    product_line = fields.String(allow_none=True, metadata={"description": CODED.format(name="product_line")})
    cause_code = fields.String(allow_none=True, metadata={
        "description": CODED.format(name="cause") + ", set by the analysis (分析原因并制定方案)"})
    responsible_party = fields.String(allow_none=True, metadata={
        "description": CODED.format(name="responsible_party") + ", set by the analysis"})
    description = fields.String()
    received_at = fields.AwareDateTime()
    status = fields.String(metadata={"enum": ["open", "closed"]})
    current_step = fields.String()
    outcome = fields.String(allow_none=True)
    satisfied = fields.Boolean(allow_none=True)
    rounds = fields.Integer()
    risk_level = fields.String(allow_none=True)
    accepted_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    decision_due_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "the regulator's limit (监管时限) for a decision, kept by the diagram"})
    decision_warning_days = fields.Integer(allow_none=True, metadata={
        "description": "how many days before decision_due_at the queues warn"})
    decision_clock = fields.String(allow_none=True, metadata={
        "enum": ["running", "paused", "met", "missed", "stopped", None],
        "description": "where the clock stands, as the diagram sets it: paused while an external appraisal runs; "
                       "stopped: the complaint was withdrawn while it ran"})


# ---- the responses' envelopes ----------------------------------------------------------------------------
class ComplaintViewOut(ComplaintOut):
    """A complaint as the caller may see it: personal data in full or masked (C-2.2, C-7.1)."""
    personal_data = fields.String(metadata={"enum": ["full", "masked"]})


class RegisteredOut(Schema):
    number = fields.String()
    complaint = fields.Nested(ComplaintViewOut)
    tasks = fields.List(fields.Nested(TaskOut))
    missed_deadlines = fields.List(fields.Nested(DeadlineOut))
    warnings = fields.List(fields.String())


class ComplaintDetailOut(Schema):
    complaint = fields.Nested(ComplaintViewOut)
    current_tasks = fields.List(fields.Nested(TaskOut))
    tasks = fields.List(fields.Nested(TaskOut))
    deadlines = fields.List(fields.Nested(DeadlineOut))
    history = fields.List(fields.Nested(AuditOut))


class VisitOut(Schema):
    process = fields.String()
    element_id = fields.String()
    at = fields.AwareDateTime()


class PathOut(Schema):
    number = fields.String()
    process_id = fields.String()
    version = fields.Integer()
    visits = fields.List(fields.Nested(VisitOut))
    current = fields.List(fields.String())
    missed_deadlines = fields.List(fields.String())


class SnapshotOut(Schema):
    id = fields.Integer()
    version = fields.Integer()
    reason = fields.String()
    created_by = fields.String()
    created_at = fields.AwareDateTime()


class SnapshotListOut(Schema):
    number = fields.String()
    snapshots = fields.List(fields.Nested(SnapshotOut))


class SnapshotDetailOut(SnapshotOut):
    workflow = fields.Dict(metadata={"description": "the serialized workflow, without personal data"})


class CaseVersionOut(Schema):
    version = fields.Integer()
    content_hash = fields.String()
    deployed_at = fields.AwareDateTime()
    deployed_by = fields.String()


class CaseProcessOut(Schema):
    process_id = fields.String()
    status = fields.String()
    versions = fields.List(fields.Nested(CaseVersionOut))


class CaseDecisionOut(Schema):
    step = fields.String()
    element_id = fields.String()
    role = fields.String(allow_none=True)
    state = fields.String()
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime(allow_none=True)
    completed_by = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True, metadata={"description": "the submitted form data"})


class CaseDeadlineOut(DeadlineOut):
    """A deadline in the case file: the same fields as everywhere else (the case file builds it as a dict)."""


class CaseDeliveryOut(Schema):
    channel = fields.String(metadata={"description": "email | sms | none (the customer has no channel left)"})
    status = fields.String(metadata={"description": "queued | sending | sent | failed"})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True, metadata={"description": "the provider's last answer"})
    sent_at = fields.AwareDateTime(allow_none=True)


class CaseMessageOut(Schema):
    template = fields.String()
    status = fields.String(metadata={"description": "queued | sent | failed | not_sent"})
    language = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    deliveries = fields.List(fields.Nested(CaseDeliveryOut))


class CaseSurveyOut(Schema):
    form = fields.String()
    answers = fields.Dict(metadata={"description": "the customer's answers, as the survey form's fields"})
    submitted_at = fields.AwareDateTime()


class CaseAuditOut(Schema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    actor = fields.String()
    action = fields.String()
    element_id = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)
    hash = fields.String()


class EvidenceOut(Schema):
    id = fields.Integer()
    name = fields.String(metadata={"description": "as uploaded for roles that see personal data in full, else "
                                                  "file-<n>.<ext> (a file name often holds the customer's)"})
    media_type = fields.String(metadata={"description": "read from the content, not from the name"})
    size = fields.Integer()
    sha256 = fields.String(metadata={"description": "the content's key, also in the case's audit chain"})
    description = fields.String()
    task_id = fields.String(allow_none=True)
    field = fields.String(allow_none=True, metadata={"description": "the form field it answers, if any"})
    uploaded_by = fields.String()
    uploaded_at = fields.AwareDateTime()


class EvidenceListOut(Schema):
    items = fields.List(fields.Nested(EvidenceOut))


class NoteIn(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class NoteOut(Schema):
    actor = fields.String()
    at = fields.AwareDateTime()
    text = fields.String()


class CaseFileOut(Schema):
    complaint = fields.Nested(ComplaintViewOut)
    process = fields.Nested(CaseProcessOut)
    decisions = fields.List(fields.Nested(CaseDecisionOut))
    deadlines = fields.List(fields.Nested(CaseDeadlineOut))
    messages = fields.List(fields.Nested(CaseMessageOut))
    survey = fields.Nested(CaseSurveyOut, allow_none=True, metadata={"description": "the satisfaction survey (C-5.1)"})
    evidence = fields.List(fields.Nested(EvidenceOut))
    audit = fields.List(fields.Nested(CaseAuditOut))


class TaskListOut(Schema):
    queue = fields.String()
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    items = fields.List(fields.Nested(QueueRowOut))


class TaskDetailOut(Schema):
    task = fields.Nested(TaskOut)
    form = fields.Dict(allow_none=True, metadata={"description": "the task's form as JSON Schema"})
    complaint = fields.Nested(ComplaintViewOut, allow_none=True)
    decisions = fields.List(fields.Nested(AuditOut))


class TaskEnvelopeOut(Schema):
    task = fields.Nested(TaskOut)


class CompletedOut(Schema):
    completed = fields.String()
    complaint_number = fields.String(allow_none=True)
    instance_status = fields.String()
    next_tasks = fields.List(fields.Nested(TaskOut))


class ProcessVersionOut(Schema):
    version = fields.Integer()
    name = fields.String()
    content_hash = fields.String()
    files = fields.List(fields.String())
    deployed_by = fields.String()
    deployed_at = fields.AwareDateTime()


class ProcessVersionsOut(Schema):
    process_id = fields.String()
    versions = fields.List(fields.Nested(ProcessVersionOut))


class ElementStatsOut(Schema):
    waiting = fields.Integer()
    overdue = fields.Integer()
    completed = fields.Integer()
    median_hours = fields.Float(allow_none=True)
    median_exact = fields.Boolean(metadata={"description": "false: the median comes from daily summaries "
                                                           "(histograms with 10% buckets): off by less than "
                                                           "10%, usually by less than 1%"})


class ProcessStatsOut(Schema):
    process_id = fields.String()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    elements = fields.Dict(keys=fields.String(), values=fields.Nested(ElementStatsOut),
                           metadata={"description": "element id -> its figures"})


class TermOut(Schema):
    code = fields.String(required=True)
    zh = fields.String(metadata={"description": "its own Simplified Chinese label"})
    en = fields.String(metadata={"description": "its own English label"})
    parent = fields.String(allow_none=True, metadata={"description": "the code of its group, if any"})
    retired = fields.String(allow_none=True, metadata={"description": "ISO date it was retired on: not "
                                                                      "offered for new input, still valid on old data"})
    group = fields.Boolean(metadata={"description": "true: it has sub-terms and is not offered itself"})
    offered = fields.Boolean(metadata={"description": "whether new input may use it"})
    label_zh = fields.String(metadata={"description": "the label shown, with its group's (理赔纠纷 › 理赔时效)"})
    label_en = fields.String()


class VocabularyOut(Schema):
    title = fields.String()
    title_en = fields.String()
    terms = fields.List(fields.Nested(TermOut), metadata={"description": "in the file's order"})


class VocabulariesOut(Schema):
    vocabularies = fields.Dict(keys=fields.String(), values=fields.Nested(VocabularyOut),
                               metadata={"description": "name (category, product_line, cause, "
                                                        "responsible_party, ...) -> its terms"})


class ErrorBodyOut(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    field_messages = fields.Dict(keys=fields.String(), values=fields.String(), required=True, data_key="fields",
                                 metadata={"description": 'field (dotted path, e.g. "data.reason") -> what is '
                                                          'wrong with it'})
    request_id = fields.String(metadata={"description": "the request's id (also in the X-Request-ID response "
                                                        "header): it finds the request in the server's logs"})


class ErrorOut(Schema):
    """Every error the API answers (4xx, and the 500 that must never happen)."""
    error = fields.Nested(ErrorBodyOut, required=True)


# ---- request bodies --------------------------------------------------------------------------------------
class CompleteIn(Schema):
    data = fields.Dict(required=True, metadata={"description": "the task's form fields, as its JSON Schema "
                                                              "(GET /tasks/{task_id} → form) describes them"})


class WithdrawalIn(Schema):
    reason = fields.String(validate=validate.Length(max=REASON_MAX),
                           metadata={"description": "why the customer withdraws (optional)"})


class ReviewRequestIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=REASON_MAX),
                           metadata={"description": "why the customer disagrees with the decision"})


class RequestRecordedOut(Schema):
    """A customer's request taken by phone: the complaint as it stands after it, and the tasks it created."""
    number = fields.String()
    complaint = fields.Nested(ComplaintViewOut)
    tasks = fields.List(fields.Nested(TaskOut))


class ActionOut(Schema):
    name = fields.String(metadata={"description": "the message the action sends, e.g. extension_requested"})
    form = fields.Dict(metadata={"description": "the JSON Schema its data must fill (titles in Chinese, x-title-en)"})


class ActionListOut(Schema):
    """What the caller may tell the complaint's procedure now, besides its tasks."""
    number = fields.String()
    actions = fields.List(fields.Nested(ActionOut))


class AssignIn(CleanTextSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64),
                             metadata={"description": "the colleague's username"})


class SearchIn(Schema):
    q = fields.String(required=True, metadata={"description": "a complaint number, policy or claim number (exactly, "
                                                              "or in part from three characters), the customer's "
                                                              "name (in part, from two), phone or ID number"})

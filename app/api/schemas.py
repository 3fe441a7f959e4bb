"""Marshmallow schemas for what the API returns."""
from marshmallow import Schema, fields


class TaskOut(Schema):
    id = fields.String()
    name = fields.String()
    element_id = fields.String()
    complaint_number = fields.String(attribute="business_key")
    role = fields.String()
    state = fields.String()
    assignee = fields.Function(lambda t: t.assignee.username if t.assignee else None)
    completed_by = fields.Function(lambda t: t.completed_by.username if t.completed_by else None)
    due_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    completed_at = fields.AwareDateTime()
    has_form = fields.Function(lambda t: t.form is not None)


class QueueRowOut(TaskOut):
    complaint = fields.Dict()


class DeadlineOut(Schema):
    name = fields.String()
    element_id = fields.String()
    task = fields.String(attribute="host_element_id")
    due_at = fields.AwareDateTime()
    state = fields.String()
    closed_at = fields.AwareDateTime()


class AuditOut(Schema):
    at = fields.AwareDateTime()
    actor = fields.String()
    action = fields.String()
    task_id = fields.String()
    element_id = fields.String()
    data = fields.Dict()


class ComplaintOut(Schema):
    number = fields.String()
    channel = fields.String()
    customer_name = fields.String()
    phone = fields.String()
    email = fields.String()
    id_number = fields.String()
    policy_number = fields.String()
    claim_number = fields.String()
    claim_handler = fields.String()
    category = fields.String()
    description = fields.String()
    received_at = fields.AwareDateTime()
    status = fields.String()
    current_step = fields.String()
    outcome = fields.String()
    satisfied = fields.Boolean(allow_none=True)
    rounds = fields.Integer()
    risk_level = fields.String()
    accepted_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime()

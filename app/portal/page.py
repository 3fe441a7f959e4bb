"""What the customer's page shows and offers, read from the flat tables only (complaint,
process_instance, human_task, outbox_message, delivery, survey_response, audit_event by their indexes):
no workflow is loaded. Which task the customer may answer comes from its form's `x-customer`, which
actions are open from the instance's `awaits` and the complaint's `review_until`."""
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

from flask_babel import force_locale, gettext as _
from sqlalchemy import select

from .. import customer_requests
from ..complaints import PERSONAL_FIELDS, tasks_of
from ..extensions import db
from ..models import Complaint, Delivery, HumanTask, OutboxMessage, ProcessInstance, SurveyResponse
from ..outbox import CHANNELS
from ..portal_links import LINK_MARK
from ..web.ui import forms_of_version, message_label
from .access import LANGUAGES
from ..engine.runtime import customer_may_answer
from .forms import customer_schema


def link_text(language) -> str:
    """What stands for the link in a message shown on the page, in the message's own language."""
    with force_locale(LANGUAGES.get(language or "zh", LANGUAGES["zh"])):
        return _("this page")


@dataclass
class CustomerTask:
    task: HumanTask
    schema: dict          # the form as deployed: what the answers are checked against
    shown: dict           # the same with the customer's wording


@dataclass
class Survey:
    message: OutboxMessage
    form: str
    schema: dict
    answered: bool


class Case:
    """One complaint as its customer sees it; each part is read once, when first asked for."""

    def __init__(self, complaint: Complaint):
        self.complaint = complaint

    @cached_property
    def instances(self) -> dict:
        """The complaint's instance and any other started for it (e.g. a review), by id: what the page reads of
        each (its version and the messages it waits for), not its workflow."""
        rows = db.session.execute(select(ProcessInstance.id, ProcessInstance.version_id, ProcessInstance.awaits)
                                  .where(ProcessInstance.business_key == self.complaint.number))
        return {row.id: row for row in rows}

    @cached_property
    def open_tasks(self) -> list[HumanTask]:
        return tasks_of(db.session, self.complaint, open_only=True)

    def forms(self, instance_id) -> dict:
        instance = self.instances.get(instance_id)
        return forms_of_version(instance.version_id) if instance is not None else {}

    @cached_property
    def customer_tasks(self) -> list[CustomerTask]:
        found = []
        for task in self.open_tasks:
            schema = self.forms(task.instance_id).get(task.form) if task.form else None
            if customer_may_answer(schema):
                found.append(CustomerTask(task, schema, customer_schema(schema)))
        return found

    def customer_task(self, task_id) -> Optional[CustomerTask]:
        return next((t for t in self.customer_tasks if t.task.id == task_id), None)

    def answered_task(self, task_id) -> Optional[HumanTask]:
        """A task of this complaint that is no longer open (answered by someone, or withdrawn)."""
        task = db.session.get(HumanTask, str(task_id))
        if task is None or task.instance_id not in self.instances or task.state == "open":
            return None
        return task

    # ---- where the complaint stands ------------------------------------------------------------------
    @property
    def status(self) -> str:
        """received | under_review | being_handled | waiting_for_you | closed | withdrawn."""
        complaint = self.complaint
        if complaint.status == "closed":
            return "withdrawn" if complaint.outcome == customer_requests.WITHDRAWN else "closed"
        if self.customer_tasks:
            return "waiting_for_you"
        if complaint.accepted_at is not None:
            return "being_handled"
        return "under_review" if any(t.assignee_id for t in self.open_tasks) else "received"

    @property
    def next_due(self):
        """By when the next thing happens: the customer's own answer if one is asked, else the
        earliest deadline of the work in hand (None if there is none)."""
        tasks = [t.task for t in self.customer_tasks] or self.open_tasks
        dues = [t.due_at for t in tasks if t.due_at is not None]
        return min(dues) if dues else None

    # ---- what we sent them --------------------------------------------------------------------------
    @cached_property
    def message_rows(self) -> list[OutboxMessage]:
        return list(db.session.execute(select(OutboxMessage).where(
            OutboxMessage.business_key == self.complaint.number)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)).scalars())

    @cached_property
    def messages(self) -> list[dict]:
        """Newest first: subject, date, body (personal data masked, the link named as this page),
        status, and the status per channel it went by."""
        ids = [m.id for m in self.message_rows]
        channels = {}
        for delivery in db.session.execute(select(Delivery).where(Delivery.message_id.in_(ids),
                                                                  Delivery.channel.in_(CHANNELS))
                                           .order_by(Delivery.id)).scalars():
            channels.setdefault(delivery.message_id, []).append((delivery.channel, delivery.status))
        return [{"id": m.id, "subject": self.masked(m.subject) or message_label(m.template),
                 "at": m.sent_at or m.created_at, "body": self.masked(m.body).replace(LINK_MARK, link_text(m.language)),
                 "language": "en" if m.language == "en" else "zh-CN", "status": m.status,
                 "channels": channels.get(m.id, [])}
                for m in reversed(self.message_rows)]

    def masked(self, text: Optional[str]) -> str:
        """`text` with the complaint's personal data (name, phone, e-mail, ID number) masked."""
        text = text or ""
        for field, mask in PERSONAL_FIELDS.items():
            value = getattr(self.complaint, field)
            if value and len(value) > 1:
                text = text.replace(value, mask(value))
        return text

    # ---- what they may do ---------------------------------------------------------------------------
    @cached_property
    def survey(self) -> Optional[Survey]:
        """The newest survey a message asked for (payload "survey" naming a deployed form)."""
        for message in reversed(self.message_rows):
            name = (message.payload or {}).get("survey")
            schema = self.forms(message.instance_id).get(name) if isinstance(name, str) else None
            if schema:
                answered = db.session.execute(select(SurveyResponse.id).where(
                    SurveyResponse.complaint_id == self.complaint.id)).first() is not None
                return Survey(message, name, customer_schema(schema), answered)
        return None

    @property
    def may_withdraw(self) -> bool:
        return customer_requests.withdrawable(self.complaint, self.instances.get(self.complaint.instance_id))

    def review(self, now) -> Optional[str]:
        """None (no decision yet), "open", "requested" or "ended"."""
        return customer_requests.review_state(db.session, self.complaint, now)

"""Queueing, inside the workflow's own transaction: each message the change wrote is rendered in the
customer's language, gets its idempotency key and portal link (stored hashed), and one Delivery per
channel the customer registered and did not opt out of. A message with no channel gets one failed
delivery saying so at once; the dispatcher's next pass turns it into work like any failure."""
import uuid

from sqlalchemy import insert, select

from .. import audit, portal_links
from ..messages import render
from ..complaints import complaint_of
from ..models import Delivery, ProcessVersion
from ..timeutil import utcnow
from . import NO_CHANNEL
from .content import render_context


def channels_for(complaint) -> list[str]:
    """The channels a complaint's customer is reached on: phone -> sms, e-mail -> email, minus opt-outs."""
    if complaint is None:
        return []
    found = []
    if complaint.phone and not complaint.sms_opt_out:
        found.append("sms")
    if complaint.email and not complaint.email_opt_out:
        found.append("email")
    return found


def make_queue_sync(config):
    """The runtime hook (runtime.record_syncs) that queues the messages a change wrote."""
    cached = {}      # version id -> its own templates (versions are immutable)

    def queue_messages(session, inst, change):
        if not change.messages:
            return
        complaint = change.record if change.record is not None else complaint_of(session, inst.business_key)
        templates = cached.get(inst.version_id)
        if templates is None:
            version = session.get(ProcessVersion, inst.version_id)
            templates = templates_of(session, version)
            if version.messages:
                cached[inst.version_id] = templates     # a fallback to a newer version's may change
        for message in change.messages:
            queue(session, config, complaint, templates, message, change.after_flush)
    return queue_messages


def templates_of(session, version: ProcessVersion) -> dict:
    """The templates a version's messages are written with: its own; for a version deployed before
    templates were deployed with the process (migration 0012 gave it none), those of the newest version
    of the same process that has them, so its running complaints keep telling their customers."""
    if version.messages:
        return version.messages
    newer = session.execute(select(ProcessVersion.messages).where(
        ProcessVersion.process_id == version.process_id).order_by(ProcessVersion.version.desc())).scalars()
    return next((messages for messages in newer if messages), {})


def queue(session, config, complaint, templates: dict, message, after_flush: list):
    """Render `message`, give it a key and a link, and create its deliveries: one INSERT of them all, added to
    `after_flush` (the change's writes once the message has its id; the ORM's flush would insert them one by one
    on SQLite, which cannot return the ids of a multi-row INSERT in order). A template that does not render
    raises messages.MessageError (a ProcessError): the whole change fails, saying which and why."""
    message.key = uuid.uuid4().hex
    message.language = complaint.language if complaint else "zh"
    rendered = render(templates, message.template, message.language,
                      render_context(config, complaint, message.business_key, message.payload))
    message.subject, message.sms_text, message.body = rendered.subject, rendered.sms, rendered.body
    if complaint is not None:
        portal_links.record(session, portal_links.secret(config), complaint, message,
                            config.get("PORTAL_LINK_DAYS", 90))
    content = {"sms": rendered.sms, "email": rendered.body}      # an empty block: not sent on that channel
    channels = [channel for channel in channels_for(complaint) if content[channel]]
    now = utcnow()
    rows = [dict(channel=channel, status="queued", attempts=0, next_attempt_at=now, created_at=now)
            for channel in channels] or [_no_channel(session, message, now)]
    after_flush.append(lambda s: s.execute(insert(Delivery), [{"message_id": message.id, **row} for row in rows]))


def _no_channel(session, message, now) -> dict:
    """A message nobody can be sent: a failed delivery saying so (the row returned), which the dispatcher turns
    into work like any other failure (undelivered.py)."""
    audit.record(session, "outbox", "customer_message_failed", instance_id=message.instance_id,
                 business_key=message.business_key,
                 data={"template": message.template, "channel": None, "attempts": 0, "error": "no channel"})
    return dict(channel=NO_CHANNEL, status="failed", attempts=0, next_attempt_at=now, created_at=now,
                last_error="no channel")

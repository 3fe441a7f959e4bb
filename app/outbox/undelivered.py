"""A message that cannot be delivered becomes work: the process that catches the message
"message_undelivered" (processes/customer_contact.bpmn: customer service calls the customer) is started
for the complaint once every channel of the message is done and one of them failed for good (partial
success counts as failed: the customer may not have read it, and the details on file need checking).
The message turns "failed" in the same transaction that starts it, so the follow-up
is started once, and again on the next pass if starting it failed."""
import logging

from sqlalchemy import select, update

from .. import audit
from ..models import Delivery, OutboxMessage
from . import CHANNELS, NO_CHANNEL

log = logging.getLogger(__name__)
MESSAGE_NAME = "message_undelivered"
DATE_FIELDS = ("review_until", "review_due", "result_due")     # what of a failed message its follow-up is given


def waiting(session, limit=100) -> list[int]:
    """Messages decided as failed whose follow-up has not been started yet: one delivery failed for
    good and none is still queued or sending (a channel that was sent does not prevent it)."""
    def deliveries(*statuses):
        return select(Delivery.id).where(Delivery.message_id == OutboxMessage.id,
                                         Delivery.status.in_(statuses)).exists()
    return session.execute(select(OutboxMessage.id).where(
        OutboxMessage.status == "queued", deliveries("failed"), ~deliveries("queued", "sending"))
        .order_by(OutboxMessage.id).limit(limit)).scalars().all()


def escalate_all(session, runtime) -> int:
    """Start the follow-up of every waiting message; returns how many were started (or had no process)."""
    done = 0
    ids = waiting(session)
    session.rollback()
    for message_id in ids:
        done += escalate(session, runtime, message_id)
    return done


def escalate(session, runtime, message_id) -> bool:
    """Mark the message failed and start its follow-up, in one transaction. False when another
    dispatcher did it first, or when starting failed (rolled back: tried again next pass)."""
    taken = session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id,
                                                        OutboxMessage.status == "queued")
                            .values(status="failed").execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        session.rollback()
        return False
    message = session.get(OutboxMessage, message_id)
    failed = session.execute(select(Delivery.channel, Delivery.last_error).where(
        Delivery.message_id == message_id, Delivery.status == "failed").order_by(Delivery.id)).all()
    payload = {"template": message.template, "message_id": message.id,
               "channels": [channel for channel, _ in failed if channel in CHANNELS],
               "reason": "; ".join(error if channel == NO_CHANNEL else f"{channel}: {error}"
                                   for channel, error in failed)[:400]}
    audit.record(session, "outbox", "customer_message_undelivered", instance_id=message.instance_id,
                 business_key=message.business_key, data=payload)
    # The dates the message carried (e.g. a decision's review_until), for the follow-up's diagram to act
    # on; not its text, which may quote the customer.
    payload["sent"] = {key: value for key, value in (message.payload or {}).items() if key in DATE_FIELDS}
    try:
        change = runtime.start_on_message(MESSAGE_NAME, payload=payload, actor="outbox",
                                          business_key=message.business_key)
        session.commit()
    except Exception:  # noqa: BLE001  (the message stays queued with its failed delivery: retried next pass)
        session.rollback()
        log.exception("message %s (%s): the follow-up for an undelivered message could not be started; "
                      "retried on the next pass", message_id, payload["template"])
        return False
    if change is None:
        log.warning("message %s (%s) could not be delivered and no deployed process starts on %r",
                    message_id, payload["template"], MESSAGE_NAME)
    return True

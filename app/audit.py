"""The append-only, hash-chained audit trail."""
import hashlib
import json

from sqlalchemy import select

from .models import AuditEvent, AuditHead
from .timeutil import utcnow

GENESIS = "0" * 64


def _digest(prev_hash, event: AuditEvent) -> str:
    body = json.dumps([prev_hash, event.at.isoformat(), event.actor, event.action, event.instance_id,
                       event.business_key, event.task_id, event.element_id, event.data],
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def record(session, actor, action, *, instance_id=None, business_key=None, task_id=None, element_id=None,
           data=None) -> AuditEvent:
    # Locking the head row serialises appends, so two transactions never chain onto the same row.
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_hash=GENESIS)
        session.add(head)
    event = AuditEvent(at=utcnow(), actor=actor, action=action, instance_id=instance_id,
                       business_key=business_key, task_id=task_id, element_id=element_id,
                       data=json.loads(json.dumps(data or {}, default=str)), prev_hash=head.last_hash)
    event.hash = _digest(head.last_hash, event)
    head.last_hash = event.hash
    session.add(event)
    return event


def verify(session):
    """Walk the chain; return (number of rows checked, id of the first broken row or None)."""
    prev = GENESIS
    count = 0
    for event in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        if event.prev_hash != prev or _digest(prev, event) != event.hash:
            return count, event.id
        prev = event.hash
        count += 1
    head = session.get(AuditHead, 1)
    if head is not None and head.last_hash != prev:
        return count, "head"
    return count, None

"""The append-only, hash-chained audit trail."""
import hashlib
import json

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from .models import AuditEvent, AuditHead
from .timeutil import utcnow

GENESIS = "0" * 64


def _digest(prev_hash, event: AuditEvent) -> str:
    body = json.dumps([prev_hash, event.at.isoformat(), event.actor, event.action, event.instance_id,
                       event.business_key, event.task_id, event.element_id, event.data],
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _locked_head(session) -> AuditHead:
    """The head row, locked once per transaction: locking serialises appends, so two transactions
    never chain onto the same row."""
    head = session.info.get("audit_head")
    if head is not None and head in session:
        return head
    # The no-op UPDATE takes the write lock first: SQLite ignores FOR UPDATE and its driver reads
    # outside transactions, so without it two appends could both chain onto the same head.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=AuditHead.last_hash))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_hash=GENESIS)
        session.add(head)
    session.info["audit_head"] = head
    return head


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session, transaction):
    if transaction.parent is None:      # the outermost transaction ended: the lock is gone
        session.info.pop("audit_head", None)


def record(session, actor, action, *, instance_id=None, business_key=None, task_id=None, element_id=None,
           data=None) -> AuditEvent:
    head = _locked_head(session)
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
    for row in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        if row.prev_hash != prev or _digest(prev, row) != row.hash:
            return count, row.id
        prev = row.hash
        count += 1
    head = session.get(AuditHead, 1)
    if head is not None and head.last_hash != prev:
        return count, "head"
    return count, None

"""The append-only audit trail: one hash chain per case file, sealed from time to time.

An append locks only its own chain's head (AuditChain), so changes to different complaints never wait
on each other's audit rows. `record` only buffers the event; a transaction's events are written when it
flushes or commits, one INSERT per flush, after one statement that locks the chain's head and reads it
(`claim`; none when the change's instance lock took it already, app.engine.runtime) and one UPDATE that
moves it; a new chain's head is inserted with its first rows. `seal` (run by the scheduler and by `flask
audit seal`) fixes the heads of the chains that grew since the last seal, chained to it and signed, so that
a chain removed whole shows too."""
import hashlib
import hmac
import json
from typing import Optional

from sqlalchemy import String, bindparam, cast, event, func, insert, literal, select, update
from sqlalchemy.orm import Session

from .extensions import upsert_insert
from .models import AuditChain, AuditEvent, AuditSeal, AuditSealHead
from .timeutil import utcnow

GENESIS = "0" * 64
SYSTEM = "system"                 # the chain of what concerns no complaint (logins, deployments, calendar)
_PENDING = "audit_pending"        # session.info: events recorded but not written yet
_HEADS = "audit_heads"            # session.info: chain -> (seq, hash) locked by this transaction
COLUMNS = ("chain", "seq", "at", "actor", "action", "instance_id", "business_key", "task_id", "element_id",
           "data", "prev_hash", "hash")


def chain_of(business_key, instance_id) -> str:
    """The chain an event belongs to: its complaint's, else its instance's, else the system's."""
    if business_key:
        return business_key
    return f"instance:{instance_id}" if instance_id is not None else SYSTEM


def digest(row) -> str:
    """The hash of an audit row (an AuditEvent or anything with its attributes); it covers the row's
    place in its chain and the hash before it."""
    body = json.dumps([row.chain, row.seq, row.prev_hash, row.at.isoformat(), row.actor, row.action, row.instance_id,
                       row.business_key, row.task_id, row.element_id, row.data],
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def record(session, actor, action, *, instance_id=None, business_key=None, task_id=None, element_id=None,
           data=None) -> AuditEvent:
    """Buffer an event for this transaction; it is written when the transaction flushes or commits
    (or at `flush`), and dropped if it rolls back."""
    event = AuditEvent(chain=chain_of(business_key, instance_id), at=utcnow(), actor=actor, action=action,
                       instance_id=instance_id, business_key=business_key, task_id=task_id, element_id=element_id,
                       data=json.loads(json.dumps(data or {}, default=str)))
    session.connection()        # within the session's transaction, so that its rollback drops the event
    session.info.setdefault(_PENDING, []).append(event)
    return event


def flush(session):
    """Write the buffered events now, e.g. before a query that must see them."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        _append(session, pending)


@event.listens_for(Session, "before_flush")
def _before_flush(session, _context, _instances):
    flush(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session):
    flush(session)


@event.listens_for(Session, "after_transaction_end")
def _forget(session, transaction):
    if transaction.parent is None or transaction.nested:
        session.info.pop(_HEADS, None)      # the locks are gone, or a savepoint undid an append
    if transaction.parent is None:
        session.info.pop(_PENDING, None)    # a rolled-back change leaves no audit trace


def _append(session, events):
    conn = session.connection()
    heads = session.info.setdefault(_HEADS, {})
    chains = {}
    for e in events:
        chains.setdefault(e.chain, []).append(e)
    for chain, chained in chains.items():
        head = heads.get(chain) or _claimed(conn, chain)
        if head is None:                       # the chain's first events: its head is written with them
            head = _link(chained, 0, GENESIS)
            if _created(conn, chain, *head):
                heads[chain] = head
                continue
            head = _claimed(conn, chain)       # created meanwhile by another transaction, now committed
        heads[chain] = seq, prev = _link(chained, *head)
        conn.execute(update(AuditChain).where(AuditChain.chain == chain).values(seq=seq, hash=prev, sealed=False))
    conn.execute(insert(AuditEvent), [{c: getattr(e, c) for c in COLUMNS} for e in events])


def _link(events, seq, prev) -> tuple[int, str]:
    """Give `events` their places after the head (seq, prev); returns the new head."""
    for e in events:
        seq += 1
        e.seq, e.prev_hash = seq, prev
        e.hash = prev = digest(e)
    return seq, prev


def _claimed(conn, chain) -> Optional[tuple[int, str]]:
    """Lock the chain's head for this transaction and read it; None before the chain's first event. A
    concurrent append to the same chain waits, then reads the newer head."""
    head = conn.execute(claim(chain, conn.dialect.name)).first()
    return (head.seq, head.hash) if head is not None else None


def _created(conn, chain, seq, hash_) -> bool:
    """Write a new chain's head; False when another transaction created the chain first (this one waited for it
    to end). The new row stays locked by this transaction."""
    new = upsert_insert(conn)(AuditChain).values(chain=chain, seq=seq, hash=hash_, sealed=False) \
        .on_conflict_do_nothing().returning(AuditChain.chain)
    return conn.execute(new).first() is not None


def claim(chain, dialect):
    """The statement that locks a chain's head and reads it: (chain, seq, hash), no row if the chain has
    none yet. `chain` a name or a SQL expression (e.g. `chain_sql` of the instance being changed). It changes
    nothing (a change that writes no audit row leaves the chain sealed); the append's move of the head does.
    On SQLite an UPDATE, which takes the database's write lock before anything is read; elsewhere the row's
    lock (FOR UPDATE), which writes no new version of the row as an UPDATE would."""
    columns = (AuditChain.chain, AuditChain.seq, AuditChain.hash)
    if dialect == "sqlite":
        return update(AuditChain).where(AuditChain.chain == chain).values(seq=AuditChain.seq).returning(*columns)
    return select(*columns).where(AuditChain.chain == chain).with_for_update()


def chain_sql(business_key, instance_id):
    """`chain_of` in SQL, of these columns (e.g. ProcessInstance's)."""
    return func.coalesce(func.nullif(business_key, ""), literal("instance:") + cast(instance_id, String))


def adopt_head(session, chain, seq, hash_):
    """The caller read the chain's head (seq, hash) with a lock on it that this transaction holds (the
    `claim` statement, or FOR UPDATE of its AuditChain row): this transaction's appends to the chain start
    from it without claiming it again."""
    session.info.setdefault(_HEADS, {})[chain] = (seq, hash_)


# ---- seals -----------------------------------------------------------------------------------------
def seal_key(config) -> bytes:
    """The key that signs seals: AUDIT_SEAL_KEY, else one derived from SECRET_KEY. It lives outside the
    database, so whoever can only write the database cannot forge a seal."""
    key = config.get("AUDIT_SEAL_KEY") or hmac.new(config["SECRET_KEY"].encode(), b"audit-seal",
                                                    hashlib.sha256).hexdigest()
    return key.encode()


def seal_digest(prev_hash, at, heads) -> str:
    """`heads`: (chain, seq, hash) tuples, sorted by chain."""
    body = json.dumps([prev_hash, at.isoformat(), [list(h) for h in heads]], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def sign(key: bytes, seal_hash: str) -> str:
    return hmac.new(key, seal_hash.encode(), hashlib.sha256).hexdigest()


def seal(session, key: bytes):
    """Fix the heads of every chain that grew since the last seal; returns the AuditSeal, or None when
    nothing grew. A chain that grows while this runs stays unsealed (its head moved) and is taken by
    the next seal."""
    heads = session.execute(select(AuditChain.chain, AuditChain.seq, AuditChain.hash)
                            .where(AuditChain.sealed.is_(False)).order_by(AuditChain.chain)).all()
    if not heads:
        return None
    last = session.execute(select(AuditSeal).order_by(AuditSeal.id.desc()).limit(1)).scalar_one_or_none()
    prev, at = last.hash if last else GENESIS, utcnow()
    heads = [tuple(h) for h in heads]
    seal_hash = seal_digest(prev, at, heads)
    row = AuditSeal(at=at, prev_hash=prev, hash=seal_hash, signature=sign(key, seal_hash), heads=len(heads))
    session.add(row)
    session.flush()
    session.execute(insert(AuditSealHead), [{"seal_id": row.id, "chain": c, "seq": s, "hash": h} for c, s, h in heads])
    chains = AuditChain.__table__
    session.connection().execute(      # only where the head did not move meanwhile
        chains.update().where(chains.c.chain == bindparam("b_chain"), chains.c.seq == bindparam("b_seq"))
        .values(sealed=True), [{"b_chain": c, "b_seq": s} for c, s, _ in heads])
    session.commit()
    return row

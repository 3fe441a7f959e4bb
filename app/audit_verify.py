"""Checking the audit trail: every chain row by row, every chain's head, and every seal (its link to
the seal before, its hash, its signature, and the rows it fixed), for all chains or for one complaint."""
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import and_, or_, select

from .audit import GENESIS, digest, seal_digest, sign
from .models import AuditChain, AuditEvent, AuditSeal, AuditSealHead


@dataclass
class Finding:
    what: str                      # "audit row 17", "chain 20261130000001", "seal 3"
    reason: str
    row_id: Optional[int] = None


@dataclass
class Report:
    rows: int = 0
    chains: int = 0
    seals: int = 0
    findings: list = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


def verify(session, key: bytes, chain: Optional[str] = None) -> Report:
    """Check the whole trail, or only `chain` (one complaint's case file) and the seals that fixed it."""
    report = Report()
    tails = _check_rows(session, chain, report)
    _check_heads(session, chain, tails, report)
    _check_seals(session, key, chain, report)
    _check_sealed_rows(session, chain, report)
    report.findings.sort(key=lambda f: (f.row_id is None, f.row_id or 0))
    return report


def _check_rows(session, chain, report) -> dict:
    """Walk each chain in order; the first bad row of a chain is reported and the rest of that chain
    skipped. Returns {chain: (last seq, last hash)} of the rows read."""
    query = select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq).execution_options(yield_per=2000)
    if chain is not None:
        query = query.where(AuditEvent.chain == chain)
    tails, broken = {}, set()
    for row in session.execute(query).scalars():
        report.rows += 1
        seq, prev = tails.get(row.chain, (0, GENESIS))
        tails[row.chain] = (row.seq, row.hash)
        if row.chain in broken:
            continue
        reason = "a row before it is missing" if row.seq != seq + 1 else \
            "it does not link to the row before it" if row.prev_hash != prev else \
            "it was altered (its hash does not match)" if digest(row) != row.hash else None
        if reason:
            broken.add(row.chain)
            report.findings.append(Finding(f"audit row {row.id}", f"chain {row.chain}: {reason}", row.id))
    report.chains = len(tails)
    return tails


def _check_heads(session, chain, tails, report):
    """Each chain's head names its last row: a chain cut short, or rows without a head, show."""
    query = select(AuditChain)
    if chain is not None:
        query = query.where(AuditChain.chain == chain)
    heads = {h.chain: h for h in session.execute(query).scalars()}
    for name, (seq, last) in tails.items():
        head = heads.get(name)
        if head is None:
            report.findings.append(Finding(f"chain {name}", "its head is missing"))
        elif (head.seq, head.hash) != (seq, last):
            report.findings.append(Finding(f"chain {name}", f"its head names row {head.seq}, its last row is {seq}"))
    for name, head in heads.items():
        if name not in tails and head.seq:
            report.findings.append(Finding(f"chain {name}", "its rows are gone"))


def _check_seals(session, key, chain, report):
    """Seals link one to the next; each one's hash covers its heads and its signature its hash."""
    prev = GENESIS
    seals = session.execute(select(AuditSeal).order_by(AuditSeal.id)).scalars().all()
    covering = None if chain is None else set(session.execute(
        select(AuditSealHead.seal_id).where(AuditSealHead.chain == chain)).scalars())
    for seal in seals:
        report.seals += 1
        reason = "it does not link to the seal before it" if seal.prev_hash != prev else None
        if reason is None and (covering is None or seal.id in covering):
            heads = session.execute(select(AuditSealHead.chain, AuditSealHead.seq, AuditSealHead.hash)
                                    .where(AuditSealHead.seal_id == seal.id).order_by(AuditSealHead.chain)).all()
            if len(heads) != seal.heads or seal_digest(seal.prev_hash, seal.at, [tuple(h) for h in heads]) != seal.hash:
                reason = "its heads were altered"
            elif sign(key, seal.hash) != seal.signature:
                reason = "its signature does not match (forged, or signed with another key)"
        if reason:
            report.findings.append(Finding(f"seal {seal.id}", reason))
        prev = seal.hash


def _check_sealed_rows(session, chain, report):
    """Every row a seal fixed is still there with the hash it had: a chain deleted whole or cut short
    after a seal shows, even with its head."""
    query = select(AuditSealHead.seal_id, AuditSealHead.chain, AuditSealHead.seq).outerjoin(
        AuditEvent, and_(AuditEvent.chain == AuditSealHead.chain, AuditEvent.seq == AuditSealHead.seq)
    ).where(or_(AuditEvent.id.is_(None), AuditEvent.hash != AuditSealHead.hash))
    if chain is not None:
        query = query.where(AuditSealHead.chain == chain)
    for seal_id, name, seq in session.execute(query.order_by(AuditSealHead.seal_id, AuditSealHead.chain)):
        report.findings.append(Finding(f"chain {name}", f"seal {seal_id} fixed its row {seq}, which is gone or altered"))

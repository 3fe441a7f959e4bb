"""One audit hash chain per complaint instead of one global chain with a head row every change locked:
audit_event gets its chain and position, audit_chain holds each chain's head, audit_seal(+_head) the
signed checkpoints over all chains; audit_head goes.

The existing rows are checked against the old global chain first, then chained again per complaint
(their hashes change: a hash now covers the row's chain and position). What the old chain was — its
last hash, how many rows, whether it was intact and where it first broke — is written as the first
event of the `system` chain, so the evidence of the old chain is kept in the new one.

Revision ID: 0015
Revises: 0014
"""
import hashlib
import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from app.timeutil import UTCDateTime

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
BATCH = 5000

# Frozen copies of the hashing as of this revision (app.audit may change later; this must not).
_event = sa.table('audit_event', sa.column('id', sa.Integer), sa.column('chain', sa.String),
                  sa.column('seq', sa.Integer), sa.column('at', UTCDateTime), sa.column('actor', sa.String),
                  sa.column('action', sa.String), sa.column('instance_id', sa.Integer),
                  sa.column('business_key', sa.String), sa.column('task_id', sa.String),
                  sa.column('element_id', sa.String), sa.column('data', sa.JSON),
                  sa.column('prev_hash', sa.String), sa.column('hash', sa.String))


def _old_digest(prev, r):
    body = json.dumps([prev, r.at.isoformat(), r.actor, r.action, r.instance_id, r.business_key, r.task_id,
                       r.element_id, r.data], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _digest(chain, seq, prev, r):
    body = json.dumps([chain, seq, prev, r["at"].isoformat(), r["actor"], r["action"], r["instance_id"],
                       r["business_key"], r["task_id"], r["element_id"], r["data"]],
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _chain_of(r):
    if r.business_key:
        return r.business_key
    return f"instance:{r.instance_id}" if r.instance_id is not None else "system"


def upgrade():
    op.add_column('audit_event', sa.Column('chain', sa.String(length=80), nullable=True))
    op.add_column('audit_event', sa.Column('seq', sa.Integer(), nullable=True))
    chains = op.create_table(
        'audit_chain',
        sa.Column('chain', sa.String(length=80), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('sealed', sa.Boolean(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('chain', name=op.f('pk_audit_chain')))
    op.create_index(op.f('ix_audit_chain_sealed'), 'audit_chain', ['sealed'], unique=False)
    op.create_table(
        'audit_seal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('signature', sa.String(length=64), nullable=False),
        sa.Column('heads', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_seal')))
    op.create_table(
        'audit_seal_head',
        sa.Column('seal_id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=80), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['seal_id'], ['audit_seal.id'], name=op.f('fk_audit_seal_head_seal_id_audit_seal')),
        sa.PrimaryKeyConstraint('seal_id', 'chain', name=op.f('pk_audit_seal_head')))
    op.create_index(op.f('ix_audit_seal_head_chain'), 'audit_seal_head', ['chain'], unique=False)

    heads = _rechain(op.get_bind())
    op.bulk_insert(chains, [{"chain": c, "seq": s, "hash": h, "sealed": False} for c, (s, h) in heads.items()])

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.alter_column('chain', existing_type=sa.String(length=80), nullable=False)
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_chain'), ['chain', 'seq'])
    op.drop_table('audit_head')


def _rechain(conn) -> dict:
    """Check the old global chain, chain every row again per complaint, and record what the old chain
    was. Returns {chain: (last seq, last hash)}."""
    old_prev, intact, first_broken, count = GENESIS, True, None, 0
    heads, updates = {}, []
    for r in _rows(conn):
        if intact and (r.prev_hash != old_prev or _old_digest(old_prev, r) != r.hash):
            intact, first_broken = False, r.id
        old_prev, count = r.hash, count + 1
        chain = _chain_of(r)
        seq, prev = heads.get(chain, (0, GENESIS))
        new_hash = _digest(chain, seq + 1, prev, r._mapping)
        heads[chain] = (seq + 1, new_hash)
        updates.append({"b_id": r.id, "b_chain": chain, "b_seq": seq + 1, "b_prev": prev, "b_hash": new_hash})
        if len(updates) >= BATCH:
            _write(conn, updates)
    _write(conn, updates)
    legacy_head = conn.execute(sa.text("SELECT last_hash FROM audit_head WHERE id = 1")).scalar()
    note = {"at": datetime.now(timezone.utc), "actor": "system", "action": "audit_rechained", "instance_id": None,
            "business_key": None, "task_id": None, "element_id": None,
            "data": {"rows": count, "legacy_last_hash": old_prev, "legacy_head": legacy_head,
                     "legacy_chain_intact": intact and legacy_head in (None, old_prev),
                     "legacy_first_broken_row": first_broken}}
    seq, prev = heads.get("system", (0, GENESIS))
    note.update(chain="system", seq=seq + 1, prev_hash=prev, hash=_digest("system", seq + 1, prev, note))
    conn.execute(sa.insert(_event).values(**note))
    heads["system"] = (seq + 1, note["hash"])
    return heads


def _rows(conn):
    """Every row in id order, a page at a time (no cursor stays open while rows are rewritten)."""
    last = 0
    while True:
        page = conn.execute(sa.select(_event).where(_event.c.id > last).order_by(_event.c.id).limit(BATCH)).all()
        yield from page
        if len(page) < BATCH:
            return
        last = page[-1].id


def _write(conn, updates):
    if updates:
        conn.execute(_event.update().where(_event.c.id == sa.bindparam("b_id")).values(
            chain=sa.bindparam("b_chain"), seq=sa.bindparam("b_seq"), prev_hash=sa.bindparam("b_prev"),
            hash=sa.bindparam("b_hash")), updates)
        updates.clear()


def downgrade():
    op.create_table('audit_head',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('last_hash', sa.String(length=64), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head')))
    op.execute("INSERT INTO audit_head (id, last_hash) VALUES (1, '" + GENESIS + "')")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_chain'), type_='unique')
        batch_op.drop_column('seq')
        batch_op.drop_column('chain')
    op.drop_index(op.f('ix_audit_seal_head_chain'), table_name='audit_seal_head')
    op.drop_table('audit_seal_head')
    op.drop_table('audit_seal')
    op.drop_index(op.f('ix_audit_chain_sealed'), table_name='audit_chain')
    op.drop_table('audit_chain')
    # The rows keep their per-complaint hashes: after a downgrade the old global chain does not verify.

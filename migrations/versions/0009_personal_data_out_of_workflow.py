"""personal data lives only on the complaint row: remove it from running workflows and snapshots

The customer's name, phone, e-mail and ID number were seeded into the workflow's task data at
intake. They are removed from every task's data (and the workflow data) of every instance and
pre-migration snapshot. The complaint row keeps them.

Revision ID: 0009
Revises: 0008
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PERSONAL = ("customer_name", "phone", "email", "id_number")


def _strip(node) -> bool:
    """Remove the personal keys from every `data` dict below `node`; True when something changed."""
    changed = False
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, dict):
                for name in PERSONAL:
                    if name in value:
                        del value[name]
                        changed = True
            changed |= _strip(value)
    elif isinstance(node, list):
        for value in node:
            changed |= _strip(value)
    return changed


def _rewrite(table):
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, workflow_json FROM {table}")).fetchall()
    for row_id, text in rows:
        if not text or not any(f'"{name}"' in text for name in PERSONAL):
            continue
        workflow = json.loads(text)
        if _strip(workflow):
            conn.execute(sa.text(f"UPDATE {table} SET workflow_json = :j WHERE id = :i"),
                         {"j": json.dumps(workflow), "i": row_id})


def upgrade():
    _rewrite("process_instance")
    _rewrite("instance_snapshot")


def downgrade():
    pass    # removed personal data is not put back into workflows; the complaint row still holds it

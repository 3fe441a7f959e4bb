"""the role queue's own index: a partial index of the open tasks nobody holds, in the queue's order within a
role, so that a page reads its 50 entries instead of sorting every unclaimed task of the role (issue 10)

Revision ID: 0029
Revises: 0028
"""
from alembic import op
import sqlalchemy as sa


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

UNCLAIMED = sa.text("state = 'open' AND assignee_id IS NULL")


def upgrade():
    op.create_index('ix_human_task_unclaimed', 'human_task', ['role', 'due_at', 'created_at', 'instance_id', 'id'],
                    postgresql_where=UNCLAIMED, sqlite_where=UNCLAIMED)


def downgrade():
    op.drop_index('ix_human_task_unclaimed', table_name='human_task')

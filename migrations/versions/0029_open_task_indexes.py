"""partial indexes of open tasks (issue 10): the role queue's own, of the open tasks nobody holds in the queue's order
within a role (a page reads its 50 entries instead of sorting every unclaimed task of the role; with each task's step,
for the queue page's step filter), and the overdue ones', open tasks by due time (the complaint list's "overdue"
filter read every open task's index entries on SQLite: 160 ms at 100,000 complaints)

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
OPEN = sa.text("state = 'open'")


def upgrade():
    op.create_index('ix_human_task_unclaimed', 'human_task',
                    ['role', 'due_at', 'created_at', 'instance_id', 'id', 'element_id'],
                    postgresql_where=UNCLAIMED, sqlite_where=UNCLAIMED)
    op.create_index('ix_human_task_open_due', 'human_task', ['due_at', 'business_key'],
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    op.drop_index('ix_human_task_open_due', table_name='human_task')
    op.drop_index('ix_human_task_unclaimed', table_name='human_task')

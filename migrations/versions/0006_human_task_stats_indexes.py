"""indexes for per-element statistics

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_element', ['state', 'element_id'], unique=False)
        batch_op.create_index('ix_human_task_completed', ['state', 'completed_at'], unique=False)


def downgrade():
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_completed')
        batch_op.drop_index('ix_human_task_element')

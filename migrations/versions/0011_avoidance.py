"""回避: claim_handler names a user (a handler outside the system moves to claim_handler_external);
human_task.unstaffed flags a task no eligible user may work

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_handler_external', sa.String(length=100), nullable=True))
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unstaffed', sa.Boolean(), server_default='0', nullable=False))
        batch_op.create_index('ix_human_task_unstaffed', ['unstaffed', 'state'], unique=False)
    # A free-text handler that names no user excluded nobody: keep it, labelled as outside the system.
    op.execute('UPDATE complaint SET claim_handler_external = claim_handler, claim_handler = NULL '
               'WHERE claim_handler IS NOT NULL AND claim_handler NOT IN (SELECT username FROM "user")')


def downgrade():
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_unstaffed')
        batch_op.drop_column('unstaffed')
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_column('claim_handler_external')

"""a user counts the changes to what they may work (their roles, whether they are active), so that a change
can tell from the sum over all users, read with its lock, whether who may work a role changed since it last
looked (issue 10, lean writes): who may work a new task is then known without a query of its own

Revision ID: 0032
Revises: 0031
"""
from alembic import op
import sqlalchemy as sa


revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('user', sa.Column('access_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('user', 'access_version')

"""the scheduler's heartbeat (/readyz)

Revision ID: 0025
Revises: 0024
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'scheduler_heartbeat',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_heartbeat')),
    )


def downgrade():
    op.drop_table('scheduler_heartbeat')

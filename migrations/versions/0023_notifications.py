"""what a user is told: their work e-mail address, whether the daily digest of their tasks goes there, when
they last looked at their notifications and when their last digest went out (one scheduler wins each day's)

Revision ID: 0023
Revises: 0022
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (no batch copy of the table on SQLite: every table that names a user would block it).
    op.add_column('user', sa.Column('email', sa.String(length=254), nullable=True))
    op.add_column('user', sa.Column('digest', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('user', sa.Column('notifications_seen_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('user', sa.Column('digest_sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), for the same reason.
    for column in ('digest_sent_at', 'notifications_seen_at', 'digest', 'email'):
        op.drop_column('user', column)

"""single sign-on: the OpenID Connect provider's issuer and the user's subject there, unique together

Revision ID: 0027
Revises: 0026
"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD / DROP COLUMN, never a batch copy of the table on SQLite: every table that names a user would
    # block dropping it (as in 0023).
    op.add_column('user', sa.Column('sso_issuer', sa.String(length=255), nullable=True))
    op.add_column('user', sa.Column('sso_subject', sa.String(length=255), nullable=True))
    op.create_index('ix_user_sso_identity', 'user', ['sso_issuer', 'sso_subject'], unique=True)


def downgrade():
    op.drop_index('ix_user_sso_identity', table_name='user')
    op.drop_column('user', 'sso_subject')
    op.drop_column('user', 'sso_issuer')

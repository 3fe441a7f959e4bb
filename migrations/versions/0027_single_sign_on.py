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
    with op.batch_alter_table('user') as batch:
        batch.add_column(sa.Column('sso_issuer', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('sso_subject', sa.String(length=255), nullable=True))
        batch.create_index('ix_user_sso_identity', ['sso_issuer', 'sso_subject'], unique=True)


def downgrade():
    with op.batch_alter_table('user') as batch:
        batch.drop_index('ix_user_sso_identity')
        batch.drop_column('sso_subject')
        batch.drop_column('sso_issuer')

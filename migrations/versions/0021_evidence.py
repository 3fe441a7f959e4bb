"""evidence files attached to a case (a complaint or another instance's case file): what was uploaded, by
whom and when, its SHA-256 (the content's key in the evidence store and in the audit chain) and the type
read from its content; internal notes need no table (they are audit events of the case's chain)

Revision ID: 0021
Revises: 0020
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'evidence_file',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_key', sa.String(length=100), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('field', sa.String(length=100), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('media_type', sa.String(length=100), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('description', sa.String(length=500), server_default='', nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['user.id'], name=op.f('fk_evidence_file_uploaded_by_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_file')),
        sa.UniqueConstraint('case_key', 'sha256', name='uq_evidence_file_case_key_sha256'),
    )
    op.create_index('ix_evidence_file_case_key_uploaded_at', 'evidence_file', ['case_key', 'uploaded_at'])


def downgrade():
    op.drop_index('ix_evidence_file_case_key_uploaded_at', table_name='evidence_file')
    op.drop_table('evidence_file')

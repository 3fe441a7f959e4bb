"""background jobs: bulk migrations and big exports worked by the scheduler, with a result per item

Revision ID: 0028
Revises: 0027
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'background_job',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('started_by', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done_count', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_by', sa.String(length=100), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('takeovers', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('result_file', sa.String(length=100), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_background_job')),
    )
    op.create_index('ix_background_job_state', 'background_job', ['state', 'lease_until'])
    op.create_index('ix_background_job_started_by', 'background_job', ['started_by', 'id'])
    op.create_table(
        'background_job_item',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=True),
        sa.Column('data', sa.JSON(), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('message', sa.String(length=1000), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['background_job.id'],
                                name=op.f('fk_background_job_item_job_id_background_job')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_background_job_item')),
        sa.UniqueConstraint('job_id', 'seq', name='uq_background_job_item_job_id_seq'),
    )
    op.create_index('ix_background_job_item_pending', 'background_job_item', ['job_id', 'outcome', 'seq'])


def downgrade():
    op.drop_index('ix_background_job_item_pending', table_name='background_job_item')
    op.drop_table('background_job_item')
    op.drop_index('ix_background_job_started_by', table_name='background_job')
    op.drop_index('ix_background_job_state', table_name='background_job')
    op.drop_table('background_job')

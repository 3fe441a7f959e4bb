"""a background job's files (an export's slices and its result) kept in the database instead of JOBS_DIR, so that
every web worker on every host reads the file the scheduler wrote (no shared folder)

Revision ID: 0033
Revises: 0032
"""
from alembic import op
import sqlalchemy as sa


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'background_job_file',
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['background_job.id'],
                                name=op.f('fk_background_job_file_job_id_background_job')),
        sa.PrimaryKeyConstraint('job_id', 'name', name=op.f('pk_background_job_file')))
    # The result of a job finished before this version stays in JOBS_DIR and is not carried over: its download
    # says the file is gone, and the user exports again. An export still under way starts its slices again (those
    # it wrote are in JOBS_DIR), so that its end finds every slice in the database.
    under_way = "kind = 'list_export' AND state IN ('queued', 'running')"
    op.execute("UPDATE background_job_item SET outcome = NULL, message = NULL, done_at = NULL "
               f"WHERE job_id IN (SELECT id FROM background_job WHERE {under_way})")
    op.execute(f"UPDATE background_job SET done_count = 0 WHERE {under_way}")


def downgrade():
    op.drop_table('background_job_file')

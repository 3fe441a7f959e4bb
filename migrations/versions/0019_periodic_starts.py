"""the quarterly review's starts and measures: periodic_start (one instance per process and period, so a
repeated cron firing or a second scheduler cannot start a second review), and each improvement measure's
number within its review, what its owner did and when; a human task's subject (a line from the diagram saying
what this one is about, e.g. which measure)

Revision ID: 0019
Revises: 0018
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'periodic_start',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('process_id', sa.String(length=100), nullable=False),
        sa.Column('period', sa.String(length=64), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('started_by', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_periodic_start_instance_id_process_instance')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_periodic_start')),
        sa.UniqueConstraint('instance_id', name=op.f('uq_periodic_start_instance_id')),
        sa.UniqueConstraint('process_id', 'period', name='uq_periodic_start_process_id_period'),
    )
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=200), nullable=True))
    with op.batch_alter_table('improvement_measure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('actions_taken', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('completed_on', sa.Date(), nullable=True))
        batch_op.create_unique_constraint('uq_improvement_measure_review_instance_id_seq',
                                          ['review_instance_id', 'seq'])


def downgrade():
    with op.batch_alter_table('improvement_measure', schema=None) as batch_op:
        batch_op.drop_constraint('uq_improvement_measure_review_instance_id_seq', type_='unique')
        batch_op.drop_column('completed_on')
        batch_op.drop_column('actions_taken')
        batch_op.drop_column('seq')
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_column('subject')
    op.drop_table('periodic_start')

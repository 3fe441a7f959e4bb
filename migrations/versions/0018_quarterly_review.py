"""the quarterly review's data: the analyses of a period as stored (analysis_report, attached to a review
instance) and the improvement measures a review decides (improvement_measure); indexes for the analysis:
the complaints received in a period with their dimensions (read from the index alone), and the complaints
and deadlines closed in a period

Revision ID: 0018
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

INDEXES = [('complaint', 'ix_complaint_analysis', ['received_at', 'channel', 'category', 'product_line', 'cause_code',
                                                   'responsible_party', 'phone']),
           ('complaint', 'ix_complaint_closed_at', ['closed_at']),
           ('deadline', 'ix_deadline_closed_at', ['closed_at', 'state', 'element_id'])]


def upgrade():
    op.create_table(
        'analysis_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('label', sa.String(length=32), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_analysis_report_instance_id_process_instance')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis_report')),
    )
    with op.batch_alter_table('analysis_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analysis_report_instance_id'), ['instance_id'], unique=False)
    op.create_table(
        'improvement_measure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('review_instance_id', sa.Integer(), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('category', sa.String(length=64), nullable=True),
        sa.Column('cause_code', sa.String(length=64), nullable=True),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('escalated', sa.Boolean(), server_default='0', nullable=False),
        sa.Column('evidence', sa.Text(), server_default='', nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_improvement_measure_owner_id_user')),
        sa.ForeignKeyConstraint(['review_instance_id'], ['process_instance.id'],
                                name=op.f('fk_improvement_measure_review_instance_id_process_instance')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_improvement_measure')),
    )
    with op.batch_alter_table('improvement_measure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_improvement_measure_review_instance_id'), ['review_instance_id'],
                              unique=False)
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    with op.batch_alter_table('improvement_measure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_improvement_measure_review_instance_id'))
    op.drop_table('improvement_measure')
    with op.batch_alter_table('analysis_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analysis_report_instance_id'))
    op.drop_table('analysis_report')

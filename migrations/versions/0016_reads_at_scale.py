"""reads that stay fast at 100,000 complaints: the queues and their review filter (回避), the per-element
statistics and the searches read their indexes alone where they can; daily summaries of finished tasks
(element_day_stat) for the statistics

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# (table, index, columns before, columns after): indexes widened so that a read finds what it needs in them.
WIDENED = [
    ('human_task', 'ix_human_task_role_queue', ['state', 'role', 'due_at'],
     ['state', 'role', 'assignee_id', 'due_at', 'created_at', 'instance_id', 'id']),
    ('human_task', 'ix_human_task_assignee_queue', ['state', 'assignee_id', 'due_at'],
     ['state', 'assignee_id', 'due_at', 'instance_id']),
    ('human_task', 'ix_human_task_instance', ['instance_id', 'state'], ['instance_id', 'state', 'completed_by_id']),
    ('human_task', 'ix_human_task_element', ['state', 'element_id'], ['state', 'element_id', 'due_at', 'instance_id']),
    ('human_task', 'ix_human_task_completed', ['state', 'completed_at'],
     ['state', 'completed_at', 'element_id', 'instance_id', 'created_at']),
    ('process_instance', 'ix_process_instance_process_status', ['process_id', 'status'],
     ['process_id', 'status', 'business_key']),
]
ADDED = [
    ('complaint', 'ix_complaint_id_number', ['id_number']),
    ('audit_event', 'ix_audit_event_business_key_action', ['business_key', 'action']),
]


def _rebuild(table, name, columns):
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_index(name)
        batch_op.create_index(name, columns, unique=False)


def upgrade():
    for table, name, _before, after in WIDENED:
        _rebuild(table, name, after)
    for table, name, columns in ADDED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
    op.create_table(
        'element_day_stat',
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('element_id', sa.String(length=100), nullable=False),
        sa.Column('completed', sa.Integer(), nullable=False),
        sa.Column('histogram', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['process_version.id'],
                                name=op.f('fk_element_day_stat_version_id_process_version')),
        sa.PrimaryKeyConstraint('version_id', 'day', 'element_id', name=op.f('pk_element_day_stat')),
    )


def downgrade():
    op.drop_table('element_day_stat')
    for table, name, _columns in reversed(ADDED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    for table, name, before, _after in reversed(WIDENED):
        _rebuild(table, name, before)

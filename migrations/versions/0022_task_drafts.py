"""a handler's draft of a task's form: the raw input per task and author, until the task is completed

Revision ID: 0022
Revises: 0021
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'task_draft',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], name=op.f('fk_task_draft_task_id_human_task')),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_task_draft_user_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task_draft')),
        sa.UniqueConstraint('task_id', 'user_id', name='uq_task_draft_task_id_user_id'),
    )


def downgrade():
    op.drop_table('task_draft')

"""the complaint list: partial search (pg_trgm GIN indexes on PostgreSQL), the "handled by" filter's index,
saved filters

Revision ID: 0024
Revises: 0023
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

PARTLY_SEARCHED = ("number", "customer_name", "policy_number", "claim_number")


def upgrade():
    op.create_index('ix_human_task_completed_by', 'human_task', ['completed_by_id', 'instance_id'])
    if op.get_bind().dialect.name == 'postgresql':
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for column in PARTLY_SEARCHED:
            op.create_index(f'ix_complaint_{column}_trgm', 'complaint', [column], postgresql_using='gin',
                            postgresql_ops={column: 'gin_trgm_ops'})
    op.create_table(
        'saved_filter',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_saved_filter_user_id_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filter')),
        sa.UniqueConstraint('user_id', 'name', name='uq_saved_filter_user_id_name'),
    )


def downgrade():
    op.drop_table('saved_filter')
    if op.get_bind().dialect.name == 'postgresql':
        for column in PARTLY_SEARCHED:
            op.drop_index(f'ix_complaint_{column}_trgm', table_name='complaint')
    op.drop_index('ix_human_task_completed_by', table_name='human_task')

"""the path each instance took through the diagram

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'element_visit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('process_id', sa.String(length=100), nullable=False),
        sa.Column('element_id', sa.String(length=100), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_element_visit_instance_id_process_instance')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_element_visit')),
    )
    with op.batch_alter_table('element_visit', schema=None) as batch_op:
        batch_op.create_index('ix_element_visit_instance', ['instance_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('element_visit', schema=None) as batch_op:
        batch_op.drop_index('ix_element_visit_instance')
    op.drop_table('element_visit')

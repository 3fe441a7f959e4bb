"""pre-migration snapshots of process instances

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'instance_snapshot',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('workflow_json', sa.Text(), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                                name=op.f('fk_instance_snapshot_instance_id_process_instance')),
        sa.ForeignKeyConstraint(['version_id'], ['process_version.id'],
                                name=op.f('fk_instance_snapshot_version_id_process_version')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_instance_snapshot')),
    )
    with op.batch_alter_table('instance_snapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_snapshot_instance_id'), ['instance_id'], unique=False)


def downgrade():
    with op.batch_alter_table('instance_snapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instance_snapshot_instance_id'))
    op.drop_table('instance_snapshot')

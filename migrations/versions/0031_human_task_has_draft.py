"""a human task says whether someone keeps a draft of its form (issue 10, lean writes): a change that closes
tasks deletes their drafts only when there are any, instead of looking for them in every change

Revision ID: 0031
Revises: 0030
"""
from alembic import op
import sqlalchemy as sa


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('human_task', sa.Column('has_draft', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(sa.text("UPDATE human_task SET has_draft = :yes WHERE id IN (SELECT task_id FROM task_draft)")
               .bindparams(yes=True))


def downgrade():
    # Not a batch: on SQLite a rebuilt human_task would lose the partial indexes of migration 0029.
    op.drop_column('human_task', 'has_draft')

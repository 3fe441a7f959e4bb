"""The regulator's clock on the complaint row: when the decision is due, how many days before the queues
warn, and where the clock stands (set by the diagram)

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# Plain ALTER TABLE, not batch mode: on SQLite a batch would copy and drop `complaint`, which other
# tables reference (delivery, portal_link, survey_response). Dropping a column needs SQLite >= 3.35.


def upgrade():
    op.add_column('complaint', sa.Column('decision_due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('complaint', sa.Column('decision_warning_days', sa.Integer(), nullable=True))
    op.add_column('complaint', sa.Column('decision_clock', sa.String(length=16), nullable=True))
    op.create_index('ix_complaint_decision_due_at', 'complaint', ['decision_due_at'], unique=False)


def downgrade():
    op.drop_index('ix_complaint_decision_due_at', table_name='complaint')
    op.drop_column('complaint', 'decision_clock')
    op.drop_column('complaint', 'decision_warning_days')
    op.drop_column('complaint', 'decision_due_at')

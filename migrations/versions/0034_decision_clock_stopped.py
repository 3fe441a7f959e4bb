"""a withdrawn complaint's regulator's clock that was neither met nor missed reads 'stopped' (it had stayed
'running', and a list of overdue complaints showed the complaint once its limit passed)

Revision ID: 0034
Revises: 0033
"""
from alembic import op


revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE complaint SET decision_clock = 'stopped' "
               "WHERE status = 'closed' AND decision_clock IN ('running', 'paused')")


def downgrade():
    # A clock paused for an appraisal when the complaint was withdrawn comes back as running: the version before
    # this one showed both alike (none, on a closed complaint).
    op.execute("UPDATE complaint SET decision_clock = 'running' WHERE decision_clock = 'stopped'")

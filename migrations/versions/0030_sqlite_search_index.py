"""partial search on SQLite by index: an FTS5 trigram index over the complaint's number, policy and claim
numbers and the customer's name (an external-content table kept by triggers), as PostgreSQL has its pg_trgm
GIN indexes since 0024 (issue 10: a part of a number took 200-570 ms at 100,000 complaints, a scan)

Revision ID: 0030
Revises: 0029
"""
from alembic import op


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

COLUMNS = "number, policy_number, claim_number, customer_name"
NEW = "new.id, new.number, new.policy_number, new.claim_number, new.customer_name"
OLD = "'delete', old.id, old.number, old.policy_number, old.claim_number, old.customer_name"


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE VIRTUAL TABLE complaint_search USING fts5({COLUMNS}, content='complaint', "
               "content_rowid='id', tokenize='trigram')")
    op.execute(f"CREATE TRIGGER complaint_search_insert AFTER INSERT ON complaint BEGIN "
               f"INSERT INTO complaint_search(rowid, {COLUMNS}) VALUES ({NEW}); END")
    op.execute(f"CREATE TRIGGER complaint_search_delete AFTER DELETE ON complaint BEGIN "
               f"INSERT INTO complaint_search(complaint_search, rowid, {COLUMNS}) VALUES ({OLD}); END")
    op.execute(f"CREATE TRIGGER complaint_search_update AFTER UPDATE OF {COLUMNS} ON complaint BEGIN "
               f"INSERT INTO complaint_search(complaint_search, rowid, {COLUMNS}) VALUES ({OLD}); "
               f"INSERT INTO complaint_search(rowid, {COLUMNS}) VALUES ({NEW}); END")
    op.execute("INSERT INTO complaint_search(complaint_search) VALUES ('rebuild')")


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER complaint_search_{trigger}")
    op.execute("DROP TABLE complaint_search")

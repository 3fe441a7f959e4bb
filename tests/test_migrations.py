"""The migrations build exactly the schema the models describe, on each backend."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db
from app.models import on_backend


def test_models_and_migrations_agree(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": on_backend(conn.dialect.name)})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_sqlite_keeps_its_search_index_with_the_complaints(app, client, people):
    """Migration 0030's triggers are there at the head (a migration rebuilding `complaint` on SQLite would drop
    them silently) and keep the FTS5 index equal to the table through inserts and an update."""
    if db.engine.dialect.name != "sqlite":
        return                                     # PostgreSQL's pg_trgm indexes are ordinary indexes
    from sqlalchemy import text
    from tests.flow import Desk
    triggers = db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                       "AND tbl_name = 'complaint'")).scalars().all()
    assert sorted(triggers) == ["complaint_search_delete", "complaint_search_insert", "complaint_search_update"]
    numbers = [Desk(client, people).register() for _ in range(2)]
    db.session.execute(text("UPDATE complaint SET policy_number = 'PZ-1', customer_name = '改名' WHERE number = :n"),
                       {"n": numbers[0]})
    db.session.commit()
    db.session.execute(text("INSERT INTO complaint_search(complaint_search, rank) VALUES ('integrity-check', 1)"))
    found = db.session.execute(text("SELECT rowid FROM complaint_search WHERE complaint_search MATCH :q"),
                               {"q": '{policy_number customer_name} : "PZ-1"'}).scalars().all()
    assert found == db.session.execute(text("SELECT id FROM complaint WHERE number = :n"),
                                       {"n": numbers[0]}).scalars().all()

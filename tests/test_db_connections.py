"""How connections are set up per backend (app/db_connections.py). PostgreSQL: a transaction that wrote nothing
ends with COMMIT, so that psycopg keeps the statements it prepared (a ROLLBACK makes it forget them all); any
other transaction is still rolled back. SQLite: the pragmas every connection gets."""
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import Complaint, SchedulerHeartbeat, User

ON_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

PREPARED = text("SELECT statement FROM pg_prepared_statements")


@ON_POSTGRESQL
def test_read_only_requests_keep_their_prepared_statements(app):
    """Read the way a request does, each time in a session that ends with the request: on the sixth run on a
    connection psycopg prepares the statement, and it stays prepared. Before, each session's rollback made
    psycopg deallocate everything, and no statement was ever prepared."""
    query = select(func.count()).select_from(Complaint).where(Complaint.number == "NONE-PREPARED")
    for _ in range(40):                     # every pooled connection runs it at least six times
        db.session.execute(query).scalar_one()
        db.session.remove()
    with db.engine.connect() as conn:
        prepared = conn.execute(PREPARED).scalars().all()
    assert any("count(*)" in s and "complaint.number = $1" in s for s in prepared), prepared


@ON_POSTGRESQL
def test_a_transaction_that_wrote_is_still_rolled_back(app):
    with db.engine.connect() as conn:
        conn.execute(select(func.count()).select_from(User)).scalar_one()
        conn.execute(insert(User).values(username="rolled_back", display_name="x", password_hash="-"))
        conn.rollback()
        assert conn.execute(select(User.id).where(User.username == "rolled_back")).first() is None
    db.session.add(User(username="flushed_then_rolled_back", display_name="x", password_hash="-"))
    db.session.flush()
    db.session.remove()
    assert db.session.execute(select(User.id).where(User.username == "flushed_then_rolled_back")).first() is None


@ON_POSTGRESQL
def test_a_failed_read_is_rolled_back_and_the_connection_goes_on(app):
    with db.engine.connect() as conn:
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT 1 / 0"))
        conn.rollback()
        assert conn.execute(text("SELECT 2")).scalar_one() == 2


@ON_POSTGRESQL
def test_a_read_only_transaction_ends_and_releases_its_locks(app, people):
    """A row lock taken by SELECT … FOR UPDATE is released by the COMMIT as by a rollback."""
    user_id = db.session.execute(select(User.id).limit(1)).scalar_one()
    db.session.remove()
    with db.engine.connect() as first, db.engine.connect() as second:
        first.execute(select(User.id).where(User.id == user_id).with_for_update()).scalar_one()
        first.rollback()
        assert first.connection.dbapi_connection.info.transaction_status.name == "IDLE"
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        second.execute(select(User.id).where(User.id == user_id).with_for_update(nowait=True)).scalar_one()
        second.rollback()


@ON_POSTGRESQL
def test_a_write_past_sqlalchemy_is_still_rolled_back(app):
    """A COPY on the DBAPI connection itself (as benchmarks/reads.py seeds) is no statement SQLAlchemy sees; the
    server's transaction id tells that the transaction wrote."""
    with db.engine.connect() as conn:
        conn.execute(select(func.count()).select_from(User)).scalar_one()
        cursor = conn.connection.dbapi_connection.cursor()
        with cursor.copy("COPY scheduler_heartbeat (name, beat_at) FROM STDIN") as copy:
            copy.write_row(("copied", "2026-12-02 00:00:00"))
        assert conn.execute(select(SchedulerHeartbeat.name)).scalars().all() == ["copied"]
        conn.rollback()
        assert conn.execute(select(SchedulerHeartbeat.name)).first() is None
        nested = conn.begin_nested()                        # a savepoint, then the whole transaction rolled back
        conn.execute(select(func.count()).select_from(User)).scalar_one()
        nested.commit()
        conn.rollback()


@ON_POSTGRESQL
def test_a_connection_lost_mid_transaction_is_cleaned_up(app):
    """The server ends the connection while a request reads: the failed statement raises, and the session's
    rollback and the request's end work as before (the listener leaves a dead connection alone)."""
    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DBAPIError):
        db.session.execute(select(func.count()).select_from(User))
    db.session.rollback()
    db.session.remove()
    assert db.session.execute(text("SELECT 1")).scalar_one() == 1       # a new connection from the pool


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_connections(app):
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    assert db.engine.pool._pre_ping is False          # a file cannot drop the connection

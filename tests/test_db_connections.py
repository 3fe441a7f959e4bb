"""PostgreSQL: a transaction that only read ends with COMMIT, so that psycopg keeps the statements it prepared
(a ROLLBACK makes it forget them all); any other transaction is still rolled back."""
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import Complaint, User

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

PREPARED = text("SELECT statement FROM pg_prepared_statements")


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


def test_a_failed_read_is_rolled_back_and_the_connection_goes_on(app):
    with db.engine.connect() as conn:
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT 1 / 0"))
        conn.rollback()
        assert conn.execute(text("SELECT 2")).scalar_one() == 2


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

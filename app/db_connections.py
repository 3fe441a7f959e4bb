"""How each database backend's connections are set up: engine options, SQLite's pragmas, and on PostgreSQL the
end of a transaction that only read.

PostgreSQL: psycopg prepares a statement on the server once it has run it five times on a connection, and from
then on sends only its parameters: the server no longer parses it (and with a generic plan, no longer plans it).
But psycopg forgets every prepared statement on a ROLLBACK, since one may undo DDL a plan depends on, and every
request's session ends with a rollback. So a read request threw away what every earlier request had prepared,
and the app's statements were parsed afresh each time (the role queue's: 2–3 ms of parsing at 100,000
complaints). A transaction that wrote nothing now ends with COMMIT, which for it does the same as a rollback:
nothing to undo, its locks released. "Wrote nothing" is checked twice: every statement SQLAlchemy sent began
with SELECT (so a write, DDL, SET, a savepoint or a failed statement keeps the ROLLBACK at no cost), and then
the server says the transaction has no transaction id, which it takes before its first write of any kind (a
COPY or a write sent on the DBAPI connection itself, past SQLAlchemy; SELECT … INTO; a function that writes).
The one change this lets through is a session setting made by set_config(…, false) inside a SELECT, which a
COMMIT keeps and a ROLLBACK would undo: the app makes none."""
from sqlalchemy import event

from .extensions import db


def init_app(app):
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _listen_once(engine, "connect", _set_sqlite_pragmas)
    elif engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        _listen_once(engine, "begin", _transaction_begins)
        _listen_once(engine, "before_cursor_execute", _statement_runs)
        _listen_once(engine, "rollback", _commit_if_only_read)


def engine_options(app):
    """No pre-ping on SQLite: a file cannot drop the connection, and the ping is a statement on every
    request (PostgreSQL keeps it: a restarted server or a dropped connection costs one retry, not an error)."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_pre_ping": False}


def _listen_once(engine, name, listener):
    """Apps made on one engine (tests, benchmarks) add each listener once."""
    if not event.contains(engine, name, listener):
        event.listen(engine, name, listener)


def _set_sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer commits; busy_timeout waits for the write lock.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# ---- PostgreSQL: a transaction that only read ends with COMMIT -------------------------------------------
ONLY_READ = "only_read"         # key in the pooled connection's info: this transaction ran only SELECTs so far
# No transaction id yet: nothing written (PostgreSQL assigns one at the first write; the function is there since 10).
WROTE_NOTHING = "SELECT txid_current_if_assigned() IS NULL"


def _transaction_begins(connection):
    connection.info[ONLY_READ] = True


def _statement_runs(connection, _cursor, statement, _parameters, _context, _executemany):
    if connection.info.get(ONLY_READ) and not statement.lstrip()[:6].upper() == "SELECT":
        connection.info[ONLY_READ] = False


def _commit_if_only_read(connection):
    """Runs before SQLAlchemy's rollback; after a COMMIT here, psycopg's rollback finds no transaction and
    sends nothing. Whatever goes wrong here is left to that rollback."""
    from psycopg import Error
    from psycopg.pq import TransactionStatus

    if connection.invalidated or connection.closed:       # e.g. the server went away: nothing to keep
        return
    if not connection.info.pop(ONLY_READ, False):
        return
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None or dbapi_connection.info.transaction_status != TransactionStatus.INTRANS:
        return              # failed (INERROR), idle, or gone: the rollback does what is needed
    try:
        if dbapi_connection.execute(WROTE_NOTHING).fetchone()[0]:
            dbapi_connection.commit()
    except Error:
        pass                # e.g. a dropped connection: the rollback that follows meets it and handles it

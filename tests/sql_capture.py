"""What SQL a piece of work sends to the database, for the tests that count, read or explain statements: one
listener on the engine while the work runs."""
from dataclasses import dataclass

from sqlalchemy import event

from app.extensions import db


@dataclass(frozen=True)
class Sent:
    statement: str          # as the driver got it
    parameters: object      # its parameters; for an executemany, the list of them
    executemany: bool

    @property
    def line(self) -> str:
        """The statement on one line (its whitespace collapsed)."""
        return " ".join(self.statement.split())

    @property
    def rows(self) -> int:
        """The rows the statement sends: an executemany's parameter sets, else 1."""
        return len(self.parameters) if self.executemany else 1


def sent_by(work) -> list[Sent]:
    """Every statement `work()` sends, in order (an executemany once; SQLite's BEGIN IMMEDIATE included)."""
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append(Sent(statement, parameters, executemany))
    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        work()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return seen


def statements_of(work) -> list[str]:
    """The statements `work()` sends, one line each (an executemany once); SQLite's BEGIN IMMEDIATE left out."""
    return [s.line for s in sent_by(work) if s.line != "BEGIN IMMEDIATE"]


def plans(sent: list[Sent]) -> list[str]:
    """The query plan of each statement: SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with
    sequential scans made prohibitive, so one shows only where no index can serve."""
    conn = db.session.connection()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    out = []
    for s in sent:
        rows = conn.exec_driver_sql(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + s.statement, s.parameters)
        out.append("\n".join(str(row[-1]) for row in rows))
    db.session.rollback()
    return out

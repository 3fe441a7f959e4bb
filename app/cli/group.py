"""What the app's command groups share: their class (a command run on a database that was never migrated says what
to run, instead of a traceback of the first query that met no table) and a range of numbers that refuses nan."""
import click
from flask.cli import AppGroup
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from ..extensions import db

NOT_MIGRATED = "the database is not migrated (it has none of the app's tables): run `flask db upgrade` first"


class Group(AppGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DBAPIError:          # SQLite: no such table; PostgreSQL: relation does not exist
            if not migrated():
                raise click.ClickException(NOT_MIGRATED) from None
            raise


def migrated() -> bool:
    """Whether the database has a schema revision (alembic_version with a row)."""
    db.session.rollback()
    if not inspect(db.engine).has_table("alembic_version"):
        return False
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).first() is not None


class FiniteRange(click.FloatRange):
    """A FloatRange that refuses nan, which every comparison of a range lets through."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail("not a number", param, ctx)
        return number

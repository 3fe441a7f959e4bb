"""What the app's command groups share: their class (a command run on a database that lacks a table of the app says
to migrate it, instead of a traceback of the first query that met no table), the `--by` option of the commands
whose change is audited, and a range of numbers that refuses nan."""
import click
from flask.cli import AppGroup
from sqlalchemy.exc import DBAPIError

from ..extensions import db

UNDEFINED_TABLE = "42P01"         # PostgreSQL's SQLSTATE for a relation that does not exist
AUDITED_BY = click.option("--by", "actor", default="cli", help="Recorded in the audit trail.")


class Group(AppGroup):
    """A `flask` command group of the app."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            if not missing_table(exc):
                raise
            db.session.rollback()           # the failed transaction ends with the command
            first = str(exc.orig).strip().splitlines()[0]
            raise click.ClickException(f"the database lacks a table of this release ({first}): it is not migrated, "
                                       "run `flask db upgrade` first") from None


def missing_table(exc: DBAPIError) -> bool:
    """Whether the database said a table does not exist (SQLite: "no such table"; PostgreSQL: 42P01)."""
    return getattr(exc.orig, "sqlstate", None) == UNDEFINED_TABLE or str(exc.orig).startswith("no such table")


class FiniteRange(click.FloatRange):
    """A FloatRange that refuses nan, which every comparison of a range lets through."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail("not a number", param, ctx)
        return number

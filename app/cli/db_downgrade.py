"""`flask db downgrade` (Flask-Migrate's) asks before it runs: a downgrade drops what the migrations since added,
tables and their data with them, and no step of running this app needs one (the migrations are expand-only; a
rollback points at the previous release and keeps the schema: README, Upgrades). `--yes` answers for a script."""
import functools

import click
from flask_migrate.cli import db as db_group

from ..extensions import db

WARNING = ("A downgrade (to {revision}) drops the tables and columns the later migrations added, with their data, "
           "and no rollback of a release needs one (README, Upgrades). Downgrade the database {database}?")


def guard():
    """Make `flask db downgrade` ask first (once per process: the group is Flask-Migrate's, shared by every app)."""
    command = db_group.commands["downgrade"]
    if getattr(command, "asks_first", False):
        return
    run = command.callback

    @functools.wraps(run)
    def asked(*args, yes=False, **kwargs):
        if not yes:            # (the flask command line has pushed the app's context)
            database = db.engine.url.render_as_string(hide_password=True)
            click.confirm(WARNING.format(revision=kwargs.get("revision", "-1"), database=database), abort=True)
        return run(*args, **kwargs)
    command.params.append(click.Option(["--yes"], is_flag=True, help="Do not ask (for a script that means it)."))
    command.callback = asked
    command.asks_first = True

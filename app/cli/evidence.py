"""flask evidence: what the evidence store holds that no case names (app/evidence/orphans.py)."""
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from ..evidence import orphans
from ..evidence.store import StoreUnavailable, store_of
from ..extensions import db
from ..timeutil import utcnow

group = AppGroup("evidence", help="The evidence store: contents no case names.")


@group.command("orphans")
@click.option("--older-than-hours", type=click.FloatRange(min=0), default=orphans.GRACE.total_seconds() / 3600,
              show_default=True, help="Leave out contents younger than this (an upload may still be writing its row).")
def orphans_cmd(older_than_hours):
    """List the contents in the store that no evidence file row names: hash, size, when stored (UTC).
    Nothing is deleted."""
    try:
        found = orphans.unreferenced(db.session, store_of(current_app), utcnow(), timedelta(hours=older_than_hours))
    except StoreUnavailable as err:          # the cause is in the log (app.evidence.*)
        raise click.ClickException(err.message) from err
    for content in found:
        click.echo(f"{content.sha256}\t{content.size}\t{content.stored_at:%Y-%m-%d %H:%M:%S}Z")
    total = sum(content.size for content in found)
    click.echo(f"{len(found)} content(s) no evidence file names, {total:,} bytes")

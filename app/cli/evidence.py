"""flask evidence: what the evidence store holds that no case names (app/evidence/orphans.py)."""
from datetime import timedelta

import click
from flask import current_app

from ..evidence import orphans
from ..evidence.store import StoreUnavailable, store_of
from ..extensions import db
from ..timeutil import utcnow
from .group import FiniteRange, Group

group = Group("evidence", help="The evidence store: contents no case names.")


HOURS = FiniteRange(min=0, max=24 * 366 * 10)       # up to ten years back


@group.command("orphans")
@click.option("--older-than-hours", type=HOURS, default=orphans.GRACE.total_seconds() / 3600, show_default=True,
              help="Leave out contents younger than this (an upload may still be writing its row).")
@click.option("--check", is_flag=True, help="Exit with status 2 when anything is listed (for monitoring).")
def orphans_cmd(older_than_hours, check):
    """List the contents in the store that no evidence file row names: hash, size, when stored (UTC); and, in a
    directory store, the temporary files of uploads that never finished. Nothing is deleted."""
    store, now, grace = store_of(current_app), utcnow(), timedelta(hours=older_than_hours)
    try:
        found = orphans.unreferenced(db.session, store, now, grace)
        leftovers = orphans.unfinished(store, now, grace)
    except StoreUnavailable as err:          # the cause is in the log (app.evidence.*)
        raise click.ClickException(err.message) from err
    for content in [*found, *leftovers]:
        click.echo(f"{content.sha256}\t{content.size}\t{content.stored_at:%Y-%m-%d %H:%M:%S}Z")
    total = sum(content.size for content in found)
    click.echo(f"{len(found)} content(s) no evidence file names, {total:,} bytes"
               + (f"; {len(leftovers)} unfinished upload(s)" if leftovers else ""))
    if check and (found or leftovers):
        raise SystemExit(2)

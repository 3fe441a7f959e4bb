"""flask audit: check the audit trail's hash chain."""
import sys

import click
from flask.cli import AppGroup

from .. import audit
from ..extensions import db

group = AppGroup("audit", help="The audit trail.")


@group.command("verify")
def verify():
    """Check the audit hash chain; exit 1 and name the first broken row if it was altered."""
    count, broken = audit.verify(db.session)
    if broken is not None:
        click.echo(f"BROKEN at audit row {broken} (after {count} good rows)")
        sys.exit(1)
    click.echo(f"ok: {count} audit rows, chain intact")

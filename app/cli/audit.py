"""flask audit: check the audit trail's hash chains, and seal them."""
import sys

import click
from flask import current_app

from .. import audit
from ..audit_verify import verify as verify_trail
from ..extensions import db
from .group import Group

group = Group("audit", help="The audit trail.")
SHOWN = 20          # findings printed; the count says how many more


@group.command("verify")
@click.option("--complaint", "number", help="Check only this complaint's case file (and the seals over it).")
def verify(number):
    """Check every chain, head and seal; exit 1 and name the first broken rows if anything was altered,
    removed or reordered."""
    if number is not None and not number.strip():       # e.g. an empty variable in a script: not "all is well"
        raise click.BadParameter("an empty complaint number", param_hint="--complaint")
    report = verify_trail(db.session, audit.seal_key(current_app.config), chain=number)
    if number and not report.rows:
        click.echo(f"no audit rows for complaint {number}")
        sys.exit(1)
    for finding in report.findings[:SHOWN]:
        click.echo(f"BROKEN at {finding.what} ({finding.reason})")
    if len(report.findings) > SHOWN:
        click.echo(f"... and {len(report.findings) - SHOWN} more")
    if not report.intact:
        sys.exit(1)
    click.echo(f"ok: {report.rows} audit rows in {report.chains} chains and {report.seals} seals, intact")


@group.command("seal")
def seal():
    """Seal the heads of every chain that grew since the last seal (the scheduler does this regularly)."""
    row = audit.seal(db.session, audit.seal_key(current_app.config))
    click.echo(f"sealed {row.heads} chains: seal {row.id} {row.hash}" if row else "nothing to seal")

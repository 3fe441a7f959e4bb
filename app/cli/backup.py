"""flask backup: write a backup (the database and the evidence files), check one, restore one (app/backup/)."""
import sys
from pathlib import Path

import click
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from ..backup import BackupError, procedure
from .group import Group

group = Group("backup", help="Back up and restore the database and the evidence files.")
BACKUP_DIR = click.Path(path_type=Path, file_okay=False)
SHOWN = 20


FAILED = (BackupError, SQLAlchemyError, OSError)


def _refuse(exc):
    """Exit 1 with the reason: ours, the database's (it cannot be reached, say) or the file system's."""
    if isinstance(exc, SQLAlchemyError):
        exc = f"the database: {getattr(exc, 'orig', None) or exc}"
    raise click.ClickException(str(exc)) from None


@group.command("create")
@click.argument("dest", type=BACKUP_DIR)
@click.option("--all-evidence", is_flag=True,
              help="Copy every content of the evidence directory, not only those the database refers to.")
def create(dest, all_evidence):
    """Write a backup to DEST, a new directory; the app may go on running. Name it by date and time, say
    /var/backups/complaints/2026-05-01T0200. Exit 1 if it failed, or if evidence the database refers to is
    missing or damaged in the store (the backup is written without it)."""
    try:
        manifest = procedure.create(current_app, dest, all_evidence)
    except FAILED as exc:
        _refuse(exc)
    database, kept = manifest["database"], manifest["evidence"]
    click.echo(f"backup written to {dest}: {database['kind']} database at revision {', '.join(database['revision'])}, "
               f"{kept['files']} evidence files ({kept['scope']})")
    if kept["scope"] == "none":
        click.echo(f"note: {kept['note']}")
    lost = kept.get("missing", []) + kept.get("damaged", [])
    for sha in lost[:SHOWN]:
        click.echo(f"PROBLEM: evidence {sha} is {'missing' if sha in kept['missing'] else 'damaged'} in the store "
                   "and is not in the backup")
    if lost:
        sys.exit(1)


@group.command("check")
@click.argument("src", type=BACKUP_DIR)
def check(src):
    """Check a backup without restoring it. Every part is checked against its SHA-256, an SQLite database part
    with SQLite's integrity check, and whether this code can restore its database (as it is, or after upgrading
    it)."""
    try:
        manifest, upgrade = procedure.check(current_app, src, open_database=True)
    except FAILED as exc:
        _refuse(exc)
    database, kept = manifest["database"], manifest["evidence"]
    click.echo(f"ok: backup of {manifest['created_at']}, {database['kind']} database at revision "
               f"{', '.join(database['revision'])}, {kept['files']} evidence files, all parts intact; "
               + ("restoring upgrades it to this code's schema" if upgrade else "this code's schema"))
    lost = kept.get("missing", []) + kept.get("damaged", [])
    for sha in lost[:SHOWN]:
        click.echo(f"WARNING: evidence {sha} was {'missing' if sha in kept['missing'] else 'damaged'} in the store "
                   "when the backup was made and is not in it (a case file refers to it)")
    if len(lost) > SHOWN:
        click.echo(f"WARNING: ... and {len(lost) - SHOWN} more")


@group.command("restore")
@click.argument("src", type=BACKUP_DIR)
@click.option("--force", is_flag=True, help="Replace the data the configured database holds.")
@click.option("--by", default="cli", help="Who restores (written to the audit trail).")
def restore(src, force, by):
    """Restore SRC into the configured database and evidence store. The database must be new and empty
    unless --force; stop the app and the scheduler first (data still in use is never replaced: refused while
    the scheduler's heartbeat is fresh or, on PostgreSQL, another session is connected). Afterwards the audit
    trail and the evidence are checked; exit 1 on any problem."""
    try:
        done = procedure.restore(current_app, src, force, by)
    except FAILED as exc:
        _refuse(exc)
    database = done.manifest["database"]
    click.echo(f"restored the backup of {done.manifest['created_at']}: {done.complaints} complaints, "
               f"{done.open_tasks} open tasks, {done.evidence_files} evidence files"
               + (f"; upgraded from revision {', '.join(database['revision'])}" if done.upgraded else ""))
    if done.manifest["evidence"]["scope"] == "none":
        click.echo(f"note: {done.manifest['evidence']['note']}")
    for sha in done.absent[:SHOWN]:
        click.echo(f"PROBLEM: evidence {sha} is referred to by the database but not in the evidence store")
    for finding in done.trail.findings[:SHOWN]:
        click.echo(f"BROKEN at {finding.what} ({finding.reason})")
    trail = done.trail
    click.echo(f"audit trail {'intact' if trail.intact else 'NOT intact'}: {trail.rows} rows in {trail.chains} "
               f"chains and {trail.seals} seals" + ("" if trail.intact else
                                                   " (seals signed with another key? set AUDIT_SEAL_KEY/SECRET_KEY "
                                                   "as on the system the backup came from)"))
    if not done.ok:
        sys.exit(1)

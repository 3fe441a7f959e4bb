"""flask commands, one module a group: processes (check, deploy, diff, migrate, trace), users (create,
token, unlock, demo), scheduler (run, once), audit (verify) and calendar (status, set, unset,
recompute), outbox (run, send-due, status), vocab (list, unmapped, map), review (start), backup (create, check,
restore), evidence (orphans); register_cli adds them to the
app, and makes Flask-Migrate's `db downgrade` ask first. deploy_on_start is what wsgi.py runs at start."""
from . import audit, backup, calendar, db_downgrade, evidence, processes, review, scheduler, users, vocab
from .processes import deploy_on_start  # noqa: F401  (wsgi.py imports it from here)


def register_cli(app):
    """Add every command group to `flask`."""
    from ..outbox import cli as outbox_cli
    groups = [processes.group, users.group, scheduler.group, audit.group, calendar.group, outbox_cli.group,
              vocab.group, review.group, backup.group, evidence.group]
    for group in groups:
        app.cli.add_command(group)
    from .jobs import group as jobs_group      # jobs (list, run-once, cancel): the background jobs
    app.cli.add_command(jobs_group)
    db_downgrade.guard()                       # Flask-Migrate's `db downgrade` asks first

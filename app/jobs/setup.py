"""The jobs wired to the Flask app: its settings, its runtime and folder in a Context, and one bounded pass
(what the scheduler's interval job and `flask jobs run-once` run)."""
import os
import socket
from datetime import timedelta
from pathlib import Path

from ..extensions import db
from ..timeutil import utcnow
from .files import JobFiles
from .runner import Context, work

# Settings (app/config.py reads them from the environment; these are the defaults).
DEFAULTS = {"JOBS_DIR": None,                  # default <instance>/jobs
            "JOBS_KEEP_HOURS": 24,             # an export's file is kept this long after it is written
            "JOBS_MIGRATE_INLINE_MAX": 20,     # a migration of more complaints runs as a job
            "JOBS_EXPORT_INLINE_MAX": 5000,    # an export of more rows runs as a job
            "JOBS_PASS_SECONDS": 50}           # a scheduler pass works jobs this long at most (no env setting)


def setting(config, name):
    value = config.get(name)
    return DEFAULTS[name] if value in (None, "") else value


def files_of(app) -> JobFiles:
    return JobFiles(setting(app.config, "JOBS_DIR") or Path(app.instance_path) / "jobs")


def context(app) -> Context:
    return Context(db.session, app.extensions["runtime"], files_of(app),
                   keep=timedelta(hours=float(setting(app.config, "JOBS_KEEP_HOURS"))))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def run_pass(app, seconds=None) -> dict:
    """Work jobs for at most `seconds` (default JOBS_PASS_SECONDS), then delete expired results."""
    seconds = float(setting(app.config, "JOBS_PASS_SECONDS") if seconds is None else seconds)
    with app.app_context():
        ctx = context(app)
        worked = work(ctx, worker_name(), seconds)
        purged = ctx.files.purge(db.session, utcnow())
    return {"jobs": worked, "purged": purged}

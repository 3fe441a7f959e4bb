"""The jobs wired to the Flask app: its settings (JOBS_* in app/config.py), its runtime and folder in a
Context, and one bounded pass (what the scheduler's interval job and `flask jobs run-once` run)."""
import os
import socket
from datetime import timedelta
from pathlib import Path

from ..extensions import db
from ..timeutil import utcnow
from .files import JobFiles
from .runner import Context, work

def files_of(app) -> JobFiles:
    return JobFiles(app.config.get("JOBS_DIR") or Path(app.instance_path) / "jobs")


def context(app) -> Context:
    return Context(db.session, app.extensions["runtime"], files_of(app),
                   keep=timedelta(hours=float(app.config["JOBS_KEEP_HOURS"])))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def run_pass(app, seconds=None) -> dict:
    """Work jobs for at most `seconds` (default JOBS_PASS_SECONDS), then delete expired results."""
    seconds = float(app.config["JOBS_PASS_SECONDS"] if seconds is None else seconds)
    with app.app_context():
        ctx = context(app)
        worked = work(ctx, worker_name(), seconds)
        purged = ctx.files.purge(db.session, utcnow())
    return {"jobs": worked, "purged": purged}

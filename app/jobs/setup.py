"""The jobs wired to the Flask app: its settings (JOBS_* in app/config.py), its runtime and the jobs' files in a
Context, and one bounded pass (what the scheduler's interval job and `flask jobs run-once` run)."""
import os
import socket
from datetime import timedelta

from ..extensions import db
from ..timeutil import utcnow
from .files import JobFiles
from .runner import Context, work


def context(app) -> Context:
    return Context(db.session, app.extensions["runtime"], JobFiles(db.session),
                   keep=timedelta(hours=float(app.config["JOBS_KEEP_HOURS"])))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def run_pass(app, seconds=None) -> dict:
    """Work jobs for at most `seconds` (default JOBS_PASS_SECONDS), then delete expired results."""
    seconds = float(app.config["JOBS_PASS_SECONDS"] if seconds is None else seconds)
    with app.app_context():
        ctx = context(app)
        worked = work(ctx, worker_name(), seconds)
        purged = ctx.files.purge(utcnow())
    return {"jobs": worked, "purged": purged}

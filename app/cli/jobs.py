"""flask jobs: the background jobs (bulk migrations, big exports; app/jobs/) — list them, work them once
(what the scheduler does every few seconds), cancel one."""
import click
from flask import current_app

from ..extensions import db
from ..jobs import store
from ..jobs.setup import run_pass
from .group import AUDITED_BY, FiniteRange, Group

group = Group("jobs", help="Background jobs: bulk migrations and big exports.")


@group.command("list")
@click.option("--all", "everyone", is_flag=True, help="Finished jobs too (the newest 100).")
def list_cmd(everyone):
    """The queued and running jobs (with --all, finished ones too)."""
    jobs = store.listing(db.session, everyone=everyone)
    for job in jobs:
        lease = f" held by {job.claimed_by} until {job.lease_until:%Y-%m-%d %H:%M:%S}Z" if job.claimed_by else ""
        click.echo(f"{job.id}\t{job.kind}\t{job.state}\t{job.done_count}/{job.total}\t{job.started_by}\t"
                   f"{job.created_at:%Y-%m-%d %H:%M}Z{lease}{'  ' + job.error if job.error else ''}")
    if not jobs:
        click.echo("no jobs" if everyone else "no queued or running jobs")


@group.command("run-once")
@click.option("--seconds", type=FiniteRange(min=0.1, max=3600), default=None,
              help="Work for at most this long, 0.1 to 3600 seconds (default JOBS_PASS_SECONDS).")
def run_once(seconds):
    """Work the queued jobs (and carry on those whose runner stopped) once, then delete the files no job needs."""
    done = run_pass(current_app._get_current_object(), seconds)
    click.echo(f"worked {done['jobs']} job(s); deleted {done['purged']} file(s) no job needs")


@group.command("cancel")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@AUDITED_BY
def cancel_cmd(job_id, actor):
    """Stop a queued or running job before its next batch (audited)."""
    if not store.cancel(db.session, job_id, actor):
        raise click.ClickException(f"job {job_id} is not queued or running")
    click.echo(f"job {job_id} cancelled")

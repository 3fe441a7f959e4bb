"""flask scheduler: fire the due BPMN timers, continuously or once."""
import click
from flask import current_app

from .. import scheduler as timers
from .group import Group

group = Group("scheduler", help="The timer scheduler.")


@group.command("run")
def run():
    """Fire due BPMN timers every SCHEDULER_INTERVAL_SECONDS (blocking)."""
    timers.run(current_app._get_current_object())


@group.command("once")
def once():
    """Fire the timers that are due now, once."""
    click.echo(f"fired timers on {timers.fire_due_timers(current_app._get_current_object())} instance(s)")

"""`flask outbox run | send-due | status`: the dispatcher in its own process, one pass, and counts.
Registered in app/cli/__init__.py with the other groups (`group`)."""
from time import sleep

import click
from flask import current_app
from sqlalchemy import func, select

from ..cli.group import FiniteRange, Group
from ..extensions import db
from ..models import Delivery, OutboxMessage
from ..scheduler import dispatch_outbox
from .dispatch import Dispatcher, interval_seconds

group = Group("outbox", help="Delivery of customer messages (SMTP e-mail, SMS gateway).")


def _line(counts) -> str:
    return ", ".join(f"{name} {value}" for name, value in counts.as_dict().items())


@group.command("run")
@click.option("--interval", type=FiniteRange(min=0.1, max=3600), default=None,
              help="Seconds between passes, 0.1 to 3600 (default OUTBOX_INTERVAL_SECONDS, else 10).")
def run_cmd(interval):
    """Send due messages every few seconds until interrupted (Ctrl-C)."""
    app = current_app._get_current_object()
    interval = interval or interval_seconds(app.config)
    dispatcher = Dispatcher(app)
    click.echo(f"outbox dispatcher: channels {', '.join(dispatcher.senders) or 'none configured'}; "
               f"every {interval:g} s")
    try:
        while True:
            counts = dispatch_outbox(dispatcher)       # a failed pass is logged; the next one tries again
            if counts is not None and (counts.claimed or counts.escalated):
                click.echo(_line(counts))
            sleep(interval)
    except KeyboardInterrupt:
        click.echo("stopped")


@group.command("send-due")
def send_due_cmd():
    """Send what is due now, once, and print the counts."""
    click.echo(_line(Dispatcher(current_app._get_current_object()).dispatch_due()))


@group.command("status")
def status_cmd():
    """Messages by status, and deliveries by channel and status."""
    for status, n in db.session.execute(select(OutboxMessage.status, func.count())
                                        .group_by(OutboxMessage.status).order_by(OutboxMessage.status)):
        click.echo(f"messages    {status:10} {n}")
    for channel, status, n in db.session.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .group_by(Delivery.channel, Delivery.status).order_by(Delivery.channel, Delivery.status)):
        click.echo(f"deliveries  {channel:5} {status:10} {n}")

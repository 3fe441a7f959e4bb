"""flask review: the quarterly review of complaints (processes/quarterly_review.bpmn, C-5.4) started by
hand: for a quarter (2026Q3) or any period (--from/--to). The scheduler starts each quarter's itself."""
import click
from flask import current_app

from .. import quarterly
from ..analysis import PeriodError, period, quarter
from ..analysis.periods import parse_date
from ..errors import AppError
from ..extensions import db
from .group import Group

group = Group("review", help="The quarterly review of complaints: start one for a quarter or any period.")


@group.command("start")
@click.argument("quarter_label", required=False)
@click.option("--from", "first", help="first day of the period (YYYY-MM-DD), with --to")
@click.option("--to", "last", help="last day of the period (YYYY-MM-DD), both included")
@click.option("--by", "actor", default="cli", show_default=True, help="who started it, for the audit trail")
def start(quarter_label, first, last, actor):
    """Start the review of QUARTER_LABEL (such as 2026Q3) or of --from .. --to, a period that has ended; a period
    has one review."""
    try:
        if quarter_label and not (first or last):
            chosen = quarter(quarter_label)
        elif first and last and not quarter_label:
            chosen = period(parse_date(first, "--from"), parse_date(last, "--to"))
        else:
            raise click.UsageError("give either a quarter (e.g. 2026Q3) or both --from and --to")
        change = quarterly.start_review(current_app.extensions["runtime"], chosen, actor)
    except PeriodError as exc:
        raise click.ClickException(str(exc)) from None
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"review {chosen.label} started: instance {change.instance.id} ({quarterly.business_key(chosen)})")

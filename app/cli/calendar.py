"""flask calendar: the working-day calendar — the last year of official data, admin overrides of single
days, and evaluating the provisional deadlines again after a change."""
import click
from flask import current_app
from sqlalchemy import func, select

from .. import audit
from ..extensions import db
from ..models import CalendarDay, Deadline
from ..timeutil import utcnow
from .group import AUDITED_BY, Group

group = Group("calendar", help="Working-day calendar: official data, admin overrides, provisional deadlines.")


class Day(click.DateTime):
    """A day as YYYY-MM-DD, shown as DAY in the usage; a day that does not exist (2026-02-30) is said to be none."""
    name = "day"

    def __init__(self):
        super().__init__(formats=["%Y-%m-%d"])

    def get_metavar(self, param, ctx=None):
        return "DAY"

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is not a day of the calendar as YYYY-MM-DD (e.g. 2027-01-04)", param, ctx)


DAY = Day()


@group.command("status")
def status():
    """The last year with official data, the overrides, and the provisional open deadlines."""
    runtime = current_app.extensions["runtime"]
    click.echo(f"official holiday data up to: {runtime.calendar().last_official_year}")
    for day in db.session.execute(select(CalendarDay).order_by(CalendarDay.day)).scalars():
        click.echo(f"override {day.day} {'working day' if day.working else 'holiday'} "
                   f"{day.note} (by {day.set_by})")
    provisional = db.session.execute(select(Deadline).where(Deadline.state == "open", Deadline.provisional)
                                     .order_by(Deadline.due_at)).scalars().all()
    click.echo(f"provisional open deadlines: {len(provisional)}")
    for d in provisional:
        click.echo(f"  instance {d.instance_id} {d.name} due {d.due_at.isoformat()}")


@group.command("set")
@click.argument("day", type=DAY)
@click.option("--working/--holiday", required=True, help="A (make-up) working day, or a holiday.")
@click.option("--note", default="", help="Why, e.g. 元旦调休 (shown with the override).")
@AUDITED_BY
def set_day(day, working, note, actor):
    """Override one day of the official calendar (e.g. the State Council's schedule for next year)."""
    row = db.session.get(CalendarDay, day.date()) or CalendarDay(day=day.date())
    row.working, row.note, row.set_by = working, note, actor
    row.set_at = utcnow()
    db.session.add(row)
    audit.record(db.session, actor, "calendar_override_set",
                 data={"day": day.date().isoformat(), "working": working, "note": note})
    db.session.commit()
    click.echo(f"{day.date()} is now a {'working day' if working else 'holiday'}; "
               f"run `flask calendar recompute` to update provisional deadlines")


@group.command("unset")
@click.argument("day", type=DAY)
@AUDITED_BY
def unset_day(day, actor):
    """Remove an override; the official data applies again."""
    row = db.session.get(CalendarDay, day.date())
    if row is None:
        raise click.ClickException(f"no override for {day.date()}")
    db.session.delete(row)
    audit.record(db.session, actor, "calendar_override_removed", data={"day": day.date().isoformat()})
    db.session.commit()
    click.echo(f"override for {day.date()} removed")


@group.command("recompute")
@AUDITED_BY
def recompute(actor):
    """Evaluate every provisional open deadline again with the current calendar."""
    runtime = current_app.extensions["runtime"]
    ids = runtime.provisional_instance_ids()
    for instance_id in ids:
        runtime.recompute_deadlines(instance_id, actor)
    click.echo(f"recomputed provisional deadlines of {len(ids)} instance(s); "
               f"{_provisional_count()} open deadline(s) still provisional")


def _provisional_count() -> int:
    """Open deadlines still computed on a guessed calendar: what a further upgrade or override must settle."""
    return db.session.execute(select(func.count()).select_from(Deadline).where(
        Deadline.state == "open", Deadline.provisional)).scalar_one()

"""`flask calendar`: recompute settles provisional deadlines (one whose year became known keeps its due time but is
no longer provisional, and the API's deadline objects say which are provisional); a day typed wrong is named."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Deadline
from tests.flow import Desk

SH = timezone(timedelta(hours=8))
JAN_7_END = "2027-01-07T15:59:59+00:00"     # 24:00 Thu 2027-01-07 in Shanghai


def deadlines(desk, number):
    return {d["element_id"]: d for d in desk.complaint(number)["deadlines"]}


def test_a_provisional_deadline_whose_days_become_known_is_confirmed_with_the_same_due_time(app, client, people):
    cli = app.test_cli_runner()
    assert app.extensions["runtime"].calendar().last_official_year == 2026
    t0 = datetime(2026, 12, 28, 10, 0, tzinfo=SH)          # Monday
    with time_machine.travel(t0, tick=False):
        desk = Desk(client, people)
        number = desk.register(received_at=t0.isoformat())
        desk.walk(number, ["initial_review", "investigate"])
        # 7 working days from Mon 12-28: Dec 29, 30, 31, then 2027 provisionally (Jan 1 statutory
        # holiday, Jan 2-3 weekend): Jan 4, 5, 6, 7.
        shown = deadlines(desk, number)
        assert shown["resolution_deadline"]["due_at"] == JAN_7_END
        assert shown["resolution_deadline"]["provisional"] is True
        assert shown["investigation_deadline"]["provisional"] is False    # ends 2026-12-31
        assert shown["initial_review_deadline"]["provisional"] is False   # 24 hours, no calendar

        # The State Council's schedule, entered for every day the deadline depends on, keeps Jan 7.
        for day in ("2027-01-01", "2027-01-02", "2027-01-03"):
            assert cli.invoke(args=["calendar", "set", day, "--holiday", "--note", "元旦"]).exit_code == 0
        # ... and the last day of the regulator's 15 days from Dec 28 (Tue 2027-01-12).
        for day in ("2027-01-04", "2027-01-05", "2027-01-06", "2027-01-07", "2027-01-12"):
            assert cli.invoke(args=["calendar", "set", day, "--working"]).exit_code == 0

        # A step that does not evaluate the timer again leaves it provisional: only a recompute knows.
        desk.complete(number, "analyse_and_plan")
        assert deadlines(desk, number)["resolution_deadline"]["provisional"] is True

        result = cli.invoke(args=["calendar", "recompute"])
        assert result.exit_code == 0, result.output
        assert "recomputed provisional deadlines of 1 instance(s); 0 open deadline(s) still provisional" \
            in result.output
        shown = deadlines(desk, number)["resolution_deadline"]
        assert shown["due_at"] == JAN_7_END and shown["provisional"] is False
        db.session.expire_all()
        row = db.session.execute(select(Deadline).where(Deadline.element_id == "resolution_deadline")).scalar_one()
        assert row.provisional is False
        events = db.session.execute(select(AuditEvent).where(
            AuditEvent.business_key == number, AuditEvent.action.like("deadline_%"))).scalars().all()
        confirmed = [e for e in events if e.action == "deadline_confirmed"]
        assert sorted(e.element_id for e in confirmed) == ["decision_clock", "resolution_deadline"]
        confirmed = [e for e in confirmed if e.element_id == "resolution_deadline"]
        assert confirmed[0].actor == "cli"
        assert confirmed[0].data["due_at"] == JAN_7_END and confirmed[0].data["provisional"] is False
        assert "deadline_recomputed" not in {e.action for e in events}      # the time did not change

        # Nothing provisional is left to recompute.
        assert "recomputed provisional deadlines of 0 instance(s)" in cli.invoke(args=["calendar", "recompute"]).output
        assert "provisional open deadlines: 0" in cli.invoke(args=["calendar", "status"]).output


def test_a_recompute_that_still_depends_on_guessed_days_keeps_the_flag(app, client, people):
    cli = app.test_cli_runner()
    t0 = datetime(2026, 12, 28, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False):
        desk = Desk(client, people)
        number = desk.register(received_at=t0.isoformat())
        desk.walk(number, ["initial_review", "investigate"])
        # Only Jan 4 entered (a working day, as guessed): Jan 5-7 are still guesses.
        assert cli.invoke(args=["calendar", "set", "2027-01-04", "--working"]).exit_code == 0
        result = cli.invoke(args=["calendar", "recompute"])
        assert "2 open deadline(s) still provisional" in result.output      # + the regulator's 15 days
        shown = deadlines(desk, number)["resolution_deadline"]
        assert shown["due_at"] == JAN_7_END and shown["provisional"] is True
        actions = {e["action"] for e in desk.complaint(number)["history"]}
        assert "deadline_confirmed" not in actions and "deadline_recomputed" not in actions


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_day_that_is_none_is_said_to_be_none_and_the_usage_names_a_day(app, backend):
    runner = app.test_cli_runner()
    for typed in ("2026-02-30", "2026/10/01", "x"):
        refused = runner.invoke(args=["calendar", "set", typed, "--holiday"])
        assert refused.exit_code == 2 and f"'{typed}' is not a day of the calendar as YYYY-MM-DD" in refused.output
    assert "calendar set [OPTIONS] DAY\n" in runner.invoke(args=["calendar", "set", "--help"]).output

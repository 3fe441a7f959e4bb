"""A year without official holiday data is never guessed silently: its deadlines are provisional,
admins can enter the published schedule as overrides, and provisional deadlines are recomputed."""
from datetime import datetime, timedelta, timezone

import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import Deadline
from tests.flow import Desk

SH = timezone(timedelta(hours=8))


def test_deadline_in_an_unpublished_year_is_provisional_until_recomputed(app, client, people, caplog):
    cli = app.test_cli_runner()
    last = app.extensions["runtime"].calendar().last_official_year
    assert last == 2026    # the holidays package data this suite was written against
    t0 = datetime(2026, 12, 28, 10, 0, tzinfo=SH)     # Monday; 7 working days reach into 2027
    with time_machine.travel(t0, tick=False):
        desk = Desk(client, people)
        number = desk.register(received_at=t0.isoformat())
        desk.walk(number, ["initial_review", "investigate"])
        rows = {d.element_id: d for d in db.session.execute(select(Deadline)).scalars()}
        assert rows["investigation_deadline"].provisional is False          # ends 2026-12-31
        resolution = rows["resolution_deadline"]
        assert resolution.provisional is True
        # Dec 29, 30, 31, then 2027 provisionally: Jan 1 (fixed holiday) skipped, Jan 4..7.
        assert resolution.due_at == datetime(2027, 1, 7, 15, 59, 59, tzinfo=timezone.utc)
        assert "provisional" in caplog.text
        status = cli.invoke(args=["calendar", "status"])
        assert "official holiday data up to: 2026" in status.output
        assert "provisional open deadlines: 2" in status.output      # and the regulator's 15 days

        # The State Council publishes: say Jan 4 is part of the New Year holiday.
        assert cli.invoke(args=["calendar", "set", "2027-01-04", "--holiday", "--note", "元旦调休"]).exit_code == 0
        result = cli.invoke(args=["calendar", "recompute"])
        assert "recomputed provisional deadlines of 1 instance(s)" in result.output
        db.session.expire_all()
        resolution = db.session.get(Deadline, resolution.id)
        assert resolution.due_at == datetime(2027, 1, 8, 15, 59, 59, tzinfo=timezone.utc)
        task = desk.open_tasks(number)["analyse_and_plan"]
        assert task["due_at"] == "2027-01-08T15:59:59+00:00"
        history = [e for e in desk.complaint(number)["history"] if e["action"] == "deadline_recomputed"]
        assert history[0]["data"]["was"] == "2027-01-07T15:59:59+00:00"

        # A make-up working day pulls it back; removing the holiday override restores the provisional count.
        cli.invoke(args=["calendar", "set", "2027-01-02", "--working"])
        cli.invoke(args=["calendar", "recompute"])
        db.session.expire_all()
        assert db.session.get(Deadline, resolution.id).due_at == datetime(2027, 1, 7, 15, 59, 59,
                                                                          tzinfo=timezone.utc)
        assert cli.invoke(args=["calendar", "unset", "2027-01-04"]).exit_code == 0
        assert cli.invoke(args=["calendar", "unset", "2027-01-04"]).exit_code != 0

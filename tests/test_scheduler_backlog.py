"""A backlog of due timers shared by two schedulers: each due instance fires exactly once, whichever
scheduler takes it (PostgreSQL skips a row the other holds; SQLite has no row locks, and a collision
loses one side's work, never doubles it)."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import AuditEvent, Deadline, HumanTask, ProcessInstance
from app.scheduler import fire_due_timers
from tests.flow import Desk

SH = timezone(timedelta(hours=8))
BACKLOG = 12


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def run_schedulers(apps):
    """Each app runs fire_due_timers passes in its own thread until a pass fires nothing; all start
    together. Returns (fired per scheduler, errors)."""
    barrier = threading.Barrier(len(apps))
    fired, errors = [0] * len(apps), []

    def scheduler(i, app):
        barrier.wait()
        try:
            while (changed := fire_due_timers(app)) > 0:
                fired[i] += changed
        except Exception as exc:      # noqa: BLE001  (a scheduler must never crash on a concurrent one)
            errors.append(exc)

    threads = [threading.Thread(target=scheduler, args=(i, app)) for i, app in enumerate(apps)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return fired, errors


def counts_per(columns, stmt):
    """The row count of each group of `stmt` grouped by `columns`."""
    return [row.n for row in db.session.execute(stmt.add_columns(func.count().label("n")).group_by(*columns))]


def test_two_schedulers_fire_a_backlog_once(app, desk, backend, database_url):
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        numbers = [desk.register(received_at=t0.isoformat()) for _ in range(BACKLOG)]
        clock.shift(timedelta(hours=24, seconds=1))     # every initial review is overdue
        second = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=database_url(backend))   # its own app and session
        try:
            fired, errors = run_schedulers([app, second])
        finally:
            with second.app_context():
                db.session.remove()
                db.engine.dispose()

        assert errors == [] and sum(fired) == BACKLOG, (fired, errors)
        db.session.expire_all()
        now = t0 + timedelta(hours=24, seconds=1)
        assert db.session.execute(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.status == "running", ProcessInstance.next_timer_at <= now)).scalar_one() == 0
        assert db.session.execute(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.status != "running")).scalar_one() == 0
        # One deadline_missed event and one missed row per instance's review deadline, never two.
        missed = counts_per((AuditEvent.instance_id, AuditEvent.element_id), select(
            AuditEvent.instance_id, AuditEvent.element_id).where(AuditEvent.action == "deadline_missed"))
        assert len(missed) == BACKLOG and set(missed) == {1}
        rows = counts_per((Deadline.instance_id, Deadline.element_id), select(
            Deadline.instance_id, Deadline.element_id).where(Deadline.state == "missed"))
        assert len(rows) == BACKLOG and set(rows) == {1}
        # One management follow-up per complaint, never two.
        follow_ups = counts_per((HumanTask.instance_id,), select(HumanTask.instance_id).where(
            HumanTask.element_id == "initial_review_overdue"))
        assert len(follow_ups) == BACKLOG and set(follow_ups) == {1}
        assert all("initial_review_overdue" in desk.open_tasks(n) for n in numbers[:3])
        assert fire_due_timers(app) == 0      # nothing left, nothing fires twice

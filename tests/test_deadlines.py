"""Deadlines are timer boundary events in the diagram, fired by the scheduler on moved clocks."""
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


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def deadlines(desk, number):
    return {d["element_id"]: d for d in desk.complaint(number)["deadlines"]}


@pytest.mark.clause("C-4.1", "C-3.2.1")
def test_initial_review_overdue_after_24_hours_escalates_to_management(app, desk, client, people):
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        number = desk.register(received_at=t0.isoformat())
        review_id = desk.task_id(number, "initial_review")
        client.post(f"/api/v1/tasks/{review_id}/claim", headers=people["customer_service"].headers)
        due = deadlines(desk, number)["initial_review_deadline"]
        assert due["due_at"] == "2026-11-26T02:00:00+00:00" and due["state"] == "open"

        clock.shift(timedelta(hours=23, minutes=59))
        assert fire_due_timers(app) == 0
        assert "initial_review_overdue" not in desk.open_tasks(number)

        clock.shift(timedelta(minutes=1, seconds=1))
        assert fire_due_timers(app) == 1
        tasks = desk.open_tasks(number)
        assert tasks["initial_review_overdue"]["role"] == "management"
        # The overdue task stays with its handler (non-interrupting).
        assert tasks["initial_review"]["id"] == review_id and tasks["initial_review"]["assignee"] == "customer_service"
        assert tasks["initial_review"]["due_at"] == "2026-11-26T02:00:00+00:00"   # still overdue, not undated
        assert deadlines(desk, number)["initial_review_deadline"]["state"] == "missed"
        missed = [e for e in desk.complaint(number)["history"] if e["action"] == "deadline_missed"]
        assert len(missed) == 1 and missed[0]["actor"] == "scheduler"
        assert fire_due_timers(app) == 0   # nothing fires twice

        desk.complete(number, "initial_review_overdue")
        desk.complete(number, "initial_review")
        assert list(desk.open_tasks(number)) == ["investigate"]


@pytest.mark.clause("C-4.2")
def test_investigation_deadline_counts_working_days_with_holidays_and_make_up_days(app, desk):
    # Accepted on 2026-09-30: National Day 10-01..07 is off, Saturday 10-10 is a make-up working day.
    t0 = datetime(2026, 9, 30, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        number = desk.register(received_at=t0.isoformat())
        desk.complete(number, "initial_review")
        found = deadlines(desk, number)
        assert found["investigation_deadline"]["due_at"] == "2026-10-10T15:59:59+00:00"
        assert desk.open_tasks(number)["investigate"]["due_at"] == "2026-10-10T15:59:59+00:00"

        clock.move_to(datetime(2026, 10, 10, 23, 59, 58, tzinfo=SH))
        assert fire_due_timers(app) == 0
        clock.move_to(datetime(2026, 10, 11, 0, 0, 1, tzinfo=SH))
        assert fire_due_timers(app) == 1
        tasks = desk.open_tasks(number)
        assert {"investigate", "investigation_overdue"} <= set(tasks)
        assert deadlines(desk, number)["investigation_deadline"]["state"] == "missed"


@pytest.mark.clause("C-4.3")
def test_resolution_deadline_covers_the_whole_solution_phase(app, desk):
    t0 = datetime(2026, 9, 30, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        number = desk.register(received_at=t0.isoformat())
        desk.walk(number, ["initial_review", "investigate"])
        found = deadlines(desk, number)
        assert found["resolution_deadline"]["due_at"] == "2026-10-15T15:59:59+00:00"
        assert found["investigation_deadline"]["state"] == "met"
        # Tasks inside the solution phase carry its due time.
        assert desk.open_tasks(number)["analyse_and_plan"]["due_at"] == "2026-10-15T15:59:59+00:00"
        clock.move_to(datetime(2026, 10, 16, 0, 0, 1, tzinfo=SH))
        assert fire_due_timers(app) == 1
        tasks = desk.open_tasks(number)
        assert {"analyse_and_plan", "resolution_overdue"} <= set(tasks)
        assert tasks["analyse_and_plan"]["due_at"] == "2026-10-15T15:59:59+00:00"   # the missed deadline stays
        # Handling continues in place after the escalation.
        desk.walk(number, ["analyse_and_plan", "feedback_to_customer", "customer_confirmation", "archive"])
        c = desk.complaint(number)["complaint"]
        assert c["outcome"] == "resolved"


@pytest.mark.clause("C-4.4", "C-4.2")
def test_each_re_evaluation_round_gets_fresh_deadlines(app, desk):
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=SH)   # a Monday
    with time_machine.travel(t0, tick=False) as clock:
        number = desk.register(received_at=t0.isoformat())
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                           ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "不满意"})])
        clock.move_to(datetime(2026, 11, 9, 10, 0, tzinfo=SH))   # the next Monday
        desk.complete(number, "re_evaluation", needs_investigation=True)
        rows = [d for d in desk.complaint(number)["deadlines"] if d["element_id"] == "investigation_deadline"]
        assert [d["state"] for d in rows] == ["met", "open"]
        assert rows[1]["due_at"] == "2026-11-12T15:59:59+00:00"   # Thursday: 3 working days from round 2


def test_restart_continues_every_complaint_with_its_timers(app, desk, backend, database_url, people):
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        number = desk.register(received_at=t0.isoformat())
        desk.complete(number, "initial_review")
        # A new process: new app, new engine, nothing in memory; only the database carries over.
        restarted = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=database_url(backend))
        with restarted.app_context():
            clock.move_to(datetime(2026, 12, 1, 0, 0, 1, tzinfo=SH))
            assert fire_due_timers(restarted) == 1
            second = Desk(restarted.test_client(), people)
            assert {"investigate", "investigation_overdue"} <= set(second.open_tasks(number))
            second.walk(number, ["investigate", "analyse_and_plan", "feedback_to_customer",
                                 "customer_confirmation", "archive"])
            # Archived means closed; management's follow-up stays open until it is done.
            view = second.complaint(number)
            assert view["complaint"]["status"] == "closed" and view["complaint"]["closed_at"]
            assert [t["element_id"] for t in view["current_tasks"]] == ["investigation_overdue"]
            second.complete(number, "investigation_overdue", investigation_overdue_cause="调查资料未到",
                            investigation_overdue_actions=["urge_handler"],
                            investigation_overdue_due_date="2026-12-02")
            closed = second.complaint(number)
            assert closed["complaint"]["rounds"] == 1 and closed["complaint"]["outcome"] == "resolved"
            assert closed["current_tasks"] == []
            inst = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()
            assert inst.status == "completed"
            db.session.remove()
            db.engine.dispose()


def test_two_schedulers_never_fire_a_timer_twice(app, desk, backend):
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        numbers = [desk.register(received_at=t0.isoformat()) for _ in range(4)]
        clock.shift(timedelta(hours=25))
        results, errors = [], []
        barrier = threading.Barrier(2)

        def scheduler():
            barrier.wait()
            try:
                results.append(fire_due_timers(app))
            except Exception as exc:    # a scheduler must never crash on a concurrent one
                errors.append(exc)

        threads = [threading.Thread(target=scheduler) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert errors == [] and sum(results) == 4
        overdue = db.session.execute(select(func.count()).select_from(HumanTask).where(
            HumanTask.element_id == "initial_review_overdue")).scalar_one()
        assert overdue == 4
        missed = db.session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "deadline_missed")).scalar_one()
        assert missed == 4
        assert all(d["state"] == "missed" for n in numbers for d in desk.complaint(n)["deadlines"]
                   if d["element_id"] not in ("decision_clock", "initial_review_overdue_deadline"))   # the follow-up has a day


def test_next_timer_due_is_kept_on_the_instance_row(app, desk):
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False):
        number = desk.register(received_at=t0.isoformat())
        inst = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()
        assert inst.next_timer_at == datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
        desk.complete(number, "initial_review")
        db.session.refresh(inst)
        assert inst.next_timer_at == datetime(2026, 11, 30, 15, 59, 59, tzinfo=timezone.utc)
        open_deadlines = db.session.execute(select(Deadline).where(Deadline.state == "open")).scalars().all()
        # The regulator's clock (15 days) runs beside the step deadlines and binds no task.
        assert sorted(d.element_id for d in open_deadlines) == ["decision_clock", "investigation_deadline"]
        assert [d.host_task_id for d in open_deadlines if d.element_id == "decision_clock"] == [None]


def _engine_failure():
    from SpiffWorkflow.exceptions import WorkflowException
    return WorkflowException("simulated failure in a timer expression")


@pytest.mark.parametrize("verb, failure, recorded", [
    ("fire_due_timers", _engine_failure, "simulated failure"),        # the diagram failed: a ProcessError
    # Anything else (e.g. a value the workflow cannot save) must not stop the other instances' timers either.
    ("dump", lambda: TypeError("Object of type function is not JSON serializable"), "TypeError"),
])
def test_a_failing_timer_marks_its_instance_and_spares_the_others(app, desk, monkeypatch, verb, failure, recorded):
    from app.engine import workflow
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False) as clock:
        broken, healthy = desk.register(received_at=t0.isoformat()), desk.register(received_at=t0.isoformat())
        clock.shift(timedelta(hours=25))
        real = getattr(workflow, verb)

        def failing(wf):
            if any(t.data.get("complaint_number") == broken for t in wf.get_tasks()):
                raise failure()
            return real(wf)
        monkeypatch.setattr(workflow, verb, failing)
        assert fire_due_timers(app) == 1
        insts = {i.business_key: i for i in db.session.execute(select(ProcessInstance)).scalars()}
        assert insts[broken].status == "error" and recorded in insts[broken].error
        assert insts[broken].next_timer_at is None          # not retried every pass
        assert insts[healthy].status == "running"
        assert "initial_review_overdue" in desk.open_tasks(healthy)
        errors = [e for e in desk.complaint(broken)["history"] if e["action"] == "instance_error"]
        assert len(errors) == 1
        assert fire_due_timers(app) == 0



@pytest.mark.clause("C-4.1")
def test_a_complaint_registered_after_its_deadline_records_the_deadline_as_missed(app, desk, client, people):
    now = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    with time_machine.travel(now, tick=False):
        on_time = desk.register(received_at=now.isoformat())
        late = desk.register(received_at=(now - timedelta(hours=30)).isoformat())   # a letter that took a while
        row = deadlines(desk, late)["initial_review_deadline"]
        assert row["state"] == "missed" and row["due_at"] == "2026-11-24T20:00:00+00:00"
        actions = [e["action"] for e in desk.complaint(late)["history"]]
        # + the clock, and the follow-up's own day (issue 9)
        assert actions.count("deadline_set") == 3 and actions.count("deadline_missed") == 1
        assert {"initial_review", "initial_review_overdue"} <= set(desk.open_tasks(late))
        # Overdue tasks come first in the queue.
        queue = client.get("/api/v1/tasks?queue=available", headers=people["customer_service"].headers).json
        assert [t["complaint_number"] for t in queue["items"]] == [late, on_time]

"""The regulator's clock (监管时限, R-DECIDE) is in the diagram: 15 days from receipt counted as the law
counts periods (CC-201, CC-203), beside the handling, binding no task; met by the first decision,
never restarted by later rounds; missed -> a management task and an audit entry; shown on the
queues and the complaint page as its own deadline; stopped by a withdrawal."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.analysis import deadlines
from app.extensions import db
from app.models import AuditEvent, Deadline
from app.scheduler import fire_due_timers
from tests.flow import Desk, complaint_row as complaint
from tests.test_web import Browser

pytestmark = pytest.mark.clause("C-2.1")
SH = timezone(timedelta(hours=8))
# Received Fri 2026-02-13: day 15 is Sat 02-28, a make-up working day of the 2026 Spring Festival
# schedule, so the period ends there at 24:00 Shanghai time.
RECEIVED = datetime(2026, 2, 13, 10, 0, tzinfo=SH)
DUE = datetime(2026, 2, 28, 23, 59, 59, tzinfo=SH)


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def clock_deadline(number) -> Deadline:
    return db.session.execute(select(Deadline).where(Deadline.instance_id == complaint(number).instance_id,
                                                     Deadline.element_id == "decision_clock")).scalar_one()


def test_the_clock_runs_from_receipt_as_the_law_counts_and_binds_no_task(app, desk):
    with time_machine.travel(RECEIVED, tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        c = complaint(number)
        assert (c.decision_clock, c.decision_due_at) == ("running", DUE)
        assert c.decision_warning_days == 3
        row = clock_deadline(number)
        assert (row.state, row.due_at, row.host_task_id, row.name) == ("open", DUE, None, "监管时限（收到投诉后15日）")
        # The initial review keeps its own 24 hours; the clock is not a task deadline.
        assert desk.open_tasks(number)["initial_review"]["due_at"] == "2026-02-14T02:00:00+00:00"


def test_the_first_decision_meets_the_clock_and_later_rounds_do_not_restart_it(app, desk):
    with time_machine.travel(RECEIVED, tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"])
        assert complaint(number).decision_clock == "met" and clock_deadline(number).state == "met"
        desk.complete(number, "customer_confirmation", satisfied=False, dissatisfaction_reasons="金额太低")
        desk.complete(number, "re_evaluation")
        clock.move_to(DUE + timedelta(days=5))                # a second round long after day 15
        fire_due_timers(app)
        assert "decision_overdue" not in desk.open_tasks(number)
        desk.walk(number, ["analyse_and_plan", "feedback_to_customer"])
        assert complaint(number).decision_clock == "met"
        assert [d.element_id for d in db.session.execute(select(Deadline).where(
            Deadline.instance_id == complaint(number).instance_id, Deadline.element_id == "decision_clock"))
            .scalars()] == ["decision_clock"]                 # set once, never again


@pytest.mark.clause("C-2.1", "C-6.3")
def test_no_decision_by_the_end_of_day_15_escalates_to_management(app, desk, people):
    with time_machine.travel(RECEIVED, tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        desk.walk(number, ["initial_review", "investigate"])
        clock.move_to(DUE - timedelta(minutes=1))
        fire_due_timers(app)
        assert "decision_overdue" not in desk.open_tasks(number)
        clock.move_to(DUE + timedelta(seconds=2))
        fire_due_timers(app)
        task = desk.open_tasks(number)["decision_overdue"]
        assert task["role"] == "management" and task["name"] == "监管时限超时处理"
        assert complaint(number).decision_clock == "missed" and clock_deadline(number).state == "missed"
        missed = db.session.execute(select(AuditEvent).where(AuditEvent.business_key == number,
                                                             AuditEvent.action == "deadline_missed",
                                                             AuditEvent.element_id == "decision_clock")).scalars()
        assert len(list(missed)) == 1
        # The handling goes on: the analysis is still open, with its own deadline.
        assert "analyse_and_plan" in desk.open_tasks(number)
        desk.complete(number, "decision_overdue", decision_overdue_cause="外部鉴定未返回",
                      decision_overdue_measures="督促并告知客户", customer_told_of_delay=True)
        desk.walk(number, ["analyse_and_plan", "feedback_to_customer"])
        assert complaint(number).decision_clock == "missed"      # a late decision does not turn it green


def test_queues_and_the_complaint_page_show_the_clock_and_warn_before_it_ends(app, desk):
    with time_machine.travel(RECEIVED, tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        browser = Browser(app).login("customer_service")
        assert 'data-testid="decision-clock" data-state="ok"' in browser.get("/").text
        clock.move_to(DUE - timedelta(days=2))                # inside the 3-day warning
        browser = Browser(app).login("customer_service")      # (the session of two weeks ago expired)
        assert 'data-testid="decision-clock" data-state="soon"' in browser.get("/").text
        page = browser.get(f"/complaints/{number}").text
        assert 'data-testid="banner-decision-clock"' in page and 'data-state="soon"' in page
        clock.move_to(DUE + timedelta(hours=1))
        browser = Browser(app).login("customer_service")
        assert 'data-testid="decision-clock" data-state="overdue"' in browser.get(f"/complaints/{number}").text


def withdraw(app, number):
    app.extensions["runtime"].send_message(complaint(number).instance_id, "complaint_withdrawn",
                                           {"reason": "", "by": "customer"}, "customer")


def test_a_withdrawal_ends_the_clock_and_keeps_a_breach_on_record(app, desk):
    with time_machine.travel(RECEIVED, tick=False) as clock:
        breached = desk.register(received_at=RECEIVED.isoformat())
        clock.move_to(DUE + timedelta(hours=1))
        fire_due_timers(app)
        assert complaint(breached).decision_clock == "missed"
        withdraw(app, breached)
        assert complaint(breached).decision_clock == "missed"      # the breach stays on the record
    number = desk.register()
    withdraw(app, number)
    assert complaint(number).status == "closed" and clock_deadline(number).state == "cancelled"
    assert complaint(number).decision_clock == "stopped"                # no longer running: never overdue
    browser = Browser(app).login("customer_service")
    assert 'data-testid="banner-decision-clock"' not in browser.get(f"/complaints/{number}").text
    due = complaint(number).decision_due_at
    with time_machine.travel(due + timedelta(days=1), tick=False):
        r = desk.client.get("/api/v1/complaints?overdue=1", headers=desk.people["compliance"].headers)
        assert r.status_code == 200 and number not in [c["number"] for c in r.json["items"]]
        assert breached not in [c["number"] for c in r.json["items"]]     # closed, its breach on record
        counted = deadlines.decision_clock(db.session, (due - timedelta(days=400), due + timedelta(days=1)), [])
        assert (counted["due"], counted["met"], counted["missed"]) == (1, 0, 1)     # the breach only


def test_a_change_after_the_end_of_day_15_fires_the_clock_before_the_scheduler_does(app, desk):
    """The clock ran out between two scheduler passes and a handler completes a step: the change sees
    the breach first (no 'met' for a late decision, no second deadline row)."""
    with time_machine.travel(RECEIVED, tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        desk.complete(number, "initial_review")
        clock.move_to(DUE + timedelta(seconds=5))
        desk.complete(number, "investigate")
        assert complaint(number).decision_clock == "missed" and clock_deadline(number).state == "missed"
        assert "decision_overdue" in desk.open_tasks(number)
        desk.walk(number, ["analyse_and_plan", "feedback_to_customer"])     # the (late) decision
        assert complaint(number).decision_clock == "missed"
        assert fire_due_timers(app) == 0


def test_a_late_decision_between_two_scheduler_passes_is_not_counted_as_in_time(app, desk):
    """The decision itself (the result sent) comes after the end of day 15, before the scheduler's next pass: the
    clock fires first, so the decision meets a clock already missed."""
    with time_machine.travel(RECEIVED, tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan"])
        clock.move_to(DUE + timedelta(seconds=5))
        desk.complete(number, "feedback_to_customer")                         # the (late) decision
        assert complaint(number).decision_clock == "missed" and clock_deadline(number).state == "missed"
        assert complaint(number).decided_at > DUE
        assert "decision_overdue" in desk.open_tasks(number)
        assert fire_due_timers(app) == 0


def test_a_message_after_the_end_of_day_15_meets_the_clock_fired_first(app, desk):
    """An extension asked for, or an appraisal registered, after the limit ran out but before the scheduler's next
    pass is refused as it is after that pass (the limit can no longer move); a withdrawal keeps the breach."""
    with time_machine.travel(RECEIVED, tick=False) as clock:
        late, withdrawn = (desk.register(received_at=RECEIVED.isoformat()) for _ in range(2))
        for number in (late, withdrawn):
            desk.complete(number, "initial_review")
        clock.move_to(DUE + timedelta(seconds=5))
        for name, data in (("extension_requested", {"reason": "需调取医院病历，尚未回复"}),
                           ("appraisal_started", {"kind": "伤残鉴定", "started_on": "2026-02-20",
                                                  "expected_end_on": "2026-03-10"})):
            r = desk.client.post(f"/api/v1/complaints/{late}/actions/{name}", json={"data": data},
                                 headers=desk.people["claims_specialist"].headers)
            assert r.status_code == 409, (name, r.json)
        # What happened first stays: the clock's lapse, as the scheduler would have fired it (a change of its own).
        assert complaint(late).decision_clock == "missed" and "decision_overdue" in desk.open_tasks(late)
        withdraw(app, withdrawn)
        assert complaint(withdrawn).decision_clock == "missed" and clock_deadline(withdrawn).state == "missed"
        assert fire_due_timers(app) == 0
        history = [a for a, in db.session.execute(select(AuditEvent.action).where(
            AuditEvent.business_key == withdrawn).order_by(AuditEvent.id))]
        assert history.index("deadline_missed") < history.index("message_received")     # in the order it happened


def test_a_recompute_moves_the_clock_shown_on_the_complaint(app, desk):
    """Received Mon 2026-12-28: day 15 is Tue 2027-01-12, a year not published yet (provisional). When
    the State Council makes it a holiday, the deadline and the complaint row both move to Jan 13."""
    cli = app.test_cli_runner()
    received = datetime(2026, 12, 28, 10, 0, tzinfo=SH)
    with time_machine.travel(received, tick=False):
        number = desk.register(received_at=received.isoformat())
        assert complaint(number).decision_due_at == datetime(2027, 1, 12, 23, 59, 59, tzinfo=SH)
        assert clock_deadline(number).provisional is True
        assert cli.invoke(args=["calendar", "set", "2027-01-12", "--holiday"]).exit_code == 0
        assert cli.invoke(args=["calendar", "recompute"]).exit_code == 0
        assert complaint(number).decision_due_at == datetime(2027, 1, 13, 23, 59, 59, tzinfo=SH)
        assert clock_deadline(number).due_at == datetime(2027, 1, 13, 23, 59, 59, tzinfo=SH)

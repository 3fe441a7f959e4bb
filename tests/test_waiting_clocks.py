"""Issue 9, items 3 and 4: the waiting steps' clocks (customer confirmation with its second-silence
rule, re-evaluation, malicious review, archiving, the overdue follow-ups themselves) and escalations
that act (a progress message to the customer; management's completion date as the late task's new
deadline). The clock is moved with time-machine; nothing sleeps."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import Deadline
from app.scheduler import fire_due_timers
from tests.flow import Desk, complaint_row

SH = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=SH)          # a Monday; no holiday in November 2026
TO_RESULT = ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"]


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def rows(number, element_id) -> list[Deadline]:
    return list(db.session.execute(select(Deadline).where(
        Deadline.instance_id == complaint_row(number).instance_id, Deadline.element_id == element_id)
        .order_by(Deadline.id)).scalars())


def end_of(day: str) -> str:
    """The end of a Beijing day, as the API writes it (UTC)."""
    return (datetime.fromisoformat(f"{day}T23:59:59+08:00")).astimezone(timezone.utc).isoformat()


def at(clock, day, time="00:00:01"):
    clock.move_to(datetime.fromisoformat(f"{day}T{time}+08:00"))


# ---- customer confirmation: first silence -> customer service follows up; second -> taken as accepted ----
@pytest.mark.clause("C-3.4.2", "C-7.2")
def test_a_silent_customer_is_followed_up_then_the_result_counts_as_accepted(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_RESULT)
        assert desk.open_tasks(number)["customer_confirmation"]["due_at"] == end_of("2026-11-09")   # 5 working days
        at(clock, "2026-11-09", "23:59:58")
        assert fire_due_timers(app) == 0
        at(clock, "2026-11-10")
        assert fire_due_timers(app) == 1
        tasks = desk.open_tasks(number)
        assert list(tasks) == ["confirmation_follow_up"]                 # the confirmation waits for the call
        assert tasks["confirmation_follow_up"]["role"] == "customer_service"
        assert tasks["confirmation_follow_up"]["due_at"] == end_of("2026-11-10")
        assert [r.state for r in rows(number, "confirmation_deadline")] == ["missed"]

        at(clock, "2026-11-10", "10:00:00")
        desk.complete(number, "confirmation_follow_up")
        # Open again for the customer, with 5 more working days counted from the call.
        assert desk.open_tasks(number)["customer_confirmation"]["due_at"] == end_of("2026-11-17")
        assert "confirmation_deemed" not in desk.outbox(number)
        at(clock, "2026-11-17", "23:59:58")
        assert fire_due_timers(app) == 0
        at(clock, "2026-11-18")
        assert fire_due_timers(app) == 1
        assert list(desk.open_tasks(number)) == ["archive"]
        c = desk.complaint(number)["complaint"]
        assert c["outcome"] == "resolved" and c["satisfied"] is None
        template, payload = desk.messages(number)[-1]
        assert template == "confirmation_deemed" and payload["review_until"] and payload["result_sent_at"]
        assert [r.state for r in rows(number, "confirmation_deadline")] == ["missed", "missed"]


@pytest.mark.clause("C-3.4.2")
def test_an_answer_after_the_follow_up_is_taken_as_usual_and_the_next_round_starts_afresh(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_RESULT)
        at(clock, "2026-11-10")
        fire_due_timers(app)
        desk.complete(number, "confirmation_follow_up")
        desk.complete(number, "customer_confirmation", satisfied=False, dissatisfaction_reasons="金额太低")
        assert [r.state for r in rows(number, "confirmation_deadline")] == ["missed", "met"]
        desk.walk(number, ["re_evaluation", "analyse_and_plan", "feedback_to_customer"])
        # Round 2: the first silence again leads to a follow-up, not straight to acceptance.
        at(clock, "2026-11-20")
        fire_due_timers(app)
        assert "confirmation_follow_up" in desk.open_tasks(number)
        assert "confirmation_deemed" not in desk.outbox(number)


# ---- re-evaluation, malicious review, archiving: escalation to management ----------------------------
@pytest.mark.clause("C-4.4", "C-6.3")
def test_re_evaluation_late_by_a_working_day_goes_to_management(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_RESULT + [("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "不满"})])
        assert desk.open_tasks(number)["re_evaluation"]["due_at"] == end_of("2026-11-03")
        at(clock, "2026-11-03", "23:59:58")
        assert fire_due_timers(app) == 0
        at(clock, "2026-11-04")
        assert fire_due_timers(app) == 1
        tasks = desk.open_tasks(number)
        assert tasks["re_evaluation_overdue"]["role"] == "management"
        assert tasks["re_evaluation_overdue"]["due_at"] == end_of("2026-11-04")
        assert "re_evaluation" in tasks                                      # non-interrupting


def test_a_re_evaluation_in_time_meets_its_deadline(app, desk):
    with time_machine.travel(T0, tick=False):
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_RESULT + [("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "不满"}),
                                       "re_evaluation"])
        assert [r.state for r in rows(number, "re_evaluation_deadline")] == ["met"]


@pytest.mark.clause("C-7.4", "C-6.3")
def test_malicious_review_late_after_three_working_days_goes_to_management(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.complete(number, "initial_review", decision="suspected_malicious", malicious_indicators="重复投诉")
        assert desk.open_tasks(number)["malicious_review"]["due_at"] == end_of("2026-11-05")
        at(clock, "2026-11-06")
        assert fire_due_timers(app) == 1
        tasks = desk.open_tasks(number)
        assert tasks["malicious_review_overdue"]["role"] == "management" and "malicious_review" in tasks
        assert tasks["malicious_review_overdue"]["due_at"] == end_of("2026-11-06")


@pytest.mark.clause("C-3.5.1", "C-6.3")
def test_archiving_late_after_three_working_days_goes_to_management(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_RESULT + ["customer_confirmation"])
        assert desk.open_tasks(number)["archive"]["due_at"] == end_of("2026-11-05")
        at(clock, "2026-11-06")
        assert fire_due_timers(app) == 1
        assert desk.open_tasks(number)["archive_overdue"]["role"] == "management"
        desk.complete(number, "archive")
        assert complaint_row(number).status == "closed"
        assert [r.state for r in rows(number, "archive_deadline")] == ["missed"]


@pytest.mark.clause("C-4.1", "C-6.3")
def test_an_overdue_follow_up_has_a_day_of_its_own_and_then_is_shown_overdue(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        at(clock, "2026-11-03", "10:00:01")
        assert fire_due_timers(app) == 1
        assert desk.open_tasks(number)["initial_review_overdue"]["due_at"] == end_of("2026-11-04")
        at(clock, "2026-11-05")
        assert fire_due_timers(app) == 1
        assert [r.state for r in rows(number, "initial_review_overdue_deadline")] == ["missed"]
        tasks = desk.open_tasks(number)
        assert set(tasks) == {"initial_review", "initial_review_overdue"}    # recorded; no escalation of the escalation
        assert tasks["initial_review_overdue"]["due_at"] == end_of("2026-11-04")


# ---- escalations act: a progress message, and management's date as the late task's deadline ----------
def late_initial_review(app, desk, clock):
    number = desk.register(received_at=T0.isoformat())
    at(clock, "2026-11-03", "10:00:01")
    assert fire_due_timers(app) == 1
    return number


@pytest.mark.clause("C-7.2", "C-4.1")
def test_inform_the_customer_queues_a_progress_message_and_only_then(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        told, silent = late_initial_review(app, desk, clock), None
        desk.complete(told, "initial_review_overdue", initial_review_overdue_actions=["urge_handler", "inform_customer"],
                      initial_review_overdue_due_date="2026-11-04")
        template, payload = desk.messages(told)[-1]
        assert template == "progress"
        assert payload == {"step": "initial_review", "expected_due": "2026-11-04T23:59:59+08:00"}
        silent = desk.register(received_at=T0.isoformat())
        at(clock, "2026-11-03", "10:00:02")
        fire_due_timers(app)
        desk.complete(silent, "initial_review_overdue")          # urge_handler only
        assert "progress" not in desk.outbox(silent)


@pytest.mark.clause("C-4.1", "C-6.3")
def test_the_completion_date_becomes_the_late_task_s_deadline_and_is_met(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = late_initial_review(app, desk, clock)
        assert desk.open_tasks(number)["initial_review"]["due_at"] == "2026-11-03T02:00:00+00:00"     # overdue
        at(clock, "2026-11-03", "15:00:00")
        desk.complete(number, "initial_review_overdue", initial_review_overdue_due_date="2026-11-05")
        # The queue now shows management's date on the late task, and the deadline binds it.
        assert desk.open_tasks(number)["initial_review"]["due_at"] == end_of("2026-11-05")
        (row,) = rows(number, "initial_review_new_due_watch")
        assert (row.state, row.host_element_id) == ("open", "initial_review")
        desk.complete(number, "initial_review")
        assert rows(number, "initial_review_new_due_watch")[0].state == "met"
        at(clock, "2026-11-06")
        assert fire_due_timers(app) == 0                       # nothing left to fire for the review
        assert "initial_review_overdue_again" not in desk.open_tasks(number)


@pytest.mark.clause("C-4.1", "C-6.3", "C-7.2")
def test_a_missed_completion_date_escalates_again_with_a_new_date_until_the_task_is_done(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = late_initial_review(app, desk, clock)
        desk.complete(number, "initial_review_overdue", initial_review_overdue_due_date="2026-11-04")
        at(clock, "2026-11-04", "23:59:58")
        fire_due_timers(app)
        assert "initial_review_overdue_again" not in desk.open_tasks(number)
        at(clock, "2026-11-05")
        fire_due_timers(app)
        tasks = desk.open_tasks(number)
        assert tasks["initial_review_overdue_again"]["role"] == "management"
        assert tasks["initial_review"]["due_at"] == end_of("2026-11-04")                 # missed, still binds
        assert tasks["initial_review_overdue_again"]["due_at"] == end_of("2026-11-05")   # a day of its own
        desk.complete(number, "initial_review_overdue_again", initial_review_overdue_again_due_date="2026-11-09",
                      initial_review_overdue_again_actions=["inform_customer"])
        assert desk.messages(number)[-1] == ("progress", {"step": "initial_review",
                                                          "expected_due": "2026-11-09T23:59:59+08:00"})
        assert desk.open_tasks(number)["initial_review"]["due_at"] == end_of("2026-11-09")
        assert [r.state for r in rows(number, "initial_review_new_due_watch")] == ["missed", "open"]
        # Missed again: a second repeat escalation; the review done meanwhile withdraws it.
        at(clock, "2026-11-10")
        fire_due_timers(app)
        assert "initial_review_overdue_again" in desk.open_tasks(number)
        desk.complete(number, "initial_review")
        assert "initial_review_overdue_again" not in desk.open_tasks(number)
        assert list(desk.open_tasks(number)) == ["investigate"]


@pytest.mark.clause("C-4.1", "C-6.3")
def test_a_task_done_while_its_follow_up_is_open_gets_no_new_deadline(app, desk):
    """The order problem: the late task is done first; the follow-up's date then binds nothing, and
    nothing fires at it."""
    with time_machine.travel(T0, tick=False) as clock:
        number = late_initial_review(app, desk, clock)
        desk.complete(number, "initial_review")
        desk.complete(number, "initial_review_overdue", initial_review_overdue_due_date="2026-11-04")
        assert rows(number, "initial_review_new_due_watch") == []
        at(clock, "2026-11-05")
        fire_due_timers(app)
        assert "initial_review_overdue_again" not in desk.open_tasks(number)
        assert list(desk.open_tasks(number)) == ["investigate"]


@pytest.mark.clause("C-4.3", "C-6.3")
def test_the_date_for_a_late_solution_binds_the_tasks_inside_the_solution_phase(app, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, ["initial_review", "investigate"])
        at(clock, "2026-11-12")                                  # past 7 working days (end of 11-11)
        fire_due_timers(app)
        desk.complete(number, "resolution_overdue", resolution_overdue_due_date="2026-11-16",
                      resolution_overdue_actions=["inform_customer"])
        assert desk.open_tasks(number)["analyse_and_plan"]["due_at"] == end_of("2026-11-16")
        assert desk.messages(number)[-1][1]["step"] == "resolution"
        desk.walk(number, ["analyse_and_plan", "feedback_to_customer"])
        assert rows(number, "resolution_new_due_watch")[0].state == "met"

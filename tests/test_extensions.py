"""Extensions of the regulator's time limit and the appraisal pause are steps of the diagram
(R-EXT30, R-EXT60, R-PAUSE): a handler asks, management approves the first extension to 30 days,
head-office senior management a further 30; an external appraisal's days are not counted. Each
moves the one clock (監管时限) by exactly the right amount as the law counts periods, and the
customer is told through the outbox."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Deadline
from app.scheduler import fire_due_timers
from tests.flow import Desk, complaint_row as complaint

pytestmark = pytest.mark.clause("C-2.1")
SH = timezone(timedelta(hours=8))
# Received Fri 2026-02-13 (Spring Festival 2026: 02-15 .. 02-23 off, Sat 02-28 a make-up working day).
RECEIVED = datetime(2026, 2, 13, 10, 0, tzinfo=SH)
DAY_15 = datetime(2026, 2, 28, 23, 59, 59, tzinfo=SH)       # a make-up working day: the period ends there
DAY_30 = datetime(2026, 3, 16, 23, 59, 59, tzinfo=SH)       # 03-15 is a Sunday: the next working day
DAY_60 = datetime(2026, 4, 14, 23, 59, 59, tzinfo=SH)       # a Tuesday


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def act(desk, number, name, who="claims_specialist", expect=200, **data):
    r = desk.client.post(f"/api/v1/complaints/{number}/actions/{name}", json={"data": data},
                         headers=desk.people[who].headers)
    assert r.status_code == expect, r.json
    return r.json


def actions(desk, number, who="claims_specialist"):
    r = desk.client.get(f"/api/v1/complaints/{number}/actions", headers=desk.people[who].headers)
    assert r.status_code == 200, r.json
    return [a["name"] for a in r.json["actions"]]


def clock_rows(number):
    return db.session.execute(select(Deadline).where(Deadline.instance_id == complaint(number).instance_id,
                                                     Deadline.element_id == "decision_clock")).scalars().all()


def last_message(desk, number, template):
    return [payload for name, payload in desk.messages(number) if name == template][-1]


def test_two_approved_extensions_move_the_clock_to_30_then_60_days_and_tell_the_customer(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        assert actions(desk, number) == ["appraisal_started", "extension_requested"]
        act(desk, number, "extension_requested", reason="需调取医院病历，尚未回复")
        task = desk.open_tasks(number)["approve_extension"]
        assert task["role"] == "management" and task["due_at"] == DAY_15.astimezone(timezone.utc).isoformat()
        assert "extension_requested" not in actions(desk, number)      # one request at a time
        desk.complete(number, "approve_extension", extension_approved=True,
                      extension_reason_for_customer="需向医院调取病历核实伤情", extension_comments="同意")
        c = complaint(number)
        assert (c.decision_due_at, c.decision_clock) == (DAY_30, "running")
        assert [(r.state, r.due_at) for r in clock_rows(number)] == [("open", DAY_30)]   # one clock, moved
        assert last_message(desk, number, "decision_extended") == {
            "reason": "需向医院调取病历核实伤情", "decision_days": 30,
            "decision_due": DAY_30.astimezone(timezone.utc).isoformat()}

        clock.move_to(datetime(2026, 3, 10, 10, 0, tzinfo=SH))
        act(desk, number, "extension_requested", who="customer_service", reason="涉及多家医院，情况特别复杂")
        assert "approve_further_extension" in desk.open_tasks(number)
        assert desk.open_tasks(number)["approve_further_extension"]["role"] == "head_office"
        desk.complete(number, "approve_further_extension", who="head_office", extension_approved=True,
                      extension_reason_for_customer="涉及多家医疗机构的鉴定意见", extension_comments="特批")
        assert complaint(number).decision_due_at == DAY_60
        assert last_message(desk, number, "decision_extended")["decision_days"] == 60

        clock.move_to(datetime(2026, 3, 12, 10, 0, tzinfo=SH))
        assert actions(desk, number) == ["appraisal_started"]                # 60 days is the end
        r = act(desk, number, "extension_requested", expect=409, reason="还要更久")
        assert r["error"]["code"] == "not_now" and complaint(number).decision_due_at == DAY_60

        clock.move_to(DAY_30 + timedelta(days=1))                            # the old limits no longer fire
        fire_due_timers(app)
        assert "decision_overdue" not in desk.open_tasks(number)
        clock.move_to(DAY_60 + timedelta(seconds=2))
        fire_due_timers(app)
        assert "decision_overdue" in desk.open_tasks(number)
        assert complaint(number).decision_clock == "missed"
        assert [(r.state, r.due_at) for r in clock_rows(number)] == [("missed", DAY_60)]


def test_a_refused_extension_leaves_the_clock_and_tells_the_customer_nothing(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "extension_requested", reason="需要更多时间")
        desk.complete(number, "approve_extension", extension_approved=False, extension_comments="案情并不复杂")
        assert complaint(number).decision_due_at == DAY_15
        assert "decision_extended" not in desk.outbox(number)
        assert "extension_requested" in actions(desk, number)                # may ask again


def test_an_approval_must_say_why_for_the_customer(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "extension_requested", reason="需要更多时间")
        r = desk.complete(number, "approve_extension", expect=422, extension_approved=True, extension_comments="同意")
        assert "extension_reason_for_customer" in r["error"]["fields"]


def test_a_decision_ends_a_pending_request_and_no_extension_is_offered_after_it(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "extension_requested", reason="需要更多时间")
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"])
        assert "approve_extension" not in desk.open_tasks(number)            # cancelled: moot
        assert complaint(number).decision_clock == "met"
        assert actions(desk, number) == []
        r = act(desk, number, "extension_requested", expect=409, reason="太晚了")
        assert r["error"]["code"] == "not_now"


def test_an_approval_not_given_before_the_limit_lapses(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=14), tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "extension_requested", reason="需要更多时间")
        clock.move_to(DAY_15 + timedelta(seconds=2))
        fire_due_timers(app)
        tasks = desk.open_tasks(number)
        assert "approve_extension" not in tasks and "decision_overdue" in tasks
        assert complaint(number).decision_clock == "missed"


def test_an_approval_given_after_the_limit_lapsed_before_the_scheduler_came_is_refused_and_the_lapse_stays(app, desk):
    """The limit ran out between two scheduler passes and management approves then: the lapse is what happened (the
    approval task closed by its timer, committed), the approval is refused, and the queue no longer offers it."""
    with time_machine.travel(RECEIVED + timedelta(days=14), tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "extension_requested", reason="需要更多时间")
        clock.move_to(DAY_15 + timedelta(seconds=2))
        r = desk.complete(number, "approve_extension", who="management", expect=409, extension_approved=True,
                          extension_reason_for_customer="情况复杂", extension_comments="同意")
        assert r["error"]["code"] == "task_cancelled"                      # its timer closed it first
        tasks = desk.open_tasks(number)
        assert "approve_extension" not in tasks and "decision_overdue" in tasks
        assert complaint(number).decision_clock == "missed" and complaint(number).decision_due_at == DAY_15
        assert fire_due_timers(app) == 0                                     # nothing was left for the scheduler


def test_an_appraisal_is_not_counted_and_the_customer_is_told_at_start_and_end(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        # Expected 02-16 .. 02-18: 3 days not counted -> day 18 = Tue 03-03.
        act(desk, number, "appraisal_started", kind="伤残等级鉴定", started_on="2026-02-16",
            expected_end_on="2026-02-18")
        expected = datetime(2026, 3, 3, 23, 59, 59, tzinfo=SH)
        c = complaint(number)
        assert (c.decision_clock, c.decision_due_at) == ("paused", expected)
        assert last_message(desk, number, "appraisal_started") == {
            "kind": "伤残等级鉴定", "started_on": "2026-02-16", "expected_end_on": "2026-02-18",
            "decision_due": expected.astimezone(timezone.utc).isoformat()}
        assert actions(desk, number) == ["appraisal_ended"]                   # no extension during it
        clock.move_to(datetime(2026, 2, 18, 16, 0, tzinfo=SH))
        # It took 02-16 .. 02-18 after all; a day later it would have been 02-16 .. 02-22 (7 days):
        act(desk, number, "appraisal_ended", ended_on="2026-02-18")
        c = complaint(number)
        assert (c.decision_clock, c.decision_due_at) == ("running", expected)
        assert last_message(desk, number, "appraisal_ended")["decision_due"] == expected.astimezone(timezone.utc).isoformat()
        assert actions(desk, number) == ["appraisal_started", "extension_requested"]
        assert [(r.state, r.due_at) for r in clock_rows(number)] == [("open", expected)]
        moves = db.session.execute(select(AuditEvent.action).where(
            AuditEvent.business_key == number, AuditEvent.element_id == "decision_clock",
            AuditEvent.action == "deadline_recomputed")).scalars().all()
        assert len(moves) == 1                  # moved at the start; the end confirmed the same day


def appraisal_past_its_expected_end(app, desk, clock):
    """A complaint whose appraisal (02-16, expected to end 02-18) was not recorded as ended by 02-19."""
    number = desk.register(received_at=RECEIVED.isoformat())
    act(desk, number, "appraisal_started", kind="车辆定损复检", started_on="2026-02-16", expected_end_on="2026-02-18")
    clock.move_to(datetime(2026, 2, 19, 9, 0, tzinfo=SH))
    fire_due_timers(app)
    return number


def test_an_appraisal_past_its_expected_end_is_checked_by_management_and_moves_the_clock_again(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False) as clock:
        number = appraisal_past_its_expected_end(app, desk, clock)
        assert desk.open_tasks(number)["appraisal_overrun"]["role"] == "management"
        assert actions(desk, number) == []             # the end is now recorded through that task
        # Still running, now expected to end 02-22: 7 days -> day 22 = Sat 03-07, a rest day -> Mon 03-09.
        desk.complete(number, "appraisal_overrun", appraisal_has_ended=False,
                      appraisal_new_expected_end_on="2026-02-22", appraisal_overrun_notes="鉴定机构称需补充检测")
        monday = datetime(2026, 3, 9, 23, 59, 59, tzinfo=SH)
        assert complaint(number).decision_due_at == monday
        assert last_message(desk, number, "appraisal_started")["expected_end_on"] == "2026-02-22"
        clock.move_to(datetime(2026, 2, 23, 9, 0, tzinfo=SH))
        fire_due_timers(app)
        # Ended 02-21 after all (6 days): day 21 = Fri 03-06.
        desk.complete(number, "appraisal_overrun", appraisal_has_ended=True, appraisal_ended_on="2026-02-21",
                      appraisal_overrun_notes="报告已于21日出具")
        c = complaint(number)
        assert (c.decision_clock, c.decision_due_at) == ("running", datetime(2026, 3, 6, 23, 59, 59, tzinfo=SH))
        assert last_message(desk, number, "appraisal_ended")["ended_on"] == "2026-02-21"


def test_an_appraisal_that_ends_before_it_starts_is_refused_and_changes_nothing(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        r = act(desk, number, "appraisal_started", expect=422, kind="鉴定", started_on="2026-02-16",
                expected_end_on="2026-02-10")
        assert list(r["error"]["fields"]) == ["expected_end_on"]
        assert complaint(number).decision_clock == "running" and "appraisal_started" not in desk.outbox(number)


def test_an_appraisal_cannot_start_or_end_on_a_day_not_come_nor_be_expected_to_end_in_the_past(app, desk):
    """Dates that would move the regulator's limit without anything having happened: a start or an end after today,
    a new expected end before today (which would at once raise another overrun check)."""
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False) as clock:          # 02-16
        number = desk.register(received_at=RECEIVED.isoformat())
        r = act(desk, number, "appraisal_started", expect=422, kind="鉴定", started_on="2026-02-17",
                expected_end_on="2026-02-20")
        assert r["error"]["fields"] == {"started_on": "x-not-after today"}
        number = appraisal_past_its_expected_end(app, desk, clock)                          # now 02-19
        r = desk.client.post(f"/api/v1/tasks/{desk.task_id(number, 'appraisal_overrun')}/complete",
                             headers=desk.people["management"].headers, json={"data": {
                                 "appraisal_has_ended": False, "appraisal_new_expected_end_on": "2026-02-18",
                                 "appraisal_overrun_notes": "x"}})
        assert r.status_code == 422 and r.json["error"]["fields"] == {
            "appraisal_new_expected_end_on": "x-not-before today"}
        r = desk.client.post(f"/api/v1/tasks/{desk.task_id(number, 'appraisal_overrun')}/complete",
                             headers=desk.people["management"].headers, json={"data": {
                                 "appraisal_has_ended": True, "appraisal_ended_on": "2026-06-01",
                                 "appraisal_overrun_notes": "x"}})
        assert r.status_code == 422 and r.json["error"]["fields"] == {"appraisal_ended_on": "x-not-after today"}
        desk.complete(number, "appraisal_overrun", appraisal_has_ended=False,
                      appraisal_new_expected_end_on="2026-02-22", appraisal_overrun_notes="鉴定机构称需补充检测")
        assert act(desk, number, "appraisal_ended", expect=422, ended_on="2026-02-20")["error"]["fields"] == {
            "ended_on": "x-not-after today"}
        assert complaint(number).decision_clock == "paused"            # nothing was changed


def test_bad_action_data_is_refused_by_field_and_changes_nothing(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        before = desk.messages(number)
        r = act(desk, number, "appraisal_started", expect=422, kind="", started_on="2026-13-40")
        assert set(r["error"]["fields"]) >= {"kind", "started_on", "expected_end_on"}
        r = act(desk, number, "nonsense", expect=404, reason="x")
        r = act(desk, number, "extension_requested", who="training", expect=403, reason="x")
        assert desk.messages(number) == before and complaint(number).decision_due_at == DAY_15


def test_the_complaint_page_offers_the_actions_and_records_one_through_its_form(app, desk, people):
    from tests.test_web import Browser
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        b = Browser(app).login("claims_specialist")
        page = b.get(f"/complaints/{number}").text
        assert 'data-testid="action-extension_requested"' in page and "申请延长处理期限" in page
        assert Browser(app).login("training").get(f"/complaints/{number}").text.count('data-testid="action-') == 0
        url = f"/complaints/{number}/actions/extension_requested"
        form = b.get(url).text
        assert "案情复杂" in form
        r = b.post(url, {"reason": ""})
        assert r.status_code == 422 and 'data-testid="form-errors"' in r.text
        r = b.post(url, {"reason": "需调取医院病历"})
        assert r.status_code == 302
        assert "approve_extension" in desk.open_tasks(number)
        page = b.get(f"/complaints/{number}").text
        assert "经办人员登记" in page and "需调取医院病历" in page        # the timeline shows who asked and why
        r = b.post(url, {"reason": "又一次"}, page=f"/complaints/{number}")   # not possible while one is pending
        assert r.status_code == 302 and desk.open_tasks(number)["approve_extension"]
        other = desk.register(received_at=RECEIVED.isoformat())
        url = f"/complaints/{other}/actions/appraisal_started"
        r = b.post(url, {"kind": "伤残鉴定", "started_on": "2026-02-17", "expected_end_on": "2026-02-20"})
        assert r.status_code == 422 and "该日期晚于今天：请选择今天或更早的日期。" in r.text      # x-not-after today


def test_an_extended_period_ending_in_the_national_day_holiday_ends_on_the_next_working_day(app, desk):
    received = datetime(2026, 9, 1, 10, 0, tzinfo=SH)        # day 30 = Thu 10-01, National Day: off until 10-07
    with time_machine.travel(received + timedelta(days=5), tick=False):
        number = desk.register(received_at=received.isoformat())
        assert complaint(number).decision_due_at == datetime(2026, 9, 16, 23, 59, 59, tzinfo=SH)
        act(desk, number, "extension_requested", reason="需要外部调查")
        desk.complete(number, "approve_extension", extension_approved=True,
                      extension_reason_for_customer="需向第三方机构核实", extension_comments="同意")
        assert complaint(number).decision_due_at == datetime(2026, 10, 8, 23, 59, 59, tzinfo=SH)


@pytest.mark.parametrize("pending", ["approval", "appraisal"])
def test_a_withdrawal_ends_a_pending_approval_or_appraisal_with_everything_else(app, desk, pending):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        if pending == "approval":
            act(desk, number, "extension_requested", reason="需要更多时间")
            assert "approve_extension" in desk.open_tasks(number)
        else:
            act(desk, number, "appraisal_started", kind="伤残等级鉴定", started_on="2026-02-16",
                expected_end_on="2026-02-18")
        r = desk.client.post(f"/api/v1/complaints/{number}/withdrawal", json={"reason": "已协商解决"},
                             headers=desk.people["customer_service"].headers)
        assert r.status_code == 200, r.json
        assert desk.open_tasks(number) == {} and actions(desk, number) == []
        view = desk.complaint(number)
        assert view["complaint"]["status"] == "closed" and view["complaint"]["outcome"] == "withdrawn"
        assert all(d["state"] != "open" for d in view["deadlines"])


def main_status(number):
    from app.models import ProcessInstance
    db.session.expire_all()
    return db.session.get(ProcessInstance, complaint(number).instance_id).status


def test_a_decision_while_management_checks_an_overrun_appraisal_ends_the_branch_and_the_process(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False) as clock:
        number = appraisal_past_its_expected_end(app, desk, clock)
        assert "appraisal_overrun" in desk.open_tasks(number)
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"])
        assert "appraisal_overrun" not in desk.open_tasks(number)       # moot once decided
        assert complaint(number).decision_clock == "met" and actions(desk, number) == []
        desk.walk(number, ["customer_confirmation", "archive", "initial_review_overdue"])   # late at registration
        assert main_status(number) == "completed"                    # no branch is left waiting


def test_after_the_limit_has_passed_nothing_can_move_it_and_the_process_still_ends(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False) as clock:
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "appraisal_started", kind="伤残等级鉴定", started_on="2026-02-16",
            expected_end_on="2026-02-18")
        clock.move_to(datetime(2026, 3, 4, 9, 0, tzinfo=SH))            # day 18 (03-03) has passed unconfirmed
        fire_due_timers(app)
        tasks = desk.open_tasks(number)
        assert "appraisal_overrun" not in tasks and "decision_overdue" in tasks
        assert complaint(number).decision_clock == "missed" and actions(desk, number) == []
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                           "customer_confirmation", "archive", "decision_overdue", "initial_review_overdue"])
        assert main_status(number) == "completed"


def test_days_before_receipt_are_not_left_out_and_impossible_dates_are_refused_by_field(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        # 02-10 .. 02-16: only 02-14 .. 02-16 lie in the period (it starts the day after receipt): 3 days.
        act(desk, number, "appraisal_started", kind="伤残等级鉴定", started_on="2026-02-10",
            expected_end_on="2026-02-16")
        assert complaint(number).decision_due_at == datetime(2026, 3, 3, 23, 59, 59, tzinfo=SH)
        r = act(desk, number, "appraisal_ended", expect=422, ended_on="2026-02-01")
        assert r["error"]["code"] == "rejected_by_procedure" and "before the start" in r["error"]["message"]
        assert complaint(number).decision_clock == "paused"            # nothing was changed


def test_a_withdrawn_complaint_shows_no_paused_clock(app, desk):
    from app.web.ui import decision_clock
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        act(desk, number, "appraisal_started", kind="伤残等级鉴定", started_on="2026-02-16",
            expected_end_on="2026-02-18")
        desk.client.post(f"/api/v1/complaints/{number}/withdrawal", json={},
                         headers=desk.people["customer_service"].headers)
        with app.test_request_context():
            assert decision_clock(complaint(number))["state"] == "none"


def test_at_60_days_an_appraisal_still_moves_the_limit(app, desk):
    with time_machine.travel(RECEIVED + timedelta(days=3), tick=False):
        number = desk.register(received_at=RECEIVED.isoformat())
        for who, task in (("management", "approve_extension"), ("head_office", "approve_further_extension")):
            act(desk, number, "extension_requested", reason="情况复杂")
            desk.complete(number, task, who=who, extension_approved=True,
                          extension_reason_for_customer="情况复杂", extension_comments="同意")
        assert complaint(number).decision_due_at == DAY_60
        act(desk, number, "appraisal_started", kind="司法鉴定", started_on="2026-02-16", expected_end_on="2026-02-18")
        c = complaint(number)                                        # day 63 = Fri 04-17
        assert (c.decision_clock, c.decision_due_at) == ("paused", datetime(2026, 4, 17, 23, 59, 59, tzinfo=SH))
        assert actions(desk, number) == ["appraisal_ended"]

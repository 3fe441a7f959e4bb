"""What the customer asks outside the tasks — withdrawing the complaint (R-WITHDRAW), a review of the
decision (核查, R-REVIEW) — taken by customer service by phone (complaint page, API) exactly as on the
customer's own page; a withdrawal reaches every process of the complaint; a decision the customer
never received starts its review period when customer service tells them; and each round tells the
customer by when the solution comes."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Deadline, HumanTask, ProcessInstance
from app.scheduler import fire_due_timers
from tests.flow import Desk, complaint_row as complaint
from tests.conftest import make_user
from tests.test_web import Browser, text

pytestmark = pytest.mark.clause("C-7.2")
SH = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
TO_CONFIRMATION = ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"]
CONTACT_REACHED = {"customer_reached": True, "contact_method": "phone", "told_customer": "已电话告知处理结果"}


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def instances(number) -> dict:
    """{process_id: status} of every instance of the complaint."""
    db.session.expire_all()
    rows = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalars()
    return {row.process_id: row.status for row in rows}


def open_tasks(number) -> set:
    db.session.expire_all()
    return set(db.session.execute(select(HumanTask.element_id).where(
        HumanTask.business_key == number, HumanTask.state == "open")).scalars())


def api(client, person, number, what, **body):
    return client.post(f"/api/v1/complaints/{number}/{what}", json=body, headers=person.headers)


def undelivered(app, number, template):
    """The follow-up the dispatcher starts for a message of `number` that could not be delivered."""
    msg = next(m for m in _messages(number) if m.template == template)
    payload = {"template": template, "channels": ["sms"], "reason": "sms: unknown number", "message_id": msg.id,
               "sent": dict(msg.payload)}
    return app.extensions["runtime"].start_on_message("message_undelivered", payload, "outbox", business_key=number)


def _messages(number):
    from app.models import OutboxMessage
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number)
                              .order_by(OutboxMessage.id)).scalars().all()


# ---- a withdrawal ends every process of the complaint -----------------------------------------------------
@pytest.mark.clause("C-7.2", "C-3.5.1")
def test_a_withdrawal_by_phone_also_ends_the_call_and_the_review_beside_the_complaint(app, desk, client, people):
    number = desk.register()
    desk.walk(number, TO_CONFIRMATION)
    undelivered(app, number, "result")
    r = api(client, people["customer_service"], number, "review-request", reason="赔付金额计算有误")
    assert r.status_code == 201, r.json
    assert [t["element_id"] for t in r.json["tasks"]] == ["review_decision"]
    assert open_tasks(number) == {"customer_confirmation", "contact_customer", "review_decision"}

    r = api(client, people["customer_service"], number, "withdrawal", reason="已与理赔部门协商解决")
    assert r.status_code == 200, r.json
    assert r.json["complaint"]["outcome"] == "withdrawn" and r.json["complaint"]["status"] == "closed"
    assert open_tasks(number) == set()
    assert instances(number) == {"complaint_handling": "completed", "customer_contact": "completed",
                                 "complaint_review": "completed"}
    received = db.session.execute(select(AuditEvent.actor, AuditEvent.data).where(
        AuditEvent.business_key == number, AuditEvent.action == "message_received")).all()
    assert len(received) == 3 and {actor for actor, _ in received} == {"customer_service"}
    assert [m.template for m in _messages(number)][-1] == "withdrawn"
    assert api(client, people["customer_service"], number, "withdrawal").status_code == 409


def archived_with_a_late_follow_up(app, desk, clock) -> str:
    """A complaint archived (closed) while its investigation's overdue follow-up is still open."""
    number = desk.register(received_at=T0.isoformat())
    desk.complete(number, "initial_review")
    clock.move_to(datetime(2026, 12, 1, 10, 0, tzinfo=SH))
    assert fire_due_timers(app) == 1
    desk.walk(number, ["investigate", "analyse_and_plan", "feedback_to_customer", "customer_confirmation", "archive"])
    assert complaint(number).status == "closed" and open_tasks(number) == {"investigation_overdue"}
    return number


@pytest.mark.clause("C-7.2", "C-3.5.1")
def test_an_archived_complaint_with_a_late_follow_up_cannot_be_withdrawn(app, desk, client, people):
    """Archiving closes the complaint while a deadline follow-up may still run in its diagram (which
    therefore still waits for a withdrawal): the request is refused under the instance's lock."""
    with time_machine.travel(T0, tick=False) as clock:
        number = archived_with_a_late_follow_up(app, desk, clock)
        r = api(client, people["customer_service"], number, "withdrawal")
        assert r.status_code == 409 and r.json["error"]["code"] == "not_withdrawable"
        assert complaint(number).outcome == "resolved" and open_tasks(number) == {"investigation_overdue"}


# ---- a review (核查) requested by phone ----------------------------------------------------------------------
@pytest.mark.clause("C-3.4.2", "C-7.2")
def test_a_review_request_by_phone_is_refused_before_a_decision_twice_and_after_30_days(app, desk, client, people):
    cs = people["customer_service"]
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        assert api(client, cs, number, "review-request", reason="不服").json["error"]["code"] == "review_undecided"
        desk.walk(number, TO_CONFIRMATION)
        r = api(client, cs, number, "review-request", reason="  ")
        assert r.status_code == 422 and r.json["error"]["fields"] == {"reason": "required"}
        for what in ("review-request", "withdrawal"):          # a field neither takes: refused, as elsewhere
            r = api(client, cs, number, what, reason="不服", reson="typo")
            assert r.status_code == 422 and r.json["error"]["fields"] == {"reson": "unknown field"}, what
        assert api(client, cs, number, "review-request", reason="不服").status_code == 201
        r = api(client, cs, number, "review-request", reason="再次申请")
        assert r.status_code == 409 and r.json["error"]["code"] == "review_requested"
        assert instances(number)["complaint_review"] == "running"
        second = desk.register(received_at=T0.isoformat())
        desk.walk(second, TO_CONFIRMATION)
        clock.move_to(T0 + timedelta(days=31))
        r = api(client, cs, second, "review-request", reason="不服")
        assert r.status_code == 409 and r.json["error"]["code"] == "review_ended"
        assert "complaint_review" not in instances(second)


def test_only_customer_service_records_requests_and_the_avoidance_rule_applies(app, desk, client, people):
    people["customer_service_2"] = make_user("customer_service_2", "customer_service")
    number = desk.register(claim_handler="customer_service_2")      # they handled the original claim (回避)
    desk.walk(number, TO_CONFIRMATION)
    assert api(client, people["claims_specialist"], number, "withdrawal").status_code == 403
    assert api(client, people["management"], number, "review-request", reason="x").status_code == 403
    excluded = people["customer_service_2"]
    assert api(client, excluded, number, "withdrawal").status_code == 403
    assert api(client, excluded, number, "review-request", reason="x").status_code == 403
    web = Browser(app).login("customer_service_2")
    assert web.get(f"/complaints/{number}/withdraw").status_code == 403
    assert web.get(f"/complaints/{number}/review-request").status_code == 403
    assert instances(number) == {"complaint_handling": "running"}


def test_a_withdrawn_complaint_has_no_decision_left_to_review(app, desk, client, people):
    number = desk.register()
    desk.walk(number, TO_CONFIRMATION)
    assert complaint(number).review_until is not None
    assert api(client, people["customer_service"], number, "withdrawal").status_code == 200
    assert complaint(number).review_until is None
    r = api(client, people["customer_service"], number, "review-request", reason="不服")
    assert r.status_code == 409 and "complaint_review" not in instances(number)


def test_customer_service_records_a_withdrawal_and_a_review_on_the_complaint_page(app, desk, people):
    number = desk.register()
    desk.walk(number, TO_CONFIRMATION)
    browser = Browser(app).login("customer_service")
    page = browser.get(f"/complaints/{number}")
    assert 'data-testid="record-withdrawal"' in page.text and 'data-testid="record-review-request"' in page.text
    form = browser.get(f"/complaints/{number}/review-request")
    assert form.status_code == 200 and 'data-testid="customer-request-form"' in form.text
    refused = browser.post(f"/complaints/{number}/review-request", {"reason": ""})
    assert refused.status_code == 422 and 'data-testid="form-errors"' in refused.text
    long = "很长" * 1001
    refused = browser.post(f"/complaints/{number}/review-request", {"reason": long})
    assert refused.status_code == 422 and long in refused.text              # the input is kept
    done = browser.post(f"/complaints/{number}/review-request", {"reason": "赔付金额计算有误"})
    assert done.status_code == 302 and open_tasks(number) >= {"review_decision"}
    page = browser.get(f"/complaints/{number}")
    assert 'data-testid="review-requested"' in page.text
    assert browser.post(f"/complaints/{number}/withdraw", {"reason": ""}).status_code == 302
    assert complaint(number).outcome == "withdrawn" and open_tasks(number) == set()
    again = browser.get(f"/complaints/{number}/withdraw")
    assert again.status_code == 302                        # nothing to withdraw any more: back to the page
    assert Browser(app).login("claims_specialist").get(f"/complaints/{number}/withdraw").status_code == 403


# ---- a decision told by phone starts the review period then -------------------------------------------------
@pytest.mark.clause("C-7.2", "C-3.4.1")
def test_a_decision_the_customer_never_received_counts_its_review_days_from_the_call(app, desk, people):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_CONFIRMATION)
        # 30 days as the law counts them: from Wed 11-25, the last day is Fri 12-25, to its end.
        assert complaint(number).review_until == datetime(2026, 12, 25, 23, 59, 59, tzinfo=SH)
        [task] = [t for t in undelivered(app, number, "result").created_tasks if t.element_id == "contact_customer"]
        clock.move_to(T0 + timedelta(days=3))
        desk.client.post(f"/api/v1/tasks/{task.id}/claim", headers=people["customer_service"].headers)
        r = desk.client.post(f"/api/v1/tasks/{task.id}/complete", json={"data": CONTACT_REACHED},
                             headers=people["customer_service"].headers)
        assert r.status_code == 200, r.json
        # Told on Sat 11-28: the 30 days end with Mon 12-28.
        assert complaint(number).review_until == datetime(2026, 12, 28, 23, 59, 59, tzinfo=SH)
        assert complaint(number).outcome is None and complaint(number).status == "open"


def test_a_call_that_did_not_reach_the_customer_or_was_not_a_decision_leaves_the_review_period(app, desk, people):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, TO_CONFIRMATION)
        calls = [undelivered(app, number, "result"), undelivered(app, number, "accepted")]
        clock.move_to(T0 + timedelta(days=3))
        for change, data in zip(calls, ({"customer_reached": False, "contact_method": "phone"}, CONTACT_REACHED)):
            [task] = [t for t in change.created_tasks if t.element_id == "contact_customer"]
            desk.client.post(f"/api/v1/tasks/{task.id}/claim", headers=people["customer_service"].headers)
            r = desk.client.post(f"/api/v1/tasks/{task.id}/complete", json={"data": data},
                                 headers=people["customer_service"].headers)
            assert r.status_code == 200, r.json
        assert complaint(number).review_until == datetime(2026, 12, 25, 23, 59, 59, tzinfo=SH)


# ---- what happens next, and by when ---------------------------------------------------------------------------
@pytest.mark.clause("C-3.2.2", "C-7.2")
def test_acceptance_tells_the_customer_the_date_the_solution_is_due(app, desk):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate"])
    [(template, payload)] = [m for m in desk.messages(number) if m[0] == "accepted"]
    due = db.session.execute(select(Deadline.due_at).where(Deadline.instance_id == complaint(number).instance_id,
                                                           Deadline.element_id == "resolution_deadline")).scalar_one()
    assert datetime.fromisoformat(payload["result_due"]) == due


def test_a_closed_complaint_shows_its_late_follow_up_as_such(app, desk, client, people):
    """The complaint page of an archived complaint says it is closed, and names the follow-up still open
    after closing as that, not as the step the complaint is at."""
    with time_machine.travel(T0, tick=False) as clock:
        number = archived_with_a_late_follow_up(app, desk, clock)
        page = text(Browser(app).login("management").get(f"/complaints/{number}"))
        assert "已结案" in page and "结案后仍待办：" in page and "当前环节" not in page.split("客户与保单")[0]

"""Processes beside a complaint's main one — a call to the customer when a message could not be
delivered (customer_contact), a review (核查) the customer asked for (complaint_review) — belong to the
complaint through its number, their business key: their tasks show in the queues with the complaint's
columns, obey 回避, open the personal data to their assignee and appear in the complaint's current
step; they never close the complaint or change its outcome."""
import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from lxml import etree
from sqlalchemy import select

from app import complaints, queues
from app.config import ROOT
from app.engine import workflow
from app.engine.calendar import default_calendar
from app.engine.registry import NS
from app.engine.runtime import Change
from app.extensions import db
from app.models import Deadline, HumanTask, OutboxMessage, ProcessInstance
from tests.conftest import make_user
from tests.flow import COMPLAINT, Desk, complaint_row as complaint
from tests.sql_capture import plans, sent_by

pytestmark = pytest.mark.clause("C-7.2")

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)      # a Tuesday, 10:00 in Shanghai
UNDELIVERED = {"template": "result", "channels": ["sms", "email"], "reason": "mailbox full", "message_id": 1}
CONTACT_DATA = {"customer_reached": True, "contact_method": "phone", "told_customer": "已电话告知处理结果"}
REVIEW_DATA = {"review_result": "原处理过程与时限合规，维持原决定", "decision_changed": False}


@pytest.fixture
def desk(client, people):
    # A second customer service user who handled the original claim: 回避 keeps them out.
    people["customer_service_2"] = make_user("customer_service_2", "customer_service")
    return Desk(client, people)


def start_beside(app, number, message, payload):
    """Start the process whose start event catches `message` for complaint `number`, as the app does."""
    change = app.extensions["runtime"].start_on_message(message, payload, "customer_service", business_key=number)
    assert change is not None, f"no deployed process starts on {message}"
    return change


def registered(desk, **overrides):
    return desk.register(claim_handler="customer_service_2", **overrides)


def only_task(change, element_id) -> HumanTask:
    [task] = [t for t in change.created_tasks if t.element_id == element_id]
    return task


def queue(client, person, name="available"):
    r = client.get(f"/api/v1/tasks?queue={name}&per_page=200", headers=person.headers)
    assert r.status_code == 200, r.json
    return {t["id"]: t for t in r.json["items"]}, r.json["total"]


def test_a_call_to_the_customer_is_queued_with_its_complaint(app, desk, client, people, monkeypatch):
    number = registered(desk)
    task = only_task(start_beside(app, number, "message_undelivered", UNDELIVERED), "contact_customer")
    assert (task.name, task.role, task.business_key) == ("联系客户", "customer_service", number)
    loads = []
    monkeypatch.setattr(workflow, "load", lambda *a, **k: loads.append(a) or pytest.fail("a list loaded a workflow"))
    items, total = queue(client, people["customer_service"])
    listed = items[task.id]
    assert listed["element_id"] == "contact_customer" and listed["due_at"] is not None
    assert {k: listed["complaint"][k] for k in ("number", "channel", "category")} == \
        {"number": number, "channel": COMPLAINT["channel"], "category": COMPLAINT["category"]}
    assert total == 2                     # the main instance's initial review and the call
    filtered = client.get(f"/api/v1/tasks?queue=available&channel={COMPLAINT['channel']}",
                          headers=people["customer_service"].headers)
    assert filtered.status_code == 200
    assert loads == []


def test_the_claim_handler_stands_aside_from_the_call(app, desk, client, people):
    number = registered(desk)
    task = only_task(start_beside(app, number, "message_undelivered", UNDELIVERED), "contact_customer")
    handler = people["customer_service_2"]
    assert queue(client, handler) == ({}, 0)
    r = client.post(f"/api/v1/tasks/{task.id}/claim", headers=handler.headers)
    assert r.status_code == 403 and r.json["error"]["code"] == "excluded"
    r = client.post(f"/api/v1/tasks/{task.id}/complete", json={"data": CONTACT_DATA}, headers=handler.headers)
    assert r.status_code == 403 and r.json["error"]["code"] == "excluded"
    runtime = app.extensions["runtime"]
    assert "customer_service_2" in runtime.excluded(task.instance_id)
    assert db.session.get(HumanTask, task.id).state == "open"


def test_the_assignee_of_a_task_beside_the_main_one_sees_personal_data(app, desk, client, people):
    number = registered(desk)
    task = only_task(start_beside(app, number, "review_requested", {"reason": "赔付金额不合理", "by": "phone"}),
                     "review_decision")
    manager = people["management"]
    view = lambda: client.get(f"/api/v1/complaints/{number}", headers=manager.headers).json["complaint"]  # noqa: E731
    assert view()["personal_data"] == "masked"
    assert client.post(f"/api/v1/tasks/{task.id}/claim", headers=manager.headers).status_code == 200
    seen = view()
    assert seen["personal_data"] == "full" and seen["phone"] == COMPLAINT["phone"]
    # The rule itself, for the call's assignee, with no role that sees personal data anyway.
    call = only_task(start_beside(app, number, "message_undelivered", UNDELIVERED), "contact_customer")
    clerk = people["customer_service"].user
    assert not complaints.may_see_personal_data(db.session, clerk, complaint(number), pii_roles=())
    client.post(f"/api/v1/tasks/{call.id}/claim", headers=people["customer_service"].headers)
    assert complaints.may_see_personal_data(db.session, clerk, complaint(number), pii_roles=())


def test_a_process_beside_the_main_one_neither_closes_nor_decides_the_complaint(app, desk, client, people):
    number = registered(desk)
    desk.complete(number, "initial_review", decision="reject", rejection_reason="不属于理赔投诉")
    assert (complaint(number).outcome, complaint(number).current_step) == ("not_accepted", "案例归档")
    change = start_beside(app, number, "message_undelivered", UNDELIVERED)
    task = only_task(change, "contact_customer")
    assert complaint(number).current_step == "案例归档、联系客户"
    assert [t.name for t in complaints.tasks_of(db.session, complaint(number), open_only=True)] == ["案例归档", "联系客户"]
    r = client.post(f"/api/v1/tasks/{task.id}/complete", json={"data": CONTACT_DATA},
                    headers=people["customer_service"].headers)
    assert r.status_code == 200 and r.json["instance_status"] == "completed", r.json
    found = complaint(number)
    assert (found.status, found.outcome, found.closed_at, found.current_step) == \
        ("open", "not_accepted", None, "案例归档")
    assert db.session.get(ProcessInstance, change.instance.id).status == "completed"
    # The main instance still closes the complaint.
    desk.complete(number, "archive")
    assert complaint(number).status == "closed"
    assert len(complaints.tasks_of(db.session, complaint(number))) == 3


def test_only_the_main_instance_writes_the_record_fields(app, desk):
    number = registered(desk)
    found = complaint(number)
    side = start_beside(app, number, "message_undelivered", UNDELIVERED).instance
    main = db.session.get(ProcessInstance, found.instance_id)
    sync = complaints.make_record_sync({"outcome": "outcome", "closed_at": "closed_at"})
    data = {"outcome": "withdrawn", "closed_at": T0.isoformat()}
    sync(db.session, side, Change(instance=side, changed_data=data))
    assert (found.outcome, found.closed_at, found.status) == (None, None, "open")
    sync(db.session, main, Change(instance=main, changed_data=data))
    assert (found.outcome, found.closed_at, found.status) == ("withdrawn", T0, "closed")
    db.session.rollback()


def test_a_review_is_decided_by_management_within_30_days_and_told_to_the_customer(app, desk, client, people):
    with time_machine.travel(T0, tick=False):
        number = registered(desk)
        change = start_beside(app, number, "review_requested", {"reason": "赔付金额不合理", "by": "phone"})
    task = only_task(change, "review_decision")
    # 30 days as the law counts them from Tue 12-01: the last day is Thu 12-31, to its end (Shanghai).
    due = datetime(2026, 12, 31, 15, 59, 59, tzinfo=timezone.utc)
    assert (task.name, task.role, task.due_at) == ("核查决定", "management", due)
    [deadline] = db.session.execute(select(Deadline).where(Deadline.instance_id == change.instance.id)).scalars()
    assert (deadline.element_id, deadline.due_at, deadline.state) == ("review_deadline", due, "open")
    assert change.instance.next_timer_at == due
    received = messages(number, "review_received")
    assert [(m.instance_id, m.payload) for m in received] == [(change.instance.id, {"review_due": due.isoformat()})]
    assert complaint(number).current_step == "初步审核、核查决定"

    manager = people["management"]
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        r = client.post(f"/api/v1/tasks/{task.id}/complete", json={"data": REVIEW_DATA}, headers=manager.headers)
    assert r.status_code == 200 and r.json["instance_status"] == "completed", r.json
    [result] = messages(number, "review_result")
    assert result.payload == {"result": REVIEW_DATA["review_result"], "changed": False}
    db.session.expire_all()
    assert db.session.get(Deadline, deadline.id).state == "met"
    found = complaint(number)
    assert (found.status, found.outcome, found.current_step) == ("open", None, "初步审核")


def test_the_call_has_a_deadline_of_one_working_day(app, desk):
    with time_machine.travel(T0, tick=False):
        number = registered(desk)
        task = only_task(start_beside(app, number, "message_undelivered", UNDELIVERED), "contact_customer")
    assert task.due_at == default_calendar().add_working_days(T0, 1).at
    assert not messages(number, "review_received")


def messages(number, template) -> list[OutboxMessage]:
    return db.session.execute(select(OutboxMessage).where(
        OutboxMessage.business_key == number, OutboxMessage.template == template)
        .order_by(OutboxMessage.id)).scalars().all()


# ---- the diagrams ----------------------------------------------------------------------------------
@pytest.mark.parametrize("file", ["customer_contact.bpmn", "complaint_review.bpmn"])
def test_every_step_cites_its_clauses_and_every_user_task_has_a_deadline(file):
    tree = etree.parse(str(ROOT / "processes" / file))
    steps = tree.xpath("//bpmn:startEvent|//bpmn:endEvent|//bpmn:userTask|//bpmn:scriptTask|//bpmn:boundaryEvent",
                       namespaces=NS)
    for node in steps:
        doc = node.find("bpmn:documentation", NS)
        assert doc is not None and re.match(r"\s*\[C-", doc.text), node.get("id")
        assert re.search(r"[\u4e00-\u9fff]", node.get("name") or ""), node.get("id")
    for task in tree.xpath("//bpmn:userTask", namespaces=NS):
        [timer] = tree.xpath(f'//bpmn:boundaryEvent[@attachedToRef="{task.get("id")}"][bpmn:timerEventDefinition]',
                             namespaces=NS)
        assert timer.get("cancelActivity") == "false", timer.get("id")
    [start] = tree.xpath("//bpmn:startEvent", namespaces=NS)
    assert start.find("bpmn:messageEventDefinition", NS) is not None      # started only by its message


# ---- the queues stay index reads ------------------------------------------------------------------
def test_the_queues_read_the_complaint_and_the_avoided_instances_by_index(app, desk, people):
    number = registered(desk)
    start_beside(app, number, "message_undelivered", UNDELIVERED)
    user = people["customer_service"].user
    for name in ("available", "mine"):
        found = queues.queue_query(user, name, channel="hotline")
        statements = sent_by(lambda: queues.page(db.session, found, 1, 50))
        statements += sent_by(lambda: queues.count(db.session, queues.queue_query(user, name)))
        for plan in plans(statements):
            assert "SCAN complaint" not in plan and "Seq Scan on complaint" not in plan, plan
            assert "SCAN process_instance" not in plan and "Seq Scan on process_instance" not in plan, plan
            assert "SCAN human_task" not in plan and "Seq Scan on human_task" not in plan, plan

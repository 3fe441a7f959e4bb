"""The engine verbs behind the customer's own page: the customer completes a task marked `x-customer`
as customer service would; a message reaches a waiting instance or starts a process."""
import json

import pytest
from sqlalchemy import func, select

from app import known_lanes
from app.engine.registry import deploy, load_processes
from app.errors import Conflict, Forbidden, InvalidData
from app.extensions import db
from app.models import AuditEvent, Complaint, HumanTask, OutboxMessage, ProcessInstance
from tests.flow import Desk

TO_CONFIRMATION = ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"]


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


@pytest.fixture
def runtime(app):
    return app.extensions["runtime"]


def at_confirmation(desk):
    number = desk.register()
    desk.walk(number, TO_CONFIRMATION)
    return number, desk.task_id(number, "customer_confirmation")


def audit_count():
    return db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def completions(number, element_id):
    return db.session.execute(select(AuditEvent).where(
        AuditEvent.business_key == number, AuditEvent.action == "task_completed",
        AuditEvent.element_id == element_id).order_by(AuditEvent.id)).scalars().all()


@pytest.mark.clause("C-3.4.2", "C-3.4.3", "C-5.1")
def test_the_customer_confirms_the_result_as_customer_service_would(desk, runtime):
    number, task_id = at_confirmation(desk)
    change = runtime.complete_for_customer(task_id, {"satisfied": True, "customer_feedback": "处理及时，满意"})
    row = db.session.get(HumanTask, task_id)
    assert row.state == "completed" and row.completed_by_customer and row.completed_by_id is None
    [audit] = completions(number, "customer_confirmation")
    assert audit.actor == "customer" and audit.data["form_data"]["satisfied"] is True
    assert [t.element_id for t in change.created_tasks] == ["archive"]
    survey = [m for m in change.messages if m.template == "satisfaction_survey"]
    assert [m.payload for m in survey] == [{"survey": "satisfaction_survey"}]
    c = desk.complaint(number)["complaint"]
    assert c["satisfied"] is True and c["outcome"] == "resolved"
    tasks = {t["element_id"]: t for t in desk.complaint(number)["tasks"]}
    assert tasks["customer_confirmation"]["state"] == "completed"


@pytest.mark.clause("C-3.4.2", "C-3.4.3", "C-4.4")
def test_a_dissatisfied_customer_gives_reasons_and_the_case_is_re_evaluated(desk, runtime):
    number, task_id = at_confirmation(desk)
    before = (audit_count(), db.session.get(HumanTask, task_id).row_version)
    with pytest.raises(InvalidData) as refused:      # dissatisfied without a reason: the form's own rule
        runtime.complete_for_customer(task_id, {"satisfied": False, "customer_feedback": "金额太低"})
    assert set(refused.value.fields) == {"dissatisfaction_reasons"}
    row = db.session.get(HumanTask, task_id)
    assert (audit_count(), row.row_version, row.state, row.completed_by_customer) == (*before, "open", False)
    with pytest.raises(InvalidData) as unknown:
        runtime.complete_for_customer(task_id, {"satisfied": True, "customer_feedback": "好", "compensation_amount": 1})
    assert unknown.value.fields == {"compensation_amount": "unknown field"}

    runtime.complete_for_customer(task_id, {"satisfied": False, "dissatisfaction_reasons": "赔付金额低于合同约定",
                                            "customer_feedback": "希望重新核算"})
    assert list(desk.open_tasks(number)) == ["re_evaluation"]
    assert desk.complaint(number)["complaint"]["satisfied"] is False
    [audit] = completions(number, "customer_confirmation")
    assert audit.actor == "customer" and audit.data["form_data"]["dissatisfaction_reasons"] == "赔付金额低于合同约定"


def test_once_the_customer_answered_customer_service_cannot_answer_again(desk, runtime, client, people):
    number, task_id = at_confirmation(desk)
    # Claimed by customer service, then answered by the customer on their page: the customer's answer stands.
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["customer_service"].headers).status_code == 200
    runtime.complete_for_customer(task_id, {"satisfied": True, "customer_feedback": "满意"})
    r = client.post(f"/api/v1/tasks/{task_id}/complete", headers=people["customer_service"].headers,
                    json={"data": {"satisfied": False, "dissatisfaction_reasons": "x", "customer_feedback": "x"}})
    assert r.status_code == 409 and r.json["error"]["code"] == "task_completed"
    assert "by the customer" in r.json["error"]["message"]
    with pytest.raises(Conflict):
        runtime.complete_for_customer(task_id, {"satisfied": True, "customer_feedback": "再次提交"})
    assert len(completions(number, "customer_confirmation")) == 1
    assert desk.complaint(number)["complaint"]["satisfied"] is True


def test_customer_service_still_records_an_answer_given_by_phone(desk):
    number, _ = at_confirmation(desk)
    desk.complete(number, "customer_confirmation")
    [audit] = completions(number, "customer_confirmation")
    assert audit.actor == "customer_service"
    assert list(desk.open_tasks(number)) == ["archive"]


def test_the_customer_cannot_complete_a_task_without_x_customer(desk, runtime):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = audit_count()
    with pytest.raises(Forbidden) as refused:
        runtime.complete_for_customer(task_id, {"decision": "accept", "risk_level": "low", "review_notes": "x"})
    assert refused.value.code == "not_for_customer"
    assert audit_count() == before and db.session.get(HumanTask, task_id).state == "open"


def test_only_the_confirmation_form_is_marked_for_the_customer(app):
    forms = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in app.config["FORMS_DIR"].glob("*.json")}
    marked = {name for name, schema in forms.items() if "x-customer" in schema}
    assert "customer_confirmation" in marked
    assert {"initial_review", "investigate", "archive", "management_decision"}.isdisjoint(marked)
    texts = forms["customer_confirmation"]["x-customer"]
    assert {"title", "x-title-en", "description", "x-description-en"} <= set(texts)


def test_a_message_nobody_waits_for_is_refused_and_changes_nothing(desk, runtime):
    number = desk.register()
    inst = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()
    before = (inst.row_version, audit_count())
    with pytest.raises(Conflict) as refused:
        runtime.send_message(inst.id, "review_requested", {"reason": "x"}, "customer")
    assert refused.value.code == "not_waiting" and "review_requested" in str(refused.value)
    inst = db.session.get(ProcessInstance, inst.id)
    assert (inst.row_version, audit_count()) == before and "complaint_withdrawn" in inst.awaits.split(",")


# ---- processes started by a message ------------------------------------------------------------------
PING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="ping_definitions"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="ping_message" name="{message}" />
  <bpmn:process id="ping" name="ping" isExecutable="true">
    <bpmn:laneSet id="ping_lanes">
      <bpmn:lane id="ping_lane" name="客服人员"><bpmn:flowNodeRef>ping_task</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="pinged">
      <bpmn:outgoing>ping_1</bpmn:outgoing>
      <bpmn:messageEventDefinition id="pinged_message" messageRef="ping_message">
        <bpmn:extensionElements><spiffworkflow:messageVariable>ping</spiffworkflow:messageVariable></bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:startEvent>
    <bpmn:userTask id="ping_task" name="回应"><bpmn:incoming>ping_1</bpmn:incoming><bpmn:outgoing>ping_2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="ping_end"><bpmn:incoming>ping_2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="ping_1" sourceRef="pinged" targetRef="ping_task" />
    <bpmn:sequenceFlow id="ping_2" sourceRef="ping_task" targetRef="ping_end" />
  </bpmn:process>
</bpmn:definitions>
"""


def deploy_ping(app, tmp_path, message):
    (tmp_path / "processes").mkdir(exist_ok=True)
    (tmp_path / "forms").mkdir(exist_ok=True)
    (tmp_path / "processes" / "ping.bpmn").write_text(PING.replace("{message}", message), encoding="utf-8")
    (tmp_path / "forms" / "ping_task.json").write_text(json.dumps({"type": "object"}), encoding="utf-8")
    bundles, problems = load_processes(tmp_path / "processes", tmp_path / "forms", known_lanes(app))
    assert problems == []
    return deploy(db.session, bundles, "test")


def test_a_message_starts_the_latest_process_that_starts_on_it(app, runtime, tmp_path):
    assert deploy_ping(app, tmp_path, "ping_sent") == [("ping", 1, True)]
    payload = {"template": "result", "message_id": 7}
    change = runtime.start_on_message("ping_sent", payload, "outbox", business_key="TS-PING")
    inst = change.instance
    assert (inst.process_id, inst.business_key, inst.status) == ("ping", "TS-PING", "running")
    assert change.changed_data["ping"] == payload                   # in the start event's messageVariable
    assert [t.element_id for t in change.created_tasks] == ["ping_task"]
    started = db.session.execute(select(AuditEvent).where(AuditEvent.instance_id == inst.id,
                                                          AuditEvent.action == "instance_started")).scalar_one()
    assert started.actor == "outbox" and started.data == {"process_id": "ping", "version": 1, "message": "ping_sent"}
    assert runtime.start_on_message("nobody_listens", payload, "outbox") is None
    # A newer version that no longer starts on the message replaces the old one.
    assert deploy_ping(app, tmp_path, "ping_renamed") == [("ping", 2, True)]
    assert runtime.start_on_message("ping_sent", payload, "outbox") is None
    assert runtime.start_on_message("ping_renamed", payload, "outbox").instance.version_id != inst.version_id


def test_an_undelivered_message_starts_a_process_beside_the_complaint(desk, runtime):
    number = desk.register()
    undelivered = {"template": "acknowledgement", "channels": ["sms"], "reason": "gateway error", "message_id": 1}
    change = runtime.start_on_message("message_undelivered", undelivered, "outbox", business_key=number)
    assert change is not None and change.instance.process_id == "customer_contact"
    complaint = db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
    assert complaint.status == "open" and complaint.instance_id != change.instance.id
    assert db.session.execute(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.business_key == number, OutboxMessage.template == "acknowledgement")).scalar_one() == 1

"""Moving running complaints onto a changed diagram: safe changes migrate with their deadlines,
unsafe ones are refused with the reason, and nothing is lost either way."""
import json
import re
import shutil

import pytest
import time_machine
from datetime import datetime, timezone
from sqlalchemy import select

from app.config import ROOT
from app.engine.registry import deploy, load_processes
from app.extensions import db
from app.models import AuditEvent, Deadline, InstanceSnapshot, ProcessInstance
from tests.flow import LANES, HAPPY_PATH, Desk

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def deploy_changed(tmp_path, change):
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    shutil.copytree(ROOT / "forms", tmp_path / "forms")
    path = tmp_path / "processes" / "complaint_handling.bpmn"
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    bundles, problems = load_processes(tmp_path / "processes", tmp_path / "forms", LANES)
    assert problems == []
    # The processes beside the main one (unchanged) keep their versions.
    [(number, new)] = [(n, new) for pid, n, new in deploy(db.session, bundles, "owner") if pid == "complaint_handling"]
    assert new
    return number


def safe_change(xml):
    # Rename a step and give investigation 4 working days instead of 3.
    return xml.replace('name="调查取证"', 'name="调查取证与核实"') \
              .replace(">working_days_after(round_started_at, 3)<", ">working_days_after(round_started_at, 4)<")


def remove_re_evaluation(xml):
    """Dissatisfied customers go straight into a new round: the re-evaluation step is gone."""
    xml = re.sub(r'\s*<bpmn:userTask id="re_evaluation".*?</bpmn:userTask>', "", xml, flags=re.S)
    xml = re.sub(r'\s*<bpmn:flowNodeRef>re_evaluation</bpmn:flowNodeRef>', "", xml)
    xml = re.sub(r'\s*<bpmn:sequenceFlow id="flow_re_evaluation_to_next_round"[^>]*/>', "", xml)
    xml = re.sub(r'\s*<bpmndi:BPMNShape id="re_evaluation_di".*?</bpmndi:BPMNShape>', "", xml, flags=re.S)
    xml = re.sub(r'\s*<bpmndi:BPMNEdge id="flow_re_evaluation_to_next_round_di".*?</bpmndi:BPMNEdge>', "", xml,
                 flags=re.S)
    xml = xml.replace('targetRef="re_evaluation"', 'targetRef="round_merge"')
    return xml.replace("<bpmn:incoming>flow_re_evaluation_to_next_round</bpmn:incoming>",
                       "<bpmn:incoming>flow_satisfied_no</bpmn:incoming>")


def instance(number):
    return db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def test_safe_change_migrates_with_deadlines_and_assignments_kept(app, desk, client, people, tmp_path):
    cli = app.test_cli_runner()
    with time_machine.travel(T0, tick=False):
        at_investigate = desk.register(received_at=T0.isoformat())
        desk.complete(at_investigate, "initial_review")
        task_id = desk.task_id(at_investigate, "investigate")
        client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["claims_specialist"].headers)
        in_resolution = desk.register(received_at=T0.isoformat())
        desk.walk(in_resolution, ["initial_review", "investigate"])
        done = desk.register(received_at=T0.isoformat())
        desk.walk(done, HAPPY_PATH)
        due_before = {d.timer_task_id: d.due_at for d in db.session.execute(select(Deadline)).scalars()}
        old_json = instance(at_investigate).workflow_json

        assert deploy_changed(tmp_path, safe_change) == 2
        diff = cli.invoke(args=["processes", "diff", "complaint_handling"])
        assert "version 1 -> 2" in diff.output
        assert "'investigate': ['bpmn_name']" in diff.output and "investigation_deadline" in diff.output

        dry = cli.invoke(args=["processes", "migrate", "complaint_handling", "--dry-run"])
        assert f"{at_investigate}: migratable to version 2" in dry.output
        assert f"{in_resolution}: migratable" in dry.output and done not in dry.output
        assert instance(at_investigate).version.version == 1          # a dry run changes nothing
        assert db.session.execute(select(InstanceSnapshot)).first() is None

        result = cli.invoke(args=["processes", "migrate", "complaint_handling", "--by", "owner"])
        assert "2 migrated, 0 not migratable" in result.output
        db.session.expire_all()
        assert instance(at_investigate).version.version == 2
        task = desk.open_tasks(at_investigate)["investigate"]
        assert task["id"] == task_id and task["name"] == "调查取证与核实" and task["assignee"] == "claims_specialist"
        # Running deadlines keep their original due times (the new 4-day rule applies from the next round).
        due_after = {d.timer_task_id: d.due_at for d in db.session.execute(select(Deadline)).scalars()}
        assert due_after == due_before
        snapshot = db.session.execute(select(InstanceSnapshot).where(
            InstanceSnapshot.instance_id == instance(at_investigate).id)).scalar_one()
        assert snapshot.workflow_json == old_json and snapshot.created_by == "owner"
        migrated = db.session.execute(select(AuditEvent).where(AuditEvent.action == "instance_migrated",
                                                               AuditEvent.business_key == at_investigate)).scalar_one()
        assert migrated.data == {"process_id": "complaint_handling", "from_version": 1, "to_version": 2}

        # The pre-migration state can be inspected.
        headers = people["compliance"].headers
        listed = client.get(f"/api/v1/complaints/{at_investigate}/snapshots", headers=headers).json["snapshots"]
        assert [(s["version"], s["created_by"]) for s in listed] == [(1, "owner")]
        snap = client.get(f"/api/v1/complaints/{at_investigate}/snapshots/{listed[0]['id']}", headers=headers).json
        assert snap["workflow"] == json.loads(old_json)
        assert client.get(f"/api/v1/complaints/{done}/snapshots/{listed[0]['id']}", headers=headers).status_code == 404

        desk.walk(at_investigate, HAPPY_PATH[1:])
        desk.walk(in_resolution, HAPPY_PATH[2:])
        assert desk.complaint(at_investigate)["complaint"]["status"] == "closed"
        assert desk.complaint(in_resolution)["complaint"]["status"] == "closed"


def test_unsafe_change_is_refused_with_the_reason_and_loses_nothing(app, desk, tmp_path):
    cli = app.test_cli_runner()
    with time_machine.travel(T0, tick=False):
        at_re_evaluation = desk.register(received_at=T0.isoformat())
        desk.walk(at_re_evaluation, HAPPY_PATH[:4] + [("customer_confirmation", {
            "satisfied": False, "dissatisfaction_reasons": "不满意"})])
        was_there = desk.register(received_at=T0.isoformat())
        desk.walk(was_there, HAPPY_PATH[:4] + [("customer_confirmation", {
            "satisfied": False, "dissatisfaction_reasons": "不满意"}), ("re_evaluation", {"needs_investigation": True})])
        fresh = desk.register(received_at=T0.isoformat())
        before = {n: instance(n).workflow_json for n in (at_re_evaluation, was_there)}

        assert deploy_changed(tmp_path, remove_re_evaluation) == 2
        result = cli.invoke(args=["processes", "migrate", "complaint_handling"])
        assert f"{at_re_evaluation}: not migratable: its current step 重新评估 (re_evaluation) was removed" \
            in result.output
        assert f"{was_there}: not migratable: its completed step 重新评估 (re_evaluation) was removed" in result.output
        assert f"{fresh}: migrated to version 2" in result.output
        db.session.expire_all()
        for number, json_before in before.items():
            assert instance(number).version.version == 1 and instance(number).workflow_json == json_before
        # The refused complaint carries on, on its own version.
        desk.complete(at_re_evaluation, "re_evaluation")
        assert "analyse_and_plan" in desk.open_tasks(at_re_evaluation)

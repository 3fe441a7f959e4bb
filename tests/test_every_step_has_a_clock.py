"""No step without a clock (issue 9, item 3): every user task of every deployed process has a timer —
a timer boundary event on the task, or on a call activity that calls its process — or says in its
documentation why it has none (the marker 无时限：<reason>). Walked on the deployed specs, as they run."""
import re
import pytest
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask

from app.engine import workflow

NO_CLOCK = re.compile(r"无时限：\s*\S")      # a documented reason, e.g. "无时限：客户自愿填写"


def process_specs(bundle) -> dict:
    """{process id: spec} of a deployed version: its top process and every process it calls."""
    spec, subs = workflow.specs(bundle.content_hash, bundle.spec_json, bundle.subprocess_specs_json)
    return {spec.name: spec, **subs}


def timed_tasks(spec) -> set:
    """The names of the task specs of `spec` that carry a timer boundary event."""
    out = set()
    for split in (ts for ts in spec.task_specs.values() if isinstance(ts, BoundaryEventSplit)):
        events = [o for o in split.outputs if isinstance(o, BoundaryEvent)]
        hosts = [o for o in split.outputs if not isinstance(o, BoundaryEvent)]
        if any(isinstance(e.event_definition, TimerEventDefinition) for e in events):
            out.update(h.name for h in hosts)
    return out


def untimed_user_tasks(specs: dict) -> list:
    """(process, task id, why) of the user tasks with neither a timer nor a documented reason."""
    timed = {name: timed_tasks(spec) for name, spec in specs.items()}
    # A called process is covered when a call activity calling it carries a timer.
    covered = {ts.spec for name, spec in specs.items() for ts in spec.task_specs.values()
               if isinstance(ts, SubWorkflowTask) and ts.name in timed[name]}
    missing = []
    for name, spec in specs.items():
        for ts in spec.task_specs.values():
            if not isinstance(ts, UserTask) or ts.name in timed[name] or name in covered:
                continue
            if NO_CLOCK.search(ts.documentation or ""):
                continue
            missing.append((name, ts.bpmn_id, "no timer boundary event and no 无时限： reason"))
    return missing


def test_every_user_task_of_every_deployed_process_has_a_clock(bundles):
    missing = [m for b in bundles for m in untimed_user_tasks(process_specs(b))]
    assert missing == []


@pytest.mark.parametrize("process", ["complaint_case", "complaint_review", "customer_contact"])
def test_the_processes_of_this_change_are_walked_and_pass(bundles, process):
    specs = {k: v for b in bundles for k, v in process_specs(b).items()}
    assert process in specs
    assert [m for m in untimed_user_tasks(specs) if m[0] == process] == []


WALK_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="walk" targetNamespace="x">
  <bpmn:process id="main" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="timed"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="timed_clock" cancelActivity="false" attachedToRef="timed">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT1H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:userTask id="bare"><bpmn:documentation>[C-1] no clock</bpmn:documentation>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="bare_message" attachedToRef="bare">
      <bpmn:messageEventDefinition messageRef="m" /></bpmn:boundaryEvent>
    <bpmn:userTask id="excused"><bpmn:documentation>[C-5.1] 无时限：客户自愿填写</bpmn:documentation>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:callActivity id="call_sub" calledElement="sub"><bpmn:incoming>f4</bpmn:incoming>
      <bpmn:outgoing>f5</bpmn:outgoing></bpmn:callActivity>
    <bpmn:boundaryEvent id="call_clock" cancelActivity="false" attachedToRef="call_sub">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT1H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:callActivity id="call_other" calledElement="other"><bpmn:incoming>f5</bpmn:incoming>
      <bpmn:outgoing>f6</bpmn:outgoing></bpmn:callActivity>
    <bpmn:endEvent id="e"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="timed" />
    <bpmn:sequenceFlow id="f2" sourceRef="timed" targetRef="bare" />
    <bpmn:sequenceFlow id="f3" sourceRef="bare" targetRef="excused" />
    <bpmn:sequenceFlow id="f4" sourceRef="excused" targetRef="call_sub" />
    <bpmn:sequenceFlow id="f5" sourceRef="call_sub" targetRef="call_other" />
    <bpmn:sequenceFlow id="f6" sourceRef="call_other" targetRef="e" />
  </bpmn:process>
  <bpmn:message id="m" name="m" />
  <bpmn:process id="sub" isExecutable="true">
    <bpmn:startEvent id="s2"><bpmn:outgoing>g1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="inside"><bpmn:incoming>g1</bpmn:incoming><bpmn:outgoing>g2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="e2"><bpmn:incoming>g2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="inside" />
    <bpmn:sequenceFlow id="g2" sourceRef="inside" targetRef="e2" />
  </bpmn:process>
  <bpmn:process id="other" isExecutable="true">
    <bpmn:startEvent id="s3"><bpmn:outgoing>h1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="lonely"><bpmn:incoming>h1</bpmn:incoming><bpmn:outgoing>h2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="e3"><bpmn:incoming>h2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="h1" sourceRef="s3" targetRef="lonely" />
    <bpmn:sequenceFlow id="h2" sourceRef="lonely" targetRef="e3" />
  </bpmn:process>
</bpmn:definitions>"""


def test_the_walk_finds_a_task_without_a_clock_and_accepts_a_reason_or_a_covering_call():
    parser = workflow.new_parser()
    parser.add_bpmn_str(WALK_BPMN.encode("utf-8"), filename="walk.bpmn")
    specs = {"main": parser.get_spec("main"), **parser.get_subprocess_specs("main")}
    # A message boundary is no clock; a reason excuses; the call activity's timer covers "sub".
    assert untimed_user_tasks(specs) == [("main", "bare", "no timer boundary event and no 无时限： reason"),
                                         ("other", "lonely", "no timer boundary event and no 无时限： reason")]

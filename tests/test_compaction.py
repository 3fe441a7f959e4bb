"""Compaction (workflow.compact): a stored workflow keeps only what later changes read, so a complaint's
instance does not grow with dissatisfied rounds. A compacted and a whole copy of the same complaint are
walked side by side and must agree at every step; at 30 rounds the instance stays small, and migration,
deadline recompute and the complaint's path still work on it."""
import contextvars
import json
import re
from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine
from flask import current_app
from sqlalchemy import select

from app.config import ROOT
from app.engine import workflow
from app.engine.calendar import WorkCalendar
from app.engine.runtime import Runtime, changed_data
from app.engine.scripting import make_script_engine
from app.extensions import db
from app.models import Complaint, ProcessInstance
from app.scheduler import fire_due_timers
from app.web.complaints.marks import complaint_diagram
from tests.flow import FORM_DATA, HAPPY_PATH, Desk
from tests.test_migration import deploy_changed, remove_re_evaluation, safe_change

SH = timezone(timedelta(hours=8))
UNHAPPY = {"satisfied": False, "dissatisfaction_reasons": "赔付金额太低"}
ROUND = [("customer_confirmation", UNHAPPY), ("re_evaluation", {}), ("analyse_and_plan", {}),
         ("feedback_to_customer", {})]
MAX_SIZE = 32 * 1024


# ---- variants of the diagram -------------------------------------------------------------------------
def without_management_decision(xml):
    """The solution phase without management's decision: the flow into it goes where the flow out went."""
    out_id, target = re.search(r'<bpmn:sequenceFlow id="([^"]+)"[^>]*? sourceRef="management_decision" '
                               r'targetRef="([^"]+)"', xml).groups()
    in_id = re.search(r'<bpmn:sequenceFlow id="([^"]+)"[^>]*? targetRef="management_decision"', xml).group(1)
    xml = re.sub(r'\s*<bpmn:userTask id="management_decision".*?</bpmn:userTask>', "", xml, flags=re.S)
    xml = re.sub(r'\s*<bpmn:flowNodeRef>management_decision</bpmn:flowNodeRef>', "", xml)
    xml = re.sub(rf'\s*<bpmn:sequenceFlow id="{out_id}"[^>]*/>', "", xml)
    xml = re.sub(rf'\s*<bpmndi:BPMN(Shape|Edge) id="(management_decision|{out_id})_di".*?</bpmndi:BPMN(Shape|Edge)>',
                 "", xml, flags=re.S)
    xml = xml.replace('targetRef="management_decision"', f'targetRef="{target}"')
    return xml.replace(f"<bpmn:incoming>{out_id}</bpmn:incoming>", f"<bpmn:incoming>{in_id}</bpmn:incoming>")


def variant(change) -> tuple:
    """(key, spec json, subprocess specs json) of the complaint procedure with `change` applied."""
    parser = workflow.new_parser()
    xml = (ROOT / "processes" / "complaint_handling.bpmn").read_text(encoding="utf-8")
    parser.add_bpmn_str(change(xml).encode("utf-8"), "complaint_handling.bpmn")
    parser.add_dmn_files([str(ROOT / "processes" / "management_decision.dmn")])
    spec_json, subs_json = workflow.serializer.spec_to_json(parser.get_spec("complaint_handling"),
                                                            parser.get_subprocess_specs("complaint_handling"))
    return f"compaction-test/{change.__name__}", spec_json, subs_json


# ---- one complaint twice: whole and compacted, without a database ------------------------------------
@pytest.fixture(scope="module")
def version(bundles):
    bundle = next(b for b in bundles if b.process_id == "complaint_handling")
    return bundle.content_hash, bundle.spec_json, bundle.subprocess_specs_json


class Twins:
    """One complaint kept twice from the same start: `whole` stored as it is, `lean` compacted after
    every change. A change is what the runtime does: load, act, fire due timers, read what the runtime
    reads (newly completed tasks, the outcomes of the tasks and timers it knew as open), compact, dump.
    Both must read the same at every step; new tasks get new ids, so they are compared by element."""

    def __init__(self, version, received_at):
        self.version = version
        wf = workflow.start(*version, {"channel": "hotline", "category": "理赔时效", "policy_number": "P-1",
                                       "claim_number": "C-1", "complaint_number": "TS-1",
                                       "received_at": received_at.isoformat()}, make_script_engine())
        self.known = dict.fromkeys(("whole", "lean"), self._open(wf))
        self.json = {"whole": workflow.dump(wf), "lean": workflow.dump(workflow.compact(wf))}

    @staticmethod
    def _open(wf):
        """What the runtime's rows hold after a change: open tasks, and waiting timers with their hosts."""
        return ({t.id: t.element_id for t in workflow.ready_human_tasks(wf)},
                {t.id: (t.element_id, t.host_id) for t in workflow.waiting_timers(wf)})

    def step(self, act, keep=lambda result: True) -> dict:
        """Run `act` on both; its result says whether the change is kept (a refused migration is not)."""
        facts = {}
        for name in ("whole", "lean"):
            wf = workflow.load(self.json[name], *self.version, make_script_engine())
            before = workflow.completed_ids(wf)
            result = act(wf)
            if keep(result):
                workflow.fire_due_timers(wf)
            facts[name] = {"result": result, **self._read(wf, workflow.newly_completed(wf, before), name)}
            if keep(result):
                self.known[name] = self._open(wf)
                self.json[name] = workflow.dump(workflow.compact(wf) if name == "lean" else wf)
        assert facts["lean"] == facts["whole"]
        return facts["lean"]

    def _read(self, wf, done, name) -> dict:
        tasks, timers = self.known[name]
        ready = {t.id for t in workflow.ready_human_tasks(wf)}
        waiting = {t.id for t in workflow.waiting_timers(wf)}
        return {
            "ready": sorted(_ready_facts(wf, t) for t in workflow.ready_human_tasks(wf)),
            "timers": sorted((t.element_id, t.host_element_id, t.due_at) for t in workflow.waiting_timers(wf)),
            "awaits": workflow.awaited_messages(wf),
            "visits": [v[:2] for v in workflow.visited_elements(done)],
            "changed": _text(changed_data(done)),
            "fired": sorted(t.element_id for t in workflow.fired_timers(done)),
            "tasks ended": sorted((e, workflow.task_outcome(wf, i)) for i, e in tasks.items() if i not in ready),
            "deadlines ended": sorted((e, workflow.deadline_outcome(wf, i, host))
                                      for i, (e, host) in timers.items() if i not in waiting),
            "ended": (wf.is_completed(), wf.success, _text(wf.data) if wf.is_completed() else None),
        }

    # -- what a change does --
    def complete(self, element_id, **changes):
        def act(wf):
            [task] = [t for t in workflow.ready_human_tasks(wf) if t.element_id == element_id]
            workflow.run_human_task(wf, workflow.find_task(wf, task.id), {**FORM_DATA.get(element_id, {}), **changes})
        return self.step(act)

    def message(self, name, **payload):
        return self.step(lambda wf: workflow.send_message(wf, name, payload))

    def timers(self):
        return self.step(lambda wf: None)

    def recompute(self, element_id):
        return self.step(lambda wf: workflow.reset_timers(
            wf, [t.id for t in workflow.waiting_timers(wf) if t.element_id == element_id]))

    def migrate(self, target) -> list:
        """Move both onto the version `target` (key, spec json, subprocess specs json); the reasons not to."""
        reasons = self.step(lambda wf: workflow.migrate(wf, *workflow.specs(*target)), keep=lambda r: not r)["result"]
        if not reasons:
            self.version = target
        return reasons

    def size(self, name="lean") -> int:
        return len(self.json[name].encode("utf-8"))


def _text(value) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _ready_facts(wf, t) -> tuple:
    scopes = tuple(workflow.find_task(wf, i).task_spec.bpmn_id for i in t.scope_ids)
    return t.element_id, t.name, t.lane, t.has_form, scopes, _text(workflow.find_task(wf, t.id).data)


def test_a_compacted_complaint_reads_the_same_as_the_whole_one_at_every_step(version):
    """Appraisal and its overrun, a missed deadline whose follow-up sets a new date (a timer waiting below
    a fired boundary event, bound to the call activity), a follow-up left open across rounds, three
    dissatisfied rounds (one with investigation), a recompute, the interrupting confirmation timer, the end."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=SH)        # a Monday
    with time_machine.travel(t0, tick=False) as clock:
        twins = Twins(version, t0)
        twins.message("appraisal_started", kind="鉴定", started_on="2026-03-02", expected_end_on="2026-03-04", by="x")
        twins.complete("initial_review")
        twins.complete("investigate")
        clock.shift(timedelta(days=3))
        assert "appraisal_overrun" in [r[0] for r in twins.timers()["ready"]]
        twins.complete("appraisal_overrun", appraisal_has_ended=True, appraisal_ended_on="2026-03-04",
                       appraisal_overrun_notes="报告已出具")
        clock.shift(timedelta(days=10))
        twins.timers()
        step = twins.complete("resolution_overdue")
        assert ("resolution_new_due_watch", "resolve") in [t[:2] for t in step["timers"]]
        twins.complete("analyse_and_plan")
        twins.complete("feedback_to_customer")
        for r in range(3):
            twins.complete("customer_confirmation", **UNHAPPY)
            if r == 0:
                clock.shift(timedelta(days=3))
                assert "re_evaluation_overdue" in [t[0] for t in twins.timers()["ready"]]
            twins.complete("re_evaluation", needs_investigation=r == 1)
            if r == 1:
                twins.complete("investigate")
            twins.recompute("resolution_deadline")
            twins.complete("analyse_and_plan", compensation_amount=200000 if r == 2 else 1000)
            if r == 2:
                twins.complete("management_decision")
            twins.complete("feedback_to_customer")
        assert twins.size() < twins.size("whole") / 2
        twins.complete("re_evaluation_overdue")
        clock.shift(timedelta(days=9))
        assert [r[0] for r in twins.timers()["ready"]] == ["confirmation_follow_up"]
        twins.complete("confirmation_follow_up")
        clock.shift(timedelta(days=9))
        assert [r[0] for r in twins.timers()["ready"]] == ["archive"]
        assert twins.complete("archive")["ended"][:2] == (True, True)


def test_a_withdrawal_in_a_later_round_ends_both_alike(version):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False):
        twins = Twins(version, t0)
        for element_id in HAPPY_PATH[:4]:
            twins.complete(element_id)
        for element_id, changes in ROUND + ROUND[:3]:
            twins.complete(element_id, **changes)
        step = twins.message("complaint_withdrawn", reason="已协商解决", by="customer")
        assert step["ended"][:2] == (True, True) and step["tasks ended"] == [("feedback_to_customer", "cancelled")]
        assert json.loads(twins.json["lean"])["subprocesses"] == {}      # the cancelled ones are gone too


def test_migration_of_a_compacted_complaint_is_refused_and_allowed_as_for_the_whole_one(version):
    """A removed step completed in an earlier round, in the main flow or in a finished call activity,
    refuses the move as it did while its tasks were kept; a safe change moves both alike. The lean one
    was stored whole until its last change, as an instance stored before compaction existed."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=SH)
    with time_machine.travel(t0, tick=False):
        twins = Twins(version, t0)
        twins.complete("initial_review")
        twins.complete("investigate")
        twins.complete("analyse_and_plan", compensation_amount=200000)
        twins.complete("management_decision")
        twins.complete("feedback_to_customer")
        for element_id, changes in ROUND[:3]:
            twins.complete(element_id, **changes)
        twins.json["lean"], twins.known["lean"] = twins.json["whole"], twins.known["whole"]
        twins.complete("feedback_to_customer")
        assert not {"re_evaluation", "management_decision"} & set(done_in(twins.json["lean"]))    # dropped
        assert twins.migrate(variant(remove_re_evaluation)) == [
            "its completed step 重新评估 (re_evaluation) was removed"]
        assert twins.migrate(variant(without_management_decision)) == [
            "its completed step 管理层决策 (management_decision) was removed"]
        assert twins.migrate(variant(safe_change)) == []
        for element_id, changes in ROUND:
            twins.complete(element_id, **changes)


def test_at_round_30_a_compacted_instance_is_small_and_still_recomputes_and_migrates(version):
    """30 dissatisfied rounds (the whole instance would be ~0.5 MB): the size stays the same from round to
    round; a recompute with 2027-01-04 entered as a holiday moves the provisional confirmation deadline a
    day; a version without the re-evaluation step (done 30 times, its tasks long dropped) is refused, a
    safe change is taken and the next round runs on it."""
    t0 = datetime(2026, 12, 28, 10, 0, tzinfo=SH)          # deadlines reaching into 2027 are provisional
    with time_machine.travel(t0, tick=False):
        wf = workflow.start(*version, {"received_at": t0.isoformat()}, make_script_engine())
        text, sizes = workflow.dump(wf), []
        for element_id, changes in [(e, {}) for e in HAPPY_PATH[:4]] + ROUND * 30:
            wf = workflow.load(text, *version, make_script_engine())
            complete(wf, element_id, **changes)
            text = workflow.dump(workflow.compact(wf))
            sizes.append(len(text.encode("utf-8")))
        per_round = sizes[3::4]
        assert per_round[10] <= MAX_SIZE and per_round[30] <= MAX_SIZE, per_round
        assert max(per_round[1:]) - min(per_round[1:]) < 64, per_round

        holiday = make_script_engine(calendar=WorkCalendar(extra_holidays={date(2027, 1, 4)}))
        wf = workflow.load(text, *version, holiday)
        [timer] = workflow.waiting_timers(wf)
        workflow.reset_timers(wf, [timer.id])
        assert [(t.element_id, t.due_at) for t in workflow.waiting_timers(wf)] == [
            ("confirmation_deadline", timer.due_at + timedelta(days=1))]

        wf = workflow.load(text, *version, make_script_engine())
        assert workflow.migrate(wf, *workflow.specs(*variant(remove_re_evaluation))) == [
            "its completed step 重新评估 (re_evaluation) was removed"]
        moved = variant(safe_change)
        wf = workflow.load(text, *version, make_script_engine())
        assert workflow.migrate(wf, *workflow.specs(*moved)) == []
        text = workflow.dump(workflow.compact(wf))
        for element_id, changes in [ROUND[0], ("re_evaluation", {"needs_investigation": True})]:
            wf = workflow.load(text, *moved, make_script_engine())
            complete(wf, element_id, **changes)
            text = workflow.dump(workflow.compact(wf))
        assert [t.name for t in workflow.ready_human_tasks(wf)] == ["调查取证与核实"]


def complete(wf, element_id, **changes):
    [task] = [t for t in workflow.ready_human_tasks(wf) if t.element_id == element_id]
    workflow.run_human_task(wf, workflow.find_task(wf, task.id), {**FORM_DATA[element_id], **changes})
    workflow.fire_due_timers(wf)


# ---- on the database, through the runtime ------------------------------------------------------------
_changing = contextvars.ContextVar("changing", default=None)


@pytest.fixture
def compacted(monkeypatch):
    """The business keys whose instances are compacted after each change (the others are left whole):
    compaction runs after everything the runtime reads from the workflow, then it is stored again. Works
    whether or not the runtime calls workflow.compact itself."""
    keys = set()
    compact, write_back = workflow.compact, Runtime._write_back

    def own_write_back(self, inst, wf, *args, **kwargs):
        token = _changing.set(inst.business_key)
        try:
            change = write_back(self, inst, wf, *args, **kwargs)
        finally:
            _changing.reset(token)
        if inst.business_key in keys:
            inst.workflow_json = workflow.dump(compact(wf))
        return change
    monkeypatch.setattr(workflow, "compact", lambda wf: compact(wf) if _changing.get() in keys else wf)
    monkeypatch.setattr(Runtime, "_write_back", own_write_back)
    return keys


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def stored(number) -> str:
    db.session.expire_all()
    return db.session.execute(select(ProcessInstance.workflow_json).where(
        ProcessInstance.business_key == number)).scalar_one()


def done_in(text) -> list:
    """The task specs of the completed tasks a stored workflow holds."""
    dct = json.loads(text)
    return [t["task_spec"] for wf in [dct, *dct["subprocesses"].values()] for t in wf["tasks"].values()
            if t["state"] == workflow.TaskState.COMPLETED]


def seen(desk, number) -> dict:
    """What the app shows of a complaint (API and complaint page), but its number and ids."""
    view = desk.complaint(number)
    path = desk.client.get(f"/api/v1/complaints/{number}/path", headers=desk.people["compliance"].headers).json
    with current_app.test_request_context():
        marks = complaint_diagram(db.session.execute(select(Complaint).where(
            Complaint.number == number)).scalar_one())["marks"]
    return {"tasks": sorted((t["element_id"], t["name"], t["role"], t["due_at"], t["state"]) for t in view["tasks"]),
            "deadlines": sorted((d["element_id"], d["state"], d["due_at"]) for d in view["deadlines"]),
            "path": [(v["process"], v["element_id"]) for v in path["visits"]], "current": path["current"],
            "marks": marks, "record": {k: v for k, v in view["complaint"].items() if k not in ("number", "id")},
            "history": [(e["action"], e.get("element_id")) for e in view["history"]], "outbox": desk.outbox(number)}


@pytest.mark.parametrize("backend", ["sqlite"])        # nothing in compaction depends on the database
def test_the_app_shows_and_moves_a_compacted_complaint_as_the_whole_one(app, desk, compacted, tmp_path):
    """Two complaints walked alike, one compacted after each change: the same tasks, deadlines, path,
    diagram marks, record, history and messages; a deadline recompute and a migration (refused for a
    step removed that was done, then a safe one) do the same to both."""
    cli = app.test_cli_runner()
    t0 = datetime(2026, 12, 28, 10, 0, tzinfo=SH)         # deadlines reaching into 2027 are provisional
    with time_machine.travel(t0, tick=False) as clock:
        whole, lean = desk.register(received_at=t0.isoformat()), desk.register(received_at=t0.isoformat())
        compacted.add(lean)

        def both(*steps):
            for step in steps:
                for number in (whole, lean):
                    desk.walk(number, [step])
        both(*HAPPY_PATH[:4], ROUND[0])
        clock.shift(timedelta(days=3))
        fire_due_timers(app)               # re-evaluation overdue: its follow-up stays open for a round
        both(*ROUND[1:], ROUND[0], ("re_evaluation", {"needs_investigation": True}), "investigate",
             "re_evaluation_overdue", "analyse_and_plan", "feedback_to_customer")
        assert seen(desk, lean) == seen(desk, whole)
        assert done_in(stored(whole)).count("start_round") == 3 and "start_round" not in done_in(stored(lean))

        assert cli.invoke(args=["calendar", "set", "2027-01-04", "--holiday"]).exit_code == 0
        assert "recomputed provisional deadlines of 2 instance(s)" in cli.invoke(args=["calendar", "recompute"]).output
        assert any(e == ("deadline_recomputed", "confirmation_deadline") for e in seen(desk, lean)["history"])

        assert deploy_changed(tmp_path / "v2", remove_re_evaluation) == 2
        result = cli.invoke(args=["processes", "migrate", "complaint_handling"]).output
        refused = dict(re.findall(r"^(TS-\S+): not migratable: (.*)$", result, flags=re.M))
        assert refused[lean] == refused[whole]
        assert "its completed step 重新评估 (re_evaluation) was removed" in refused[lean]
        assert deploy_changed(tmp_path / "v3", safe_change) == 3
        assert "2 migrated, 0 not migratable" in cli.invoke(args=["processes", "migrate", "complaint_handling"]).output
        assert seen(desk, lean) == seen(desk, whole)

        both("customer_confirmation", "archive")
        assert seen(desk, lean) == seen(desk, whole)
        assert seen(desk, lean)["record"]["status"] == "closed"
        assert len(stored(lean)) < len(stored(whole)) / 2

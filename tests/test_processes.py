"""processes/ and forms/ are checked before anything is deployed; problems name file, element, line."""
import json
import re
import shutil

import pytest
from lxml import etree
from sqlalchemy import select, text

from app import create_app
from app.config import ROOT, TestConfig
from app.engine.registry import NS, load_processes
from app.extensions import db
from app.models import ProcessVersion
from tests.flow import LANES

BPMN = ROOT / "processes" / "complaint_handling.bpmn"
CLAUSES = ["C-3.1.1", "C-3.1.2", "C-3.1.3", "C-3.2.1", "C-3.2.2", "C-3.2.3", "C-3.3.1", "C-3.3.2", "C-3.3.3",
           "C-3.3.4", "C-3.4.1", "C-3.4.2", "C-3.4.3", "C-3.5.1", "C-4.1", "C-4.2", "C-4.3", "C-4.4", "C-7.4"]


@pytest.fixture
def copy(tmp_path):
    """A writable copy of processes/ and forms/ to break."""
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    shutil.copytree(ROOT / "forms", tmp_path / "forms")
    return tmp_path


def check(root):
    return load_processes(root / "processes", root / "forms", LANES)


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path, needle):
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_the_real_procedure_passes_every_check():
    bundles, problems = check(ROOT)
    assert problems == []
    # The main procedure, the processes that run beside it for the same complaint, and the quarterly review
    # (which calls improvement_measure, deployed with it).
    assert sorted(b.process_id for b in bundles) == ["complaint_handling", "complaint_review", "customer_contact",
                                                     "quarterly_review"]
    assert {form for b in bundles for form in b.forms} == {p.stem for p in (ROOT / "forms").glob("*.json")}


def test_every_clause_is_cited_and_every_element_documents_its_clauses():
    tree = etree.parse(str(BPMN))
    docs = " ".join(tree.xpath("//bpmn:documentation/text()", namespaces=NS))
    missing = [c for c in CLAUSES if f"[{c}]" not in docs]
    assert missing == []
    nodes = [node for path in sorted((ROOT / "processes").glob("*.bpmn"))
             for node in etree.parse(str(path)).xpath("//bpmn:userTask|//bpmn:scriptTask|//bpmn:exclusiveGateway"
                                                      "|//bpmn:boundaryEvent|//bpmn:callActivity|//bpmn:parallelGateway",
                                                      namespaces=NS)]
    assert len(nodes) > 100
    for node in nodes:
        doc = node.find("bpmn:documentation", NS)
        assert doc is not None and re.match(r"\s*\[C-", doc.text), node.get("id")
        assert re.fullmatch(r"[a-z][a-z0-9_]*", node.get("id")), node.get("id")
        assert re.search(r"[\u4e00-\u9fff]", node.get("name") or ""), node.get("id")


def test_every_deadline_is_a_timer_boundary_event_non_interrupting_unless_the_procedure_moves_on():
    tree = etree.parse(str(BPMN))
    timers = {n.get("id"): (n.get("attachedToRef"), n.get("cancelActivity", "true"),
                            n.find(".//bpmn:timeDate", NS).text.strip())
              for n in tree.xpath("//bpmn:boundaryEvent[bpmn:timerEventDefinition]", namespaces=NS)}
    steps = ("initial_review_deadline", "investigation_deadline", "resolution_deadline")
    assert {k: timers[k] for k in steps} == {
        "initial_review_deadline": ("initial_review", "false", "hours_after(received_at, 24)"),
        "investigation_deadline": ("investigate", "false", "working_days_after(round_started_at, 3)"),
        "resolution_deadline": ("resolve", "false", "working_days_after(round_started_at, 7)"),
    }
    # In the handling (complaint_case), only where the procedure decides to move on (the customer's
    # silence, C-3.4.2) does a deadline end its task.
    case = {n.get("id") for n in tree.xpath("//bpmn:process[@id='complaint_case']/bpmn:boundaryEvent"
                                            "[bpmn:timerEventDefinition]", namespaces=NS)}
    assert {k for k, (_, cancel, _) in timers.items() if cancel != "false" and k in case} == {"confirmation_deadline"}


@pytest.mark.parametrize("old, new, element, message", [
    (">decision == 'reject'<", ">${decision == 'reject'}<", None, "condition"),
    (">hours_after(received_at, 24)<", ">PT24H<", "initial_review_deadline", 'quote it: "PT24H"'),
    ("<bpmn:script>accepted_at = now_iso()", "<bpmn:script>accepted_at = = now_iso()", "accept_complaint",
     "script"),
])
def test_broken_expressions_are_reported_with_file_element_and_line(copy, old, new, element, message):
    path = copy / "processes" / "complaint_handling.bpmn"
    line = line_of(path, old)
    edit(path, old, new)
    bundles, problems = check(copy)
    assert bundles == []
    [problem] = problems
    assert problem.file == "complaint_handling.bpmn" and problem.line == line and message in problem.message
    if element:
        assert problem.element_id == element
    else:   # a condition belongs to its sequence flow
        flow = etree.parse(str(path)).xpath(f'//*[@id="{problem.element_id}"]')[0]
        assert flow.tag.endswith("sequenceFlow") and flow.get("sourceRef") == "review_outcome"


def test_missing_form_is_reported_on_its_user_task(copy):
    (copy / "forms" / "investigate.json").unlink()
    bundles, problems = check(copy)
    assert bundles == []
    [problem] = problems
    assert problem.element_id == "investigate" and "investigate.json is missing" in problem.message
    assert problem.line == line_of(copy / "processes" / "complaint_handling.bpmn", 'id="investigate"')


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"type": "object", "properties": {"x": {"type": "strng"}}}), "not a valid JSON Schema"),
    (json.dumps({"type": "array"}), '"type": "object"'),
    (json.dumps({"type": "object", "properties": {"x": {"type": "integer", "enum": [1, 2, 3],
                                                        "x-enumNames": ["差", "中", "好"],
                                                        "x-enumNames-en": ["Poor", "Good"]}}}),
     "the field 'x' names 2 choices in x-enumNames-en but offers 3"),
    (json.dumps({"type": "object", "properties": {"x": {"type": "array", "items": {"enum": ["a", "b", "c"],
                                                                                 "x-enumNames": ["甲", "乙"]}}}}),
     "the field 'x[]' names 2 choices in x-enumNames but offers 3"),
    (json.dumps({"type": "object", "properties": {"x": {"type": "string", "enum": ["a", "b"]}},
                 "x-customer": {"properties": {"x": {"x-enumNames": ["甲"]}}}}),
     "the field 'x-customer.x' names 1 choices in x-enumNames but offers 2"),
    (json.dumps({"type": "object", "properties": {"x": {"type": "string"}}, "x-customer": "odd"}), None),
])
def test_invalid_form_files_are_reported(copy, content, message):
    (copy / "forms" / "archive.json").write_text(content, encoding="utf-8")
    bundles, problems = check(copy)
    if message is None:                         # odd, but nothing the check refuses
        assert problems == [] and bundles
        return
    assert bundles == [] and len(problems) == 1
    assert problems[0].element_id == "archive" and message in problems[0].message


def test_choice_names_that_do_not_match_the_choices_are_reported_in_the_page_language(app, copy):
    """A form whose choices' names (x-enumNames, x-enumNames-en) are not one per choice would show a choice under
    another's name: the check refuses it, and the procedure page says so in Chinese."""
    from app.web.procedure.problems import problem_text
    path = copy / "forms" / "satisfaction_survey.json"
    form = json.loads(path.read_text(encoding="utf-8"))
    form["properties"]["overall"]["x-enumNames-en"].pop()
    path.write_text(json.dumps(form, ensure_ascii=False), encoding="utf-8")
    bundles, problems = check(copy)
    assert bundles == [] and [p.code for p in problems] == ["form_option_names"], problems
    with app.test_request_context():
        said = problem_text(problems[0])
    assert "在 x-enumNames-en 中为字段 overall 给出了 4 个选项名称，但该字段有 5 个选项" in said, said


def test_a_staff_message_forms_problem_is_said_in_the_page_language_too(app, copy):
    """The form of a message handlers send (e.g. asking for more time) is checked like a task's, and its problem
    keeps its code, so the procedure page says it in Chinese rather than the check's English."""
    from app.web.procedure.problems import problem_text
    (copy / "forms" / "extension_requested.json").write_text("{not json", encoding="utf-8")
    bundles, problems = check(copy)
    assert bundles == [] and [p.code for p in problems] == ["form_not_json"], problems
    assert "message 'extension_requested'" in problems[0].message
    with app.test_request_context():
        said = problem_text(problems[0])
    assert "extension_requested.json" in said and "不是有效的 JSON" in said, said


def test_unknown_lane_and_task_outside_a_role_lane(copy):
    path = copy / "processes" / "complaint_handling.bpmn"
    edit(path, '<bpmn:lane id="lane_management" name="管理层">', '<bpmn:lane id="lane_management" name="领导小组">')
    bundles, problems = check(copy)
    assert bundles == []
    assert any(p.element_id == "lane_management" and "not a known role lane" in p.message for p in problems)
    assert any(p.element_id == "malicious_review" and "no role lane" in p.message for p in problems)


def test_malformed_xml_is_reported_with_its_line(copy):
    path = copy / "processes" / "complaint_handling.bpmn"
    edit(path, '<bpmn:userTask id="investigate"', '<bpmn:userTask id="investigate" <<')
    bundles, problems = check(copy)
    assert bundles == [] and len(problems) == 1
    assert problems[0].line == line_of(path, 'id="investigate"') and "not well-formed" in problems[0].message


def test_cli_check_exits_1_with_located_problems(copy):
    (copy / "forms" / "investigate.json").unlink()
    app = create_app(TestConfig, PROCESSES_DIR=copy / "processes", FORMS_DIR=copy / "forms")
    result = app.test_cli_runner().invoke(args=["processes", "check"])
    assert result.exit_code == 1
    assert re.search(r"complaint_handling\.bpmn:\d+: \[investigate\] user task has no form", result.output)
    good = create_app(TestConfig).test_cli_runner().invoke(args=["processes", "check"])
    assert good.exit_code == 0 and "ok: complaint_handling" in good.output


def test_deploy_registers_versions_only_on_change_and_never_a_broken_file(app, copy):
    def deploy_from(root):
        runner_app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                                PROCESSES_DIR=root / "processes", FORMS_DIR=root / "forms")
        with runner_app.app_context():
            return runner_app.test_cli_runner().invoke(args=["processes", "deploy"])

    def versions():
        db.session.expire_all()
        return [(v.version, v.content_hash[:8]) for v in db.session.execute(
            select(ProcessVersion).order_by(ProcessVersion.version)).scalars()]

    first = versions()
    assert {v for v, _ in first} == {1}      # the fixture deployed the real files (each process once)
    assert "version 1 unchanged" in deploy_from(ROOT).output
    path = copy / "processes" / "complaint_handling.bpmn"
    edit(path, ">hours_after(received_at, 24)<", ">PT24H<")
    broken = deploy_from(copy)
    assert broken.exit_code == 1 and "refused" in broken.output
    assert versions() == first
    edit(path, ">PT24H<", ">hours_after(received_at, 48)<")
    changed = deploy_from(copy)
    assert changed.exit_code == 0 and "version 2 deployed" in changed.output
    # Deploying shows what changed and, as a dry run, which running complaints could move.
    assert "version 1 -> 2" in changed.output and "'initial_review_deadline': ['event_definition']" in changed.output
    assert "0 migratable, 0 not migratable" in changed.output
    assert len(versions()) == len(first) + 1
    # A form change alone is a new version too.
    form = copy / "forms" / "archive.json"
    form.write_text(form.read_text(encoding="utf-8").replace("案例归档", "案例归档（新）"), encoding="utf-8")
    assert "version 3 deployed" in deploy_from(copy).output
    assert "version 3 unchanged" in deploy_from(copy).output


def test_schema_invalid_element_is_reported_with_its_line(copy):
    path = copy / "processes" / "complaint_handling.bpmn"
    line = line_of(path, '<bpmn:userTask id="investigate"')
    edit(path, '<bpmn:userTask id="investigate" name="调查取证">', '<bpmn:userTaskk id="investigate" name="调查取证">')
    edit(path, '</bpmn:userTask>\n    <bpmn:boundaryEvent id="investigation_deadline"',
         '</bpmn:userTaskk>\n    <bpmn:boundaryEvent id="investigation_deadline"')
    bundles, problems = check(copy)
    assert bundles == [] and len(problems) == 1
    assert problems[0].line == line and "userTaskk" in problems[0].message


def test_a_changed_deadline_applies_to_new_complaints_while_running_ones_keep_theirs(app, copy, client, people):
    from datetime import datetime, timedelta, timezone

    import time_machine

    from app.engine.registry import deploy
    from tests.flow import Desk
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    with time_machine.travel(t0, tick=False):
        desk = Desk(client, people)
        old = desk.register(received_at=t0.isoformat())
        # The process owner gives the initial review 48 hours instead of 24 and deploys.
        edit(copy / "processes" / "complaint_handling.bpmn", ">hours_after(received_at, 24)<",
             ">hours_after(received_at, 48)<")
        bundles, problems = check(copy)
        assert problems == []
        assert deploy(db.session, bundles, "owner")[0] == ("complaint_handling", 2, True)
        new = desk.register(received_at=t0.isoformat())

        def due(number):
            return {d["element_id"]: d["due_at"] for d in desk.complaint(number)["deadlines"]}
        assert due(old)["initial_review_deadline"] == (t0 + timedelta(hours=24)).isoformat()
        assert due(new)["initial_review_deadline"] == (t0 + timedelta(hours=48)).isoformat()
        versions = dict(db.session.execute(text(
            "SELECT business_key, v.version FROM process_instance i JOIN process_version v ON v.id = i.version_id"
        )).all())
        assert versions == {old: 1, new: 2}
        desk.complete(old, "initial_review")       # the running complaint goes on, on version 1
        assert "investigate" in desk.open_tasks(old)


def test_an_upload_is_checked_against_the_other_files_and_older_disk_content_never_reverts_it(app, copy):
    from app.engine.registry import deploy, load_with_upload
    path = copy / "processes" / "complaint_handling.bpmn"
    changed = path.read_text(encoding="utf-8").replace(">hours_after(received_at, 24)<", ">hours_after(received_at, 36)<")
    bundles, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                         changed.encode("utf-8"))
    assert problems == []
    assert [r for r in deploy(db.session, bundles, "owner") if r[2]] == [("complaint_handling", 2, True)]
    # The app restarts with the old file still on disk: nothing is reverted.
    disk, _ = load_processes(ROOT / "processes", ROOT / "forms", LANES)
    results = deploy(db.session, disk, "system")
    assert ("complaint_handling", 1, False) in results and not any(new for _, _, new in results)
    latest = db.session.execute(select(ProcessVersion).order_by(ProcessVersion.version.desc())).scalars().first()
    assert latest.version == 2 and "hours_after(received_at, 36)" in latest.bpmn_files["complaint_handling.bpmn"]
    broken, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                        changed.replace(">hours_after(received_at, 36)<", ">PT36H<").encode())
    assert broken == [] and problems[0].element_id == "initial_review_deadline"
    assert load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "evil.exe", b"x")[1][0].message \
        == "only .bpmn and .dmn files can be uploaded"


def test_a_downloaded_diagram_uploaded_under_its_download_name_replaces_the_file_of_its_process():
    from app.engine.registry import load_with_upload
    source = (ROOT / "processes" / "improvement_measure.bpmn").read_text(encoding="utf-8")
    changed = source.replace('name="措施完成期限"', 'name="措施完成期限（当日结束）"').encode("utf-8")
    for name in ("quarterly_review-v1-improvement_measure.bpmn", "edited in the modeler.bpmn"):
        bundles, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, name, changed)
        assert problems == [], (name, [str(p) for p in problems])
        [review] = [b for b in bundles if b.process_id == "quarterly_review"]
        assert sorted(review.files) == ["improvement_measure.bpmn", "quarterly_review.bpmn"]
        assert "措施完成期限（当日结束）" in review.files["improvement_measure.bpmn"]
    # A diagram of a process no file holds is added under its own name.
    new = source.replace('id="improvement_measure"', 'id="another_measure"')
    _, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "another.bpmn", new.encode("utf-8"))
    assert problems == []

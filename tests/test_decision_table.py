"""The management-decision rule is the insurer's policy, kept as a DMN decision table
(processes/management_decision.dmn) that the business-rule task `decide_management_needed` of
complaint_resolution applies before the gateway `needs_management_decision`: the table drives the
path, is deployed and versioned with the diagram (a changed table is a new version; running
complaints keep the table of theirs), runs in the sandbox, is checked by `flask processes check` with
every problem located, and is shown and uploaded on the procedure page."""
import io
import re

import pytest
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import select

from app import create_app
from app.config import ROOT, TestConfig
from app.engine import sandbox
from app.engine.registry import deploy
from app.engine.scripting import make_script_engine
from app.engine.workflow import new_parser
from app.extensions import db
from app.models import ProcessInstance, ProcessVersion
from tests.flow import Desk
from tests.test_processes import check, copy, edit  # noqa: F401  (copy is a fixture)
from tests.test_web import as_, browser, desk, fresh, text  # noqa: F401  (browser and desk are fixtures)

pytestmark = pytest.mark.clause("C-3.3.4")

DMN_NAME = "management_decision.dmn"
DMN = (ROOT / "processes" / DMN_NAME).read_text(encoding="utf-8")
THRESHOLD_CELL = "<text>&gt; 50000</text>"
PROCESS = "/procedure/complaint_handling"




def line_of(path, needle):
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def to_the_solution(desk, number, risk_level, amount):
    """Walk a complaint through review and investigation, and plan a solution paying `amount`."""
    desk.complete(number, "initial_review", risk_level=risk_level)
    desk.complete(number, "investigate")
    desk.complete(number, "analyse_and_plan", compensation_amount=amount)


def goes_to_management(desk, number) -> bool:
    tasks = set(desk.open_tasks(number))
    assert tasks & {"management_decision", "feedback_to_customer"}, tasks
    return "management_decision" in tasks


def version_of(number) -> int:
    fresh()
    return db.session.execute(select(ProcessVersion.version).join(
        ProcessInstance, ProcessInstance.version_id == ProcessVersion.id)
        .where(ProcessInstance.business_key == number)).scalar_one()


# ---- the table drives the gateway ------------------------------------------------------------------
@pytest.mark.clause("C-3.3.4", "C-6.3")
@pytest.mark.parametrize("risk_level, amount, management", [
    ("low", 0, False),
    ("low", 50000, False),          # the default threshold: more than 50,000 yuan
    ("low", 50000.01, True),
    ("medium", 80000, True),
    ("high", 0, True),              # high risk, whatever the amount
    ("medium", 49999, False),
])
def test_the_table_decides_whether_management_decides(client, people, risk_level, amount, management):
    desk = Desk(client, people)
    number = desk.register()
    to_the_solution(desk, number, risk_level, amount)
    assert goes_to_management(desk, number) is management


def test_the_deployed_version_holds_the_table_and_its_gateway_reads_its_result(app):
    version = db.session.execute(select(ProcessVersion).where(
        ProcessVersion.process_id == "complaint_handling")).scalar_one()
    assert version.bpmn_files[DMN_NAME] == DMN
    assert "<bpmn:conditionExpression xsi:type=\"bpmn:tFormalExpression\">needs_management<" \
        in version.bpmn_files["complaint_handling.bpmn"]
    # Only the process that calls the table carries it.
    others = db.session.execute(select(ProcessVersion).where(
        ProcessVersion.process_id != "complaint_handling")).scalars().all()
    assert others and all(DMN_NAME not in v.bpmn_files for v in others)


# ---- versioned with the diagram --------------------------------------------------------------------
@pytest.mark.clause("C-3.3.4", "C-6.3")
def test_a_changed_table_is_a_new_version_for_new_complaints_and_running_ones_keep_theirs(client, people, copy):
    desk = Desk(client, people)
    running = desk.register()
    desk.walk(running, ["initial_review", "investigate"])          # at analyse_and_plan, before the table

    # The insurer lowers the threshold to 20,000 yuan in the table, and nothing else.
    edit(copy / "processes" / DMN_NAME, THRESHOLD_CELL, "<text>&gt; 20000</text>")
    bundles, problems = check(copy)
    assert problems == []
    [changed] = [b for b in bundles if b.process_id == "complaint_handling"]
    assert changed.files["complaint_handling.bpmn"] == (ROOT / "processes" / "complaint_handling.bpmn").read_text(
        encoding="utf-8")
    assert [r for r in deploy(db.session, bundles, "owner") if r[2]] == [("complaint_handling", 2, True)]

    new = desk.register()
    to_the_solution(desk, new, "low", 30000)
    desk.complete(running, "analyse_and_plan", compensation_amount=30000)
    assert (version_of(new), goes_to_management(desk, new)) == (2, True)
    assert (version_of(running), goes_to_management(desk, running)) == (1, False)

    # The same files again are no new version.
    assert not any(new for _, _, new in deploy(db.session, check(copy)[0], "owner"))


# ---- the sandbox -----------------------------------------------------------------------------------
def test_every_cell_of_the_table_is_compiled_by_the_sandbox(client, people, monkeypatch):
    compiled = []
    original = sandbox.code_for
    monkeypatch.setattr(sandbox, "code_for", lambda source, mode: compiled.append(source) or original(source, mode))
    desk = Desk(client, people)
    number = desk.register()
    to_the_solution(desk, number, "medium", 60000)
    assert goes_to_management(desk, number)
    # The rules as SpiffWorkflow builds them from the cells (FIRST: every row is evaluated), the output of
    # the rule that matched and the gateway's condition, each through the restricted compiler.
    assert {'(risk_level) == ("high")', "compensation_amount> 50000", "True", "needs_management"} <= set(compiled)


def run_resolution_with(dmn_text, data):
    """complaint_resolution parsed with the given table and no check, run to past analyse_and_plan."""
    parser = new_parser()
    parser.add_dmn_str(dmn_text.encode("utf-8"), filename=DMN_NAME)
    parser.add_bpmn_file(str(ROOT / "processes" / "complaint_handling.bpmn"))
    spec = parser.get_spec("complaint_resolution")
    wf = BpmnWorkflow(spec, parser.get_subprocess_specs("complaint_resolution"), script_engine=make_script_engine())
    wf.do_engine_steps()
    [plan] = [t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == "analyse_and_plan"]
    plan.data.update(data)
    plan.run()
    wf.do_engine_steps()
    return wf


def test_a_table_that_escaped_the_check_still_cannot_leave_the_sandbox():
    data = {"risk_level": "low", "compensation_amount": 1}
    wf = run_resolution_with(DMN, data)
    assert {t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.READY)} == {"feedback_to_customer"}
    escaping = DMN.replace("<text>False</text>", "<text>().__class__.__base__.__subclasses__()</text>")
    with pytest.raises(Exception, match="__class__"):
        run_resolution_with(escaping, data)


def test_ranges_and_lists_are_written_with_a_question_mark_and_pass_the_check(copy):
    path = copy / "processes" / DMN_NAME
    edit(path, '<text>"high"</text>', '<text>? in ("medium", "high")</text>')
    edit(path, THRESHOLD_CELL, "<text>20000 &lt; ? &lt;= 50000</text>")
    assert check(copy)[1] == []
    table = path.read_text(encoding="utf-8")
    for risk_level, amount, next_step in [("medium", 1, "management_decision"), ("low", 30000, "management_decision"),
                                          ("low", 60000, "feedback_to_customer")]:
        wf = run_resolution_with(table, {"risk_level": risk_level, "compensation_amount": amount})
        assert {t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.READY)} == {next_step}


# ---- flask processes check -------------------------------------------------------------------------
BROKEN_TABLES = [
    # (what the owner wrote, replacing, element, message)
    ("<text>True ==</text>", "<text>True</text>", "rule_high_risk_needs_management", "output cell"),
    ("<text>true</text>", "<text>True</text>", "rule_high_risk_needs_management", "write True"),
    ('hitPolicy="FRIST"', 'hitPolicy="FIRST"', "decision_table_needs_management", "hitPolicy"),
    ('hitPolicy="ANY"', 'hitPolicy="FIRST"', "decision_table_needs_management", "knows only FIRST, UNIQUE and COLLECT"),
    ("<text>high</text>", '<text>"high"</text>', "rule_high_risk_risk_level", 'quote the text, "high"'),
    ('<text>in ["high", "medium"]</text>', '<text>"high"</text>', "rule_high_risk_risk_level",
     'use ? for the input, e.g. ? in ["high", "medium"]'),
    ("<text>[50000..100000]</text>", THRESHOLD_CELL, "rule_large_compensation_compensation_amount",
     "not Python (cells are Python, not FEEL)"),
    ("<text>compensation_amount.__class__</text>", "<text>True</text>", "rule_high_risk_needs_management",
     "__class__"),
]


@pytest.mark.parametrize("new, old, element, message", BROKEN_TABLES, ids=[b[0] for b in BROKEN_TABLES])
def test_a_broken_table_is_reported_with_file_element_and_line(copy, new, old, element, message):
    path = copy / "processes" / DMN_NAME
    edit(path, old, new)
    bundles, problems = check(copy)
    assert bundles == []
    [problem] = problems
    assert (problem.file, problem.element_id) == (DMN_NAME, element)
    assert message in problem.message
    assert problem.line == line_of(path, new) or problem.line == line_of(path, f'id="{element}"')


def test_a_table_without_a_catch_all_last_rule_is_refused(copy):
    path = copy / "processes" / DMN_NAME
    content = path.read_text(encoding="utf-8")
    last = content.index('<rule id="rule_otherwise">')
    path.write_text(content[:last] + content[last:].replace("<text>-</text>", "<text>&lt; 1</text>", 1),
                    encoding="utf-8")
    [problem] = check(copy)[1]
    assert (problem.file, problem.element_id, problem.line) == (DMN_NAME, "rule_otherwise",
                                                                line_of(path, '<rule id="rule_otherwise">'))
    assert "the last rule must match every case" in problem.message


def test_a_missing_decision_is_reported_on_the_task_that_calls_it(copy):
    bpmn = copy / "processes" / "complaint_handling.bpmn"
    edit(bpmn, ">needs_management_decision</spiffworkflow:calledDecisionId>",
         ">management_rules</spiffworkflow:calledDecisionId>")
    [problem] = check(copy)[1]
    assert (problem.file, problem.element_id) == ("complaint_handling.bpmn", "decide_management_needed")
    assert problem.line == line_of(bpmn, 'id="decide_management_needed"')
    assert 'No DMN Diagram available with id "management_rules"' in problem.message


def test_flask_processes_check_prints_the_located_table_problem(copy):
    path = copy / "processes" / DMN_NAME
    edit(path, "<text>False</text>", "<text>false</text>")
    app = create_app(TestConfig, PROCESSES_DIR=copy / "processes", FORMS_DIR=copy / "forms")
    result = app.test_cli_runner().invoke(args=["processes", "check"])
    assert result.exit_code == 1
    line = line_of(path, "<text>false</text>")
    assert f"{DMN_NAME}:{line}: [rule_otherwise_needs_management] output cell 'false' is FEEL" in result.output
    assert "nothing would be deployed" in result.output
    good = create_app(TestConfig).test_cli_runner().invoke(args=["processes", "check"])
    assert good.exit_code == 0 and f"ok: complaint_handling (complaint_handling.bpmn, {DMN_NAME};" in good.output


# ---- the procedure page ----------------------------------------------------------------------------
def test_the_procedure_page_shows_the_table_and_serves_it_for_download(browser, people):
    compliance = as_(browser, "compliance")
    page = compliance.get(PROCESS)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="decision-table" data-decision-id="needs_management_decision"' in html
    assert f'data-dmn-url="{PROCESS}/v1/{DMN_NAME}?inline=1"' in html
    assert "vendor/dmn-js/dmn-viewer.production.min.js" in html and "decision_table.js" in html
    shown = text(page)
    assert "决策表" in shown and "是否需管理层决策" in shown and "判定是否需管理层决策" in shown
    download = compliance.get(f"{PROCESS}/v1/{DMN_NAME}")
    assert download.status_code == 200 and download.get_data(as_text=True) == DMN
    assert f"complaint_handling-v1-{DMN_NAME}" in download.headers["Content-Disposition"]
    inline = compliance.get(f"{PROCESS}/v1/{DMN_NAME}?inline=1")
    assert inline.status_code == 200 and "Content-Disposition" not in inline.headers
    # The diagram viewer never gets the table as a BPMN file.
    assert f"file={DMN_NAME}" not in html
    assert compliance.get(f"{PROCESS}?file={DMN_NAME}").status_code == 200


def upload(b, content, name):
    data = {"bpmn": (io.BytesIO(content.encode("utf-8")), name)}
    return b.post(f"{PROCESS}/upload", data, page=PROCESS, content_type="multipart/form-data")


def test_a_process_owner_uploads_a_changed_table_as_downloaded_and_deploys_it(browser, desk):
    owner = as_(browser, "process_owner")
    # The table as the owner downloaded it (its name carries process and version), threshold changed.
    changed = DMN.replace(THRESHOLD_CELL, "<text>&gt; 100000</text>")
    preview = upload(owner, changed, f"complaint_handling-v1-{DMN_NAME}")
    assert preview.status_code == 200, text(preview)
    page = preview.get_data(as_text=True)
    # The difference names the business-rule task whose table changed.
    assert 'data-testid="diff-changed" data-element-id="decide_management_needed"' in page
    assert "(decision_table)" in text(preview)
    fields = dict(re.findall(r'<input type="hidden" name="(file_name|content|expected)" value="([^"]*)"', page))
    assert set(fields) == {"file_name", "content", "expected"}
    deployed = owner.post(f"{PROCESS}/deploy", fields, page=PROCESS, content_type="multipart/form-data")
    assert deployed.status_code == 302
    fresh()
    latest = db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == "complaint_handling")
                                .order_by(ProcessVersion.version.desc())).scalars().first()
    # It replaced the file holding the same decision id; no second table beside it.
    assert latest.version == 2 and sorted(latest.bpmn_files) == ["complaint_handling.bpmn", DMN_NAME]
    assert "&gt; 100000" in latest.bpmn_files[DMN_NAME]
    number = desk.register()
    to_the_solution(desk, number, "low", 80000)
    assert not goes_to_management(desk, number)


def test_a_broken_table_upload_is_refused_with_its_located_problem(browser, people):
    owner = as_(browser, "process_owner")
    broken = DMN.replace("<text>True</text>", "<text>true</text>", 1)
    r = upload(owner, broken, DMN_NAME)
    assert r.status_code == 422
    line = next(i for i, l in enumerate(broken.splitlines(), 1) if "<text>true</text>" in l)
    assert ("rule_high_risk_needs_management", str(line)) in re.findall(
        r'data-testid="problem" data-element-id="([^"]*)" data-line="([^"]*)"', r.get_data(as_text=True))
    assert upload(owner, DMN, "rules.xlsx").status_code == 422

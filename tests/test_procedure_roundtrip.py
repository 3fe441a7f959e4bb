"""The process owner's modeler round trip (issue 12, item 1), on every database backend: a diagram saved
again by a modeler with nothing changed (layout order, whitespace, prefixes, the modeler's name, its DI
ids) is no new version, neither through the upload page nor when the app deploys processes/ at start,
while a renamed task, a moved shape and a changed condition are; every check problem reaches the upload
page as a sentence in the page's language saying what to change where; and the version page draws what a
version changed on its diagram."""
import json
import re
import shutil

import pytest
from lxml import etree
from sqlalchemy import select

from app import create_app
from app.cli import deploy_on_start
from app.config import ROOT, TestConfig
from app.engine.registry import ENGINE, Problem, canonical_xml
from app.extensions import db
from app.models import ProcessVersion
from app.web.procedure.problems import problem_text
from tests.test_migration import deploy_changed, remove_re_evaluation
from tests.test_web import as_, browser, desk, fresh, text  # noqa: F401  (browser and desk are fixtures)
from tests.test_web_procedure import BPMN, PROCESS, confirm, upload, versions

# What counts as a change and how a problem reads is decided in Python, the same on every database; the
# versions' storage runs on both backends in tests/test_processes.py and test_migration.py. SQLite only, to keep
# CI within its time (as test_route_matrix).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

DI = "http://www.omg.org/spec/BPMN/20100524/DI"
MODELER = "http://camunda.org/schema/modeler/1.0"
CONDITION = "decision_days &lt; 60"          # on flow_requests_merge_to_gateway


def resaved(xml: str) -> str:
    """The diagram as a modeler saves it with nothing changed: shapes and edges in another order with new
    DI ids, re-indented, attributes in another order, `semantic:` for `bpmn:`, coordinates as decimals,
    and the modeler's own name and version."""
    root = etree.fromstring(xml.encode("utf-8"))
    for plane in root.iter(f"{{{DI}}}BPMNPlane"):
        plane[:] = list(reversed(list(plane)))
    for index, drawn in enumerate(root.iter(f"{{{DI}}}BPMNShape", f"{{{DI}}}BPMNEdge")):
        drawn.set("id", f"DI_{index}_generated")
    for node in root.iter(etree.Element):
        items = list(node.attrib.items())
        node.attrib.clear()
        for name, value in reversed(items):
            node.set(name, value)
    root.set("exporter", "Camunda Modeler")
    root.set("exporterVersion", "5.31.0")
    root.set(f"{{{MODELER}}}executionPlatform", "Camunda Platform")
    etree.indent(root, space="    ")
    out = etree.tostring(root, encoding="unicode")
    out = out.replace("bpmn:", "semantic:").replace("xmlns:bpmn=", "xmlns:semantic=")
    out = re.sub(r'(<dc:Bounds x=")(\d+)(")', r"\1\2.0\3", out, count=5)
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!-- saved by a modeler -->\n' + out


def moved(xml: str) -> str:
    """The shape of initial_review moved 40 px to the right, nothing else."""
    return xml.replace('<bpmndi:BPMNShape id="initial_review_di" bpmnElement="initial_review">\n'
                       '        <dc:Bounds x="490"',
                       '<bpmndi:BPMNShape id="initial_review_di" bpmnElement="initial_review">\n'
                       '        <dc:Bounds x="530"', 1)


CHANGES = {
    "renamed": lambda xml: xml.replace('name="调查取证"', 'name="调查取证与核实"'),
    "moved": moved,
    "condition": lambda xml: xml.replace(CONDITION, "decision_days &lt; 61", 1),
}


def test_the_canonical_form_ignores_what_a_modeler_rewrites_and_nothing_else(backend):     # (no database used)
    assert canonical_xml(resaved(BPMN)) == canonical_xml(BPMN)
    for name, change in CHANGES.items():
        assert change(BPMN) != BPMN, name
        assert canonical_xml(change(BPMN)) != canonical_xml(BPMN), name
    # A default namespace instead of a prefix, and an unprefixed xsi:type value under it.
    plain = '<definitions xmlns="{0}" xmlns:xsi="{1}"><c xsi:type="tFormalExpression">a</c></definitions>'
    prefixed = ('<b:definitions xmlns:b="{0}" xmlns:xsi="{1}"><b:c xsi:type="b:tFormalExpression"> a\n'
                '</b:c></b:definitions>')
    ns = ("http://www.omg.org/spec/BPMN/20100524/MODEL", "http://www.w3.org/2001/XMLSchema-instance")
    assert canonical_xml(plain.format(*ns)) == canonical_xml(prefixed.format(*ns))


# ---- through the upload page ------------------------------------------------------------------------
def test_a_diagram_saved_again_by_a_modeler_is_no_new_version(browser, desk):
    owner = as_(browser, "process_owner")
    r = upload(owner, resaved(BPMN), name="complaint_handling-v1-complaint_handling.bpmn")
    assert r.status_code == 200 and 'data-testid="no-change"' in r.text, text(r)
    assert "布局元素的顺序、空白、命名空间前缀和建模器名称的不同不算作修改" in text(r)
    assert 'data-testid="deploy-form"' not in r.text
    assert versions() == [1]


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_renamed_task_a_moved_shape_and_a_changed_condition_are_new_versions(browser, desk, change):
    owner = as_(browser, "process_owner")
    preview = upload(owner, resaved(CHANGES[change](BPMN)))     # saved by the modeler, too
    assert preview.status_code == 200 and 'data-testid="deploy-form"' in preview.text, text(preview)
    if change == "moved":      # the engine sees no change; the preview says what moved
        assert re.search(r'data-testid="diff-moved" data-element-id="initial_review"', preview.text)
    assert confirm(owner, preview).status_code == 302
    assert versions() == [1, 2]
    # The same change saved once more, in yet another order: nothing new.
    assert 'data-testid="no-change"' in upload(owner, resaved(resaved(CHANGES[change](BPMN)))).text
    assert versions() == [1, 2]


# ---- at startup ---------------------------------------------------------------------------------------
def test_the_deploy_at_start_registers_no_version_for_a_diagram_saved_again(app, tmp_path):
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    path = tmp_path / "processes" / "complaint_handling.bpmn"

    def start():
        started = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                             PROCESSES_DIR=tmp_path / "processes", FORMS_DIR=ROOT / "forms", DEPLOY_ON_START=True)
        deploy_on_start(started)
        fresh()
        return db.session.execute(select(ProcessVersion.version, ProcessVersion.content_hash)
                                  .where(ProcessVersion.process_id == "complaint_handling")
                                  .order_by(ProcessVersion.version)).all()

    first = start()
    assert [v for v, _ in first] == [1]
    path.write_text(resaved(BPMN), encoding="utf-8")
    assert start() == first
    path.write_text(resaved(moved(BPMN)), encoding="utf-8")
    assert [v for v, _ in start()] == [1, 2]
    path.write_text(moved(BPMN), encoding="utf-8")           # the moved diagram, re-saved the other way round
    assert [v for v, _ in start()] == [1, 2]
    # The original, saved again: content deployed before is not registered again (a restart never reverts).
    path.write_text(resaved(resaved(BPMN)), encoding="utf-8")
    assert [v for v, _ in start()] == [1, 2]


# ---- check problems in the page's language ----------------------------------------------------------
def both_processes() -> str:
    """customer_contact.bpmn with a process complaint_review beside its own: uploaded, it replaces
    complaint_review.bpmn, and customer_contact.bpmn holds the other process id once more."""
    mine = etree.fromstring((ROOT / "processes" / "customer_contact.bpmn").read_bytes())
    bpmn = "http://www.omg.org/spec/BPMN/20100524/MODEL"
    extra = etree.Element(f"{{{bpmn}}}process", id="complaint_review", isExecutable="true")
    etree.SubElement(extra, f"{{{bpmn}}}startEvent", id="review_start_copy")
    mine.insert(1, extra)
    return etree.tostring(mine, encoding="unicode")


def problems_on(response) -> list[tuple]:
    return [(code, eid, re.sub(r"\s+", " ", sentence).strip()) for eid, code, sentence in re.findall(
        r'data-testid="problem" data-element-id="([^"]*)" data-line="[^"]*" data-code="([^"]*)">.*?'
        r'data-testid="problem-text"[^>]*>(.*?)</td>', response.get_data(as_text=True), re.S)]


BROKEN = {
    "duplicate id": (both_processes, "both.bpmn", "duplicate_process_id",
                     "流程 id customer_contact 也在 complaint_review.bpmn 中：两个流程图不能包含同一个流程"),
    "bad condition": (lambda: BPMN.replace(CONDITION, "decision_days &lt;", 1), "complaint_handling.bpmn",
                      "expression_refused", "“可延期” (flow_requests_merge_to_gateway) 的条件无法运行"),
    "missing form": (lambda: BPMN.replace('"investigate"', '"investigate_v2"')
                     .replace(">investigate<", ">investigate_v2<"), "complaint_handling.bpmn", "form_missing",
                     "用户任务 “调查取证” (investigate_v2) 没有表单：请在 forms/ 中添加 investigate_v2.json"),
    "xml syntax": (lambda: BPMN.replace('<bpmn:userTask id="investigate"', '<bpmn:userTask id="investigate" <<'),
                   "complaint_handling.bpmn", "not_well_formed", "不是格式正确的 XML"),
    "not bpmn": (lambda: '<?xml version="1.0"?>\n<html><body>hello</body></html>', "page.bpmn", "not_bpmn",
                 "这不是 BPMN 2.0 流程图"),
    "not uploadable": (lambda: BPMN, "notes.txt", "not_uploadable", "只能上传 .bpmn（流程图）和 .dmn（决策表）文件"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_check_problem_is_a_sentence_in_the_pages_language(browser, desk, case):
    content, name, code, words = BROKEN[case]
    owner = as_(browser, "process_owner")
    r = upload(owner, content(), name=name)
    assert r.status_code == 422
    found = problems_on(r)
    assert any(c == code and words in sentence for c, _eid, sentence in found), found
    assert all(c != ENGINE for c, _eid, _sentence in found), found
    assert versions() == [1]


def test_problems_in_english_and_an_unknown_one_named_by_its_element(app, browser, desk):
    owner = as_(browser, "process_owner")
    owner.get("/language/en?next=/")
    r = upload(owner, BPMN.replace('"investigate"', '"investigate_v2"').replace(">investigate<", ">investigate_v2<"))
    assert "The user task “调查取证” (investigate_v2) has no form: add investigate_v2.json to forms/" in text(r)
    unknown = Problem("x.bpmn", "task_1", 3, "Something new went wrong", element_name="审核")
    with app.test_request_context("/?lang=zh_Hans_CN"):
        assert problem_text(unknown) == "“审核” (task_1)：Something new went wrong"
    assert problem_text(Problem("x.bpmn", None, None, "odd")).endswith("odd")


# ---- what a version changed, on its diagram ---------------------------------------------------------
def diff_data(response) -> dict:
    found = re.search(r'<script type="application/json" id="diagram-diff-data">(.*?)</script>',
                      response.get_data(as_text=True), re.S)
    return json.loads(found.group(1)) if found else None


def test_the_version_page_shows_what_the_version_changed(app, browser, desk, tmp_path):
    renamed_and_moved = lambda xml: moved(CHANGES["renamed"](remove_re_evaluation(xml)))   # noqa: E731
    assert deploy_changed(tmp_path, renamed_and_moved) == 2
    reader = as_(browser, "compliance")
    plain = reader.get(f"{PROCESS}/v2")
    assert diff_data(plain) is None and 'data-testid="changes-link"' in plain.text
    assert 'data-testid="changes-link"' not in reader.get(f"{PROCESS}/v1").text       # nothing before it
    r = reader.get(f"{PROCESS}/v2?changes=1")
    assert r.status_code == 200
    data = diff_data(r)
    assert "investigate" in data["marks"]["changed"] and "initial_review" in data["marks"]["moved"]
    assert "initial_review" not in data["marks"]["changed"] and "re_evaluation" not in sum(data["marks"].values(), [])
    assert data["labels"]["moved"] == "移动"
    assert re.search(r'data-testid="diagram-diff-changed" data-element-id="investigate"', r.text)
    assert re.search(r'data-testid="diagram-diff-moved" data-element-id="initial_review"', r.text)
    removed = re.search(r'data-testid="diagram-diff-removed" data-element-id="re_evaluation">.*?</li>', r.text, re.S)
    assert removed and f"{PROCESS}/v1?element=re_evaluation" in removed.group(0)
    assert "版本 2 相对版本 1 的修改" in text(r)
    # The colours say what changed: the load overlays are not drawn over them.
    from tests.test_web_procedure import diagram_data
    assert diagram_data(r)["overlays"] == []

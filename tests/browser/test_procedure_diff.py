"""The modeler round trip in a real browser: the version page colours what the version changed on its
diagram (bpmn-js markers, under the Content-Security-Policy), and a diagram exported again by bpmn-js
itself, uploaded through the procedure page, is no new version."""
import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from tests.browser.test_csp import csp_violations
from tests.browser.test_diagrams import login, vendored_viewer  # noqa: F401  (skips without bpmn-js)
from tests.test_migration import deploy_changed, remove_re_evaluation
from tests.test_procedure_roundtrip import CHANGES, moved
from tests.test_web_procedure import BPMN

# The browser's side of this is the same on every database (the data paths behind it run on both backends in
# the non-browser tests): SQLite only, to keep CI within its time.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PROCESS = "/procedure/complaint_handling"


def test_the_version_page_colours_what_the_version_changed(app, people, page: Page, tmp_path, screenshots):
    assert deploy_changed(tmp_path, lambda xml: moved(CHANGES["renamed"](remove_re_evaluation(xml)))) == 2
    db.session.remove()
    violations = csp_violations(page)
    login(page, "compliance")
    page.goto(f"{PROCESS}/v2")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready", timeout=20000)
    assert page.locator("g.djs-element.diff-changed").count() == 0          # only on request
    page.get_by_test_id("changes-link").click()
    diagram = page.get_by_test_id("diagram")
    expect(diagram).to_have_attribute("data-diff", "ready", timeout=20000)
    expect(diagram.locator('g.djs-element.diff-changed[data-element-id="investigate"]')).to_have_count(1)
    expect(diagram.locator('g.djs-element.diff-moved[data-element-id="initial_review"]')).to_have_count(1)
    expect(diagram.locator('g.djs-element.diff-changed[data-element-id="initial_review"]')).to_have_count(0)
    expect(page.get_by_test_id("diff-investigate")).to_have_text("修改")
    # The colour is drawn: the task's outline is the legend's blue.
    stroke = diagram.locator('g.djs-element.diff-changed[data-element-id="investigate"] .djs-visual > :first-child')
    assert stroke.evaluate("node => getComputedStyle(node).stroke") == "rgb(29, 95, 168)"
    expect(page.get_by_test_id("diagram-diff-removed").first).to_be_visible()
    screenshots(page, "procedure-diff", height=1100)
    assert violations == []


def test_a_diagram_exported_again_by_bpmn_js_is_no_new_version(app, people, page: Page):
    login(page, "process_owner")
    page.goto(PROCESS)
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready", timeout=20000)
    xml = page.evaluate("async () => (await window.procedureViewer.saveXML({ format: true })).xml")
    assert xml != BPMN            # bpmn-js's own serialisation of the diagram, not the stored text
    page.get_by_test_id("upload-input").set_input_files(
        files=[{"name": "complaint_handling-v1-complaint_handling.bpmn", "mimeType": "application/xml",
                "buffer": xml.encode("utf-8")}])
    page.get_by_test_id("upload-button").click()
    expect(page.get_by_test_id("no-change")).to_be_visible()
    expect(page.get_by_test_id("deploy-form")).to_have_count(0)

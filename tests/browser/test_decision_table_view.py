"""The decision table on the procedure page in a real browser (Debian's chromium): the dmn-js viewer,
served from app/static/vendor/dmn-js (make vendor, nothing from outside), draws the deployed
management-decision table read-only — its inputs, its three rules and their annotations — for a
compliance reader, under the page's Content-Security-Policy. Screenshot:
test-artifacts/screenshots/<backend>/procedure-decision-table.png."""
import os

import pytest
from playwright.sync_api import Page, expect

from app.config import ROOT
from tests.browser.test_csp import csp_violations
from tests.browser.test_diagrams import login, watch_requests

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = [pytest.mark.clause("C-3.3.4"), pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

DMN_VIEWER = ROOT / "app" / "static" / "vendor" / "dmn-js" / "dmn-viewer.production.min.js"


@pytest.fixture(autouse=True)
def vendored_dmn_viewer():
    if not DMN_VIEWER.exists():
        message = "dmn-js is not vendored: run `make vendor`"
        if os.environ.get("REQUIRE_ALL_BACKENDS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def test_the_procedure_page_draws_the_decision_table_read_only(app, people, page: Page, base_url, screenshots):
    outside = watch_requests(page, base_url)
    violations = csp_violations(page)
    login(page, "compliance")
    page.goto("/procedure/complaint_handling")

    view = page.locator('[data-testid="decision-table"][data-decision-id="needs_management_decision"]') \
        .get_by_test_id("decision-table-view")
    expect(view).to_have_attribute("data-state", "ready")
    expect(view.locator(".decision-table-name")).to_contain_text("是否需管理层决策")
    expect(view.locator(".hit-policy")).to_contain_text("F")                    # FIRST
    header = view.locator("thead")
    expect(header).to_contain_text("风险评估")
    expect(header).to_contain_text("赔付金额（元）")
    expect(header).to_contain_text("需管理层决策")

    rows = view.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text('"high"')
    expect(rows.nth(0)).to_contain_text("True")
    expect(rows.nth(0)).to_contain_text("初审评为高风险")
    expect(rows.nth(1)).to_contain_text("> 50000")
    expect(rows.nth(2)).to_contain_text("False")
    expect(rows.nth(2)).to_contain_text("兜底规则")
    for row in range(3):
        expect(rows.nth(row)).to_be_visible()
        expect(rows.nth(row)).to_contain_text("[C-3.3.4][C-6.3]")
    # Read-only: the viewer, not the modeler; nothing to edit in a cell.
    expect(view.locator("[contenteditable='true']")).to_have_count(0)
    expect(page.get_by_test_id("download-dmn")).to_have_attribute(
        "href", "/procedure/complaint_handling/v1/management_decision.dmn")

    # The bpmn.io watermark (its licence): its style attributes are blocked by the policy, and the
    # page's stylesheet puts it where dmn-js would, in the bottom right corner of the table's box.
    watermark = view.locator(".bjs-powered-by")
    expect(watermark).to_be_visible()
    expect(watermark).to_have_css("position", "absolute")
    box, mark = view.bounding_box(), watermark.bounding_box()
    assert box["x"] + box["width"] / 2 < mark["x"] and mark["y"] + mark["height"] <= box["y"] + box["height"]

    view.scroll_into_view_if_needed()
    screenshots(page, "procedure-decision-table")
    assert outside() == ([], [])
    assert violations == []         # nothing but the watermark's style attributes (see tests/browser/test_csp.py)

"""The analysis page in a real browser (Debian's chromium): ECharts, served from
app/static/vendor/echarts (make vendor, nothing from outside), draws the charts on canvases under the
page's Content-Security-Policy; a click on a bar of the category chart opens the complaints behind it,
and so does the link in the table under a chart (the charts' accessible and printable form).
Screenshot: test-artifacts/screenshots/<backend>/analysis-01-page.png."""
import os
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from app.config import ROOT
from app.extensions import db
from tests.browser.test_csp import csp_violations
from tests.browser.test_diagrams import login, watch_requests
from tests.test_analysis import many

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = [pytest.mark.clause("C-5.4"), pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

ECHARTS = ROOT / "app" / "static" / "vendor" / "echarts" / "echarts.common.min.js"


@pytest.fixture(autouse=True)
def vendored_echarts():
    if not ECHARTS.exists():
        message = "echarts is not vendored: run `make vendor`"
        if os.environ.get("REQUIRE_ALL_BACKENDS") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def quarter(app, people):
    many(5, date(2026, 4, 10), category="claim_delay")
    many(14, date(2026, 7, 2), channel="website", category="claim_delay")
    many(6, date(2026, 8, 2), channel="hotline", category="claim_amount", product_line="motor")
    many(3, date(2026, 9, 2), channel="email", category="service_attitude")
    db.session.commit()


def bar_point(page: Page, chart_id, category_index, value):
    """The window coordinates of a point inside a bar of a horizontal bar chart (ECharts' own conversion),
    the chart scrolled into view."""
    page.get_by_test_id(chart_id).scroll_into_view_if_needed()
    x, y = page.evaluate("([id, i, v]) => echarts.getInstanceByDom(document.getElementById(id))"
                         ".convertToPixel({seriesIndex: 0}, [v, i])", [chart_id, category_index, value])
    box = page.get_by_test_id(chart_id).bounding_box()
    return box["x"] + x, box["y"] + y


def test_the_analysis_page_draws_its_charts_and_a_bar_opens_its_complaints(app, people, quarter, page: Page,
                                                                          base_url, screenshots):
    outside = watch_requests(page, base_url)
    violations = csp_violations(page)
    login(page, "management")
    page.goto("/analysis?quarter=2026Q3")
    for chart_id in ("chart-trend", "chart-category", "chart-channel", "chart-product_line", "chart-top_category",
                     "chart-deadlines", "chart-satisfaction"):
        expect(page.get_by_test_id(chart_id)).to_have_attribute("data-state", "ready")
        expect(page.get_by_test_id(chart_id).locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("chart-cause_code")).to_have_attribute("data-state", "ready")     # all uncoded: one bar
    top = page.get_by_test_id("table-top_category").locator("tbody tr").first
    expect(top).to_contain_text("理赔纠纷 › 理赔时效")
    expect(top).to_have_class("stands-out")                                 # 5 -> 14: z = 4.0
    screenshots(page, "analysis-01-page", height=1400)

    # A click on the first bar of the category chart (理赔时效, 14 complaints).
    page.mouse.click(*bar_point(page, "chart-category", 0, 7))
    expect(page).to_have_url(f"{base_url}/analysis/complaints?from=2026-07-01&to=2026-09-30&category=claim_delay")
    expect(page.get_by_test_id("drilldown-row")).to_have_count(14)
    expect(page.get_by_test_id("drilldown-total")).to_contain_text("14")

    # The same drill-down without the chart: the table's link (keyboard, screen reader, print).
    page.go_back()
    page.get_by_test_id("table-by_channel").get_by_role("link", name="电话热线").click()
    expect(page.get_by_test_id("drilldown-row")).to_have_count(6)
    first = page.get_by_test_id("drilldown-row").first
    number = first.get_attribute("data-complaint")
    expect(first.get_by_test_id("complaint-link")).to_have_attribute("href", f"/complaints/{number}")   # its own rules
    assert outside() == ([], [])
    assert violations == []

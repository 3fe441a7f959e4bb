"""The quarterly review in a real browser (Debian's chromium): its diagram on the procedure page, management
recording an improvement measure with its owner chosen from a list, and the owner finding it in their own
queue with the measure named. Screenshots go to test-artifacts/screenshots/<backend>/."""
import pytest
import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from app import quarterly
from app.analysis import quarter
from app.extensions import db
from app.timeutil import business_today
from tests.browser.test_diagrams import element, login, vendored_viewer  # noqa: F401  (the fixture)

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

MEETING = {"meeting_date": "2026-10-09", "attendees": "王经理", "problems_discussed": "理赔时效", "minutes": "纪要",
           "decisions": "一项措施", "measures_needed": True, "training_needed": False}


def test_the_review_diagram_and_a_measure_from_meeting_to_owner(app, people, page: Page, screenshots):
    runtime = app.extensions["runtime"]
    change = quarterly.start_review(runtime, quarter("2026Q3"), "test")
    [meeting] = change.created_tasks
    r = app.test_client().post(f"/api/v1/tasks/{meeting.id}/complete", json={"data": MEETING},
                               headers=people["management"].headers)
    assert r.status_code == 200, r.json
    db.session.remove()

    login(page, "management")
    page.goto("/procedure/quarterly_review")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    for element_id in ("review_meeting", "define_measure", "carry_out_measures", "plan_training", "hold_training"):
        expect(element(page, element_id)).to_have_count(1)
    screenshots(page, "30-quarterly-review-diagram", height=900)

    page.goto("/")
    page.locator('[data-testid="queue-row"][data-step="define_measure"] [data-testid="task-link"]').click()
    expect(page.get_by_test_id("task-title")).to_contain_text("登记改进措施")
    expect(page.get_by_test_id("report-link")).to_contain_text("2026Q3")
    page.get_by_test_id("input-measure_title").fill("理赔材料清单一次性告知")
    page.get_by_test_id("input-measure_category").select_option("claim_documents")
    page.get_by_test_id("input-measure_cause").select_option("process_design")
    page.get_by_test_id("input-measure_owner").select_option("measure_owner")
    due = (business_today() + timedelta(days=90)).isoformat()
    page.get_by_test_id("input-measure_due_on").fill(due)
    page.get_by_test_id("input-measure_success_criteria").fill("下季度该类投诉下降一半")
    page.get_by_test_id("input-another_measure-false").check()
    screenshots(page, "31-define-measure")
    page.get_by_test_id("submit-task").click()
    expect(page).to_have_url(re.compile(r"/$"))

    page.wait_for_load_state("networkidle")     # no response still on its way to set the session again
    page.context.clear_cookies()
    login(page, "measure_owner")
    row = page.locator('[data-testid="queue-mine"] [data-testid="queue-row"][data-step="carry_out_measure"]')
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("task-subject")).to_have_text(f"理赔材料清单一次性告知 · {due}")
    screenshots(page, "32-measure-owner-queue", height=700)

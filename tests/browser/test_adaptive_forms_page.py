"""A form that adapts, in a real browser (app/static/forms.js): on the initial review, choosing "不予受理"
shows the rejection reason and makes it required, "受理" hides it again (and the browser does not send it);
a saved draft comes back when the page is opened again. Screenshot: adaptive-01-reject."""
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_diagrams import login
from tests.flow import Desk

# The browser's side of this is the same on every database (the data paths behind it run on both backends in
# the non-browser tests): SQLite only, to keep CI within its time.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_the_review_form_adapts_and_a_draft_comes_back(app, people, page: Page, client, screenshots):
    desk = Desk(client, people)
    number = desk.register()
    login(page, "customer_service")
    page.goto(f"/tasks/{desk.task_id(number, 'initial_review')}")
    reason, signs = page.get_by_test_id("field-rejection_reason"), page.get_by_test_id("field-malicious_indicators")
    expect(reason).to_be_hidden()
    expect(signs).to_be_hidden()

    page.get_by_test_id("input-decision-reject").check()
    expect(reason).to_be_visible()
    expect(page.get_by_test_id("input-rejection_reason")).to_have_attribute("required", "")
    expect(reason.locator("[data-when-required]")).to_be_visible()
    expect(signs).to_be_hidden()
    page.get_by_test_id("input-rejection_reason").fill("超出受理范围")
    screenshots(page, "adaptive-01-reject", height=800)

    page.get_by_test_id("input-decision-accept").check()
    expect(reason).to_be_hidden()
    expect(page.get_by_test_id("input-rejection_reason")).to_be_disabled()

    page.get_by_test_id("input-decision-reject").check()
    page.get_by_test_id("input-risk_level-medium").check()
    page.get_by_test_id("input-review_notes").fill("待核对保单")
    page.get_by_test_id("save-draft").click()
    expect(page.get_by_test_id("draft-note")).to_contain_text("草稿保存于")
    page.reload()
    expect(page.get_by_test_id("input-decision-reject")).to_be_checked()
    expect(page.get_by_test_id("input-review_notes")).to_have_value("待核对保单")
    expect(page.get_by_test_id("input-rejection_reason")).to_have_value("超出受理范围")
    expect(reason).to_be_visible()

"""The customer's own page on a phone (390×844, touch, Chinese browser) in the real chromium: the link
from a message opens it, the customer reads where the complaint stands and what we sent, says they
are not satisfied (first without the reason, which the form asks for, then with it) and sees the
result; no page scrolls sideways and none breaks the Content-Security-Policy. Screenshots go to
test-artifacts/screenshots/<backend>/portal-*.png."""
import re

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from tests.test_portal import at_confirmation, desk, link_token  # noqa: F401  (desk is a fixture)

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server, **PHONE)
    page = context.new_page()
    page.violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.violations.append(m.text))
    yield page
    context.close()


def fits(page: Page):
    """Nothing wider than the screen: the page never scrolls sideways. Measured once the page has loaded
    (a click that navigates returns before the new document exists)."""
    page.wait_for_load_state()
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth"), page.url


def test_the_customer_confirms_dissatisfied_on_a_phone(app, desk, phone: Page, screenshots):  # noqa: F811
    number = at_confirmation(desk)
    token = link_token(app, number)
    db.session.remove()

    phone.goto(f"/my/{token}")
    expect(phone).to_have_url(re.compile(r"/my/$"))
    expect(phone.get_by_test_id("complaint-number")).to_have_text(number)
    expect(phone.get_by_test_id("status")).to_have_attribute("data-status", "waiting_for_you")
    expect(phone.get_by_test_id("customer-phone")).to_have_text("138****5678")
    expect(phone.get_by_test_id("message").first).to_be_visible()
    fits(phone)
    screenshots(phone, "portal-01-page")

    phone.get_by_test_id("answer-customer_confirmation").click()
    expect(phone.get_by_test_id("answer-form")).to_be_visible()
    fits(phone)
    screenshots(phone, "portal-02-confirm")
    phone.get_by_test_id("input-satisfied-false").check()
    phone.get_by_test_id("input-customer_feedback").fill("赔付金额低于预期")
    phone.get_by_test_id("answer-form").evaluate("form => form.noValidate = true")   # the server's check
    phone.get_by_test_id("submit").click()
    expect(phone.get_by_test_id("error-dissatisfaction_reasons")).to_be_visible()
    expect(phone.get_by_test_id("input-customer_feedback")).to_have_value("赔付金额低于预期")
    expect(phone.get_by_test_id("input-satisfied-false")).to_be_checked()
    fits(phone)
    screenshots(phone, "portal-03-reason-missing")

    phone.get_by_test_id("input-dissatisfaction_reasons").fill("医疗费用没有计入赔付，请重新核算。")
    phone.get_by_test_id("submit").click()
    expect(phone.get_by_test_id("done")).to_have_attribute("data-what", "answered")
    expect(phone.get_by_test_id("answers")).to_contain_text("医疗费用没有计入赔付")
    fits(phone)
    screenshots(phone, "portal-04-recorded")

    phone.get_by_test_id("back").click()
    expect(phone.get_by_test_id("status")).to_have_attribute("data-status", "being_handled")
    phone.get_by_test_id("lang-en").click()
    expect(phone.get_by_test_id("next")).to_contain_text("What happens next")
    fits(phone)
    screenshots(phone, "portal-05-page-english")
    assert phone.violations == []


def test_the_customer_is_satisfied_and_rates_us_on_a_phone(app, desk, phone: Page, screenshots):  # noqa: F811
    number = at_confirmation(desk)
    token = link_token(app, number)
    db.session.remove()

    phone.goto(f"/my/{token}")
    phone.get_by_test_id("answer-customer_confirmation").click()
    phone.get_by_test_id("input-satisfied-true").check()
    phone.get_by_test_id("input-customer_feedback").fill("处理及时，谢谢")
    phone.get_by_test_id("submit").click()
    expect(phone.get_by_test_id("done")).to_have_attribute("data-what", "answered")
    phone.get_by_test_id("back").click()
    phone.get_by_test_id("open-survey").click()
    expect(phone.get_by_test_id("survey-form")).to_be_visible()
    for name in ("overall", "speed", "communication", "fairness", "recommend"):
        phone.get_by_test_id(f"input-{name}-5").check()
    fits(phone)
    screenshots(phone, "portal-06-survey")
    phone.get_by_test_id("submit").click()
    expect(phone.get_by_test_id("done")).to_have_attribute("data-what", "survey")
    phone.get_by_test_id("back").click()
    expect(phone.get_by_test_id("status")).to_be_visible()        # back on the page: the done page has none
    expect(phone.get_by_test_id("action-survey")).to_have_count(0)
    fits(phone)
    assert phone.violations == []

"""The Content-Security-Policy in a real browser: every page of a complaint's life (login, home, task,
complaint with its diagram, case file, procedure diagram) works without a single CSP violation, and a
script injected into a page (as an XSS would) does not run."""
import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from tests.browser.test_diagrams import login, vendored_viewer  # noqa: F401  (skips without bpmn-js)
from tests.flow import Desk

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


# dmn-js 17 (the decision tables on the procedure page) writes its bpmn.io watermark as HTML with style
# attributes; the policy blocks them and app/static/decision_table.css places the watermark instead.
# These reports, from that bundle, are the only ones tolerated.
DMN_VIEWER = "/static/vendor/dmn-js/dmn-viewer.production.min.js"


def dmn_watermark_style(message) -> bool:
    return message.text.startswith("Applying inline style") and message.location.get("url", "").endswith(DMN_VIEWER)


def csp_violations(page: Page) -> list:
    """Chromium reports each blocked script, style or frame on the console."""
    found = []
    page.on("console", lambda m: "Content Security Policy" in m.text and not dmn_watermark_style(m)
            and found.append(m.text))
    return found


def test_the_pages_and_diagrams_run_under_the_policy(app, people, page: Page):
    desk = Desk(app.test_client(), people)
    number = desk.register()
    desk.walk(number, ["initial_review"])
    task_id = desk.task_id(number, "investigate")
    db.session.remove()
    violations = csp_violations(page)

    login(page, "claims_specialist")
    page.goto(f"/tasks/{task_id}")
    expect(page.get_by_test_id("current-user")).to_be_visible()
    page.goto(f"/complaints/{number}")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    page.goto(f"/complaints/{number}/case-file")
    expect(page.get_by_test_id("print-button")).to_be_visible()
    page.goto("/procedure/complaint_handling")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    page.get_by_test_id("diagram").locator('g.djs-element[data-element-id="investigate"]').hover()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("submit-login")).to_be_visible()
    assert violations == []


def test_an_injected_inline_script_does_not_run(app, people, page: Page):
    violations = csp_violations(page)
    page.goto("/login")
    # page.evaluate itself is the browser's devtools, outside the page's policy; what it adds to the
    # page is what an attacker's markup would be.
    page.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.injected = "script";';
        document.body.appendChild(script);
        const button = document.createElement('button');
        button.id = 'injected-button';
        button.setAttribute('onclick', 'window.injected = "handler"');
        button.textContent = 'x';
        document.body.appendChild(button);
    }""")
    page.click("#injected-button")       # a handler that ran would have run during the click
    assert page.evaluate("() => window.injected === undefined")
    assert len(violations) == 2, violations


def test_the_api_reference_page_runs_under_the_policy(app, people, page: Page, screenshots):
    """Swagger UI, vendored from npm, shows every operation of the OpenAPI document with no CSP
    violation and no request to another server."""
    from app.api.openapi import api_rules
    violations, elsewhere = csp_violations(page), []
    page.on("request", lambda r: r.url.startswith("http://127.0.0.1") or elsewhere.append(r.url))
    login(page, "compliance")
    page.goto("/api/v1/docs")
    expect(page.get_by_test_id("api-reference")).to_have_attribute("data-state", "ready")
    operations = page.locator(".opblock")
    expect(operations).to_have_count(len(api_rules(app)))
    screenshots(page, "20-api-reference", height=900)
    assert violations == [] and elsewhere == []


def test_management_sees_the_tasks_nobody_may_work(app, people, page: Page, screenshots):
    from sqlalchemy import update

    from app.models import User
    desk = Desk(app.test_client(), people)
    db.session.execute(update(User).where(User.username == "claims_specialist_2").values(active=False))
    db.session.commit()
    number = desk.register(claim_handler="claims_specialist")
    desk.walk(number, ["initial_review"])
    db.session.remove()
    login(page, "management")
    expect(page.get_by_test_id("count-unstaffed")).to_have_text("1")
    page.get_by_test_id("nav-unstaffed").click()
    section = page.get_by_test_id("unstaffed")
    expect(section.get_by_test_id("unstaffed-badge")).to_be_visible()
    screenshots(page, "21-unstaffed", height=700)
    section.get_by_test_id("find-someone").click()
    expect(page).to_have_url(f"/complaints/{number}")

"""Every page on a phone (390×844) and a laptop (1366×768) in the real chromium: no page scrolls
sideways, and its main action (the Claim button of the queue, the submit button of a form, …) lies
inside the window's width (each page is opened on the phone, then the window widened to the laptop's). The pages are the web GET routes of app.url_map: a page added without a
visit here fails test_every_web_page_is_visited. On the phone the top bar is a menu and the queue is
cards. Screenshots: test-artifacts/screenshots/<backend>/phone-01-home.png, phone-02-task.png,
phone-03-menu.png.

On SQLite only: the layout is the browser's, the same on every backend, and the pages' database paths
are covered per backend elsewhere; running it twice would double its time for nothing."""
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app import accounts, quarterly
from app.analysis import quarter
from app.extensions import db
from app.models import AnalysisReport
from tests.browser.test_diagrams import login, vendored_viewer  # noqa: F401  (skips without bpmn-js)
from tests.flow import Desk
from tests.test_analysis import many
from tests.test_migration import deploy_changed, safe_change
from tests.test_portal import TO_CONFIRMATION, link_token

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}

# GET routes that are no page: files, JSON, redirects, the icon.
NOT_PAGES = {
    "analysis.export_complaints", "analysis.export_tables", "analysis.export_report",     # CSV / Excel
    "complaints.case_file_json", "procedure.procedure_stats", "procedure.procedure_file",  # JSON, BPMN XML
    "language.switch", "portal.enter", "portal.language", "notifications.settings_page",  # redirects
    "sso.start", "sso.callback", "sso.logout",          # redirects (SSO; the logout's page: test_sso_browser)
    "language.favicon", "complaints.case_file_zip", "evidence.download", "complaints.export",  # files
    "health.healthz", "health.readyz", "health.scrape",                                   # probes, metrics
    "jobs.progress", "jobs.download",                                                     # JSON, a file
    "auth.second_factor",                  # the code step of a password login: the login box again, after a password
}
# endpoint -> (who, path, the test id of its main action; the page is ready when that is visible).
#   who: the role logging in, "customer" (the portal, by a message's link) or "" (nobody logged in).
PAGES = {
    "auth.login": ("", "/login", "submit-login"),
    "tasks.home": ("customer_service", "/", "claim-button"),
    "tasks.task": ("customer_service", "/tasks/{review}", "submit-task"),
    "complaints.register": ("customer_service", "/complaints/new", "submit-register"),
    "complaints.search": ("customer_service", "/complaints", "search-button"),
    "notifications.page": ("management", "/notifications", "digest-save"),
    "team.page": ("management", "/team", "bulk-assign"),
    "complaints.complaint": ("customer_service", "/complaints/{confirming}", "claim-button"),
    "complaints.case_file_page": ("customer_service", "/complaints/{confirming}/case-file", "print-button"),
    "complaints.withdraw": ("customer_service", "/complaints/{confirming}/withdraw", "submit-request"),
    "complaints.review_request": ("customer_service", "/complaints/{confirming}/review-request", "submit-request"),
    "complaints.case_action": ("claims_specialist", "/complaints/{investigating}/actions/extension_requested",
                               "submit-action"),
    "analysis.page": ("management", "/analysis?quarter=2026Q3", "analyse"),
    "analysis.complaints": ("management", "/analysis/complaints?quarter=2026Q3", "complaint-link"),
    "analysis.report": ("management", "/analysis/reports/{report}", "print"),
    "procedure.procedures": ("process_owner", "/procedure", "procedure-row"),
    "procedure.procedure": ("process_owner", "/procedure/complaint_handling", "diagram"),
    "procedure.procedure_version": ("process_owner", "/procedure/complaint_handling/v1", "diagram"),
    "procedure.procedure_migrate": ("process_owner", "/procedure/complaint_handling/migrate", "migrate-button"),
    "procedure.traceability": ("process_owner", "/traceability", "trace-table"),
    "jobs.jobs": ("process_owner", "/jobs", "job-row"),
    "jobs.job": ("process_owner", "/jobs/{job}", "job-cancel"),
    "api.reference_page": ("process_owner", "/api/v1/docs", "api-reference"),
    "portal.home": ("customer", "/my/", "answer-customer_confirmation"),
    "portal.answer": ("customer", "/my/answer/{confirmation}", "submit"),
    "portal.withdraw": ("customer", "/my/withdraw", "submit"),
    "portal.review": ("customer", "/my/review", "submit"),
    "portal.survey": ("customer", "/my/survey", "problem"),
    "account.page": ("customer_service", "/account", "change-password"),
    "account.second_factor": ("process_owner", "/account/second-factor", "confirm-code"),
    "account.reset": ("", "/password/reset/{reset}", "set-password"),
    "admin.users": ("admin", "/admin/users", "new-user"),
    "admin.new": ("admin", "/admin/users/new", "save-user"),
    "admin.edit": ("admin", "/admin/users/{user}", "save-user"),
}
# Page kinds without a route of their own: the error page, the home page of a role with no queue.
OTHER_PAGES = {
    "error": ("customer_service", "/complaints/TS-20260101-999999", "error-page"),
    "no_work": ("process_owner", "/", "procedure-link"),
}
# Where English words are longer than the Chinese (the filters, the form labels): on the phone in English too.
IN_ENGLISH = {"tasks.home", "tasks.task", "complaints.register", "complaints.search", "analysis.page",
              "notifications.page", "admin.users", "admin.edit", "account.page", "account.second_factor", "jobs.job"}
SCREENSHOTS = {"tasks.home": "phone-01-home", "tasks.task": "phone-02-task", "notifications.page": "phone-04-notifications"}
LAPTOP_SCREENSHOTS = {"admin.users": "admin-01-users", "account.second_factor": "admin-02-second-factor"}


def test_every_web_page_is_visited(app):
    found = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods
             and (not rule.rule.startswith("/api/") or rule.endpoint == "api.reference_page")
             and rule.endpoint != "static" and not rule.endpoint.endswith(".static")}
    assert found - NOT_PAGES == set(PAGES), "add the page to PAGES (or, if it is no page, to NOT_PAGES)"


def test_the_icon_is_served_to_anyone(app):
    r = app.test_client().get("/favicon.ico")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml" and b"<svg" in r.data
    assert "max-age=86400" in r.headers["Cache-Control"]


@pytest.fixture
def world(app, people, tmp_path):
    """What the pages show: a complaint waiting for its initial review, one under investigation, one
    waiting for the customer's confirmation (and its link), a second version of the procedure to move
    to, a quarter of complaints to analyse and its stored report."""
    desk = Desk(app.test_client(), people)
    fresh, investigating, confirming = desk.register(), desk.register(), desk.register()
    desk.walk(investigating, ["initial_review"])
    desk.walk(confirming, TO_CONFIRMATION)
    values = {"review": desk.task_id(fresh, "initial_review"), "investigating": investigating,
              "confirming": confirming, "confirmation": desk.task_id(confirming, "customer_confirmation")}
    for month in (7, 8, 9):
        for day in range(1, 29, 3):
            many(day % 4 + 1, date(2026, month, day), channel="website")
    db.session.commit()
    deploy_changed(tmp_path, safe_change)
    quarterly.start_review(app.extensions["runtime"], quarter("2026Q3"), "test")
    values["report"] = db.session.execute(select(AnalysisReport.id)).scalars().first()
    values["token"] = link_token(app, confirming)
    values["job"] = migration_job(fresh)          # a background job (app/jobs/) waiting to move one complaint
    someone = people["training"].user
    values["user"] = someone.id
    values["reset"] = accounts.reset_link_token(db.session, "admin", someone, timedelta(hours=24))
    db.session.commit()
    db.session.remove()
    return values


def migration_job(number) -> int:
    from app.jobs import migration, store
    from app.models import ProcessInstance, ProcessVersion
    target = db.session.execute(select(ProcessVersion).order_by(ProcessVersion.id.desc())
                                .where(ProcessVersion.process_id == "complaint_handling")).scalars().first()
    instance_id = db.session.execute(select(ProcessInstance.id).where(ProcessInstance.business_key == number)).scalar_one()
    job = store.create(db.session, migration.KIND, "process_owner", migration.params(target),
                       migration.items([(instance_id, number, 1)]))
    db.session.commit()
    return job.id


def problems(page: Page, test_id) -> list:
    """What is wrong with the page as the window shows it now: it scrolls sideways (and which elements
    stick out), or its main action lies outside the window's width."""
    found = []
    scroll_width, width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if scroll_width > width:
        culprits = page.evaluate("""width => [...document.querySelectorAll('body *')]
            .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; })
            .slice(0, 4).map(e => `${e.tagName}.${e.className}`)""", width)
        found.append(f"scrolls sideways: {scroll_width} > {width} ({', '.join(culprits)})")
    box = page.get_by_test_id(test_id).first.bounding_box()
    if box is None or box["x"] < 0 or box["x"] + min(box["width"], 48) > width:
        found.append(f"its main action {test_id} is outside the window: {box}")
    return found


def show(page: Page, path, test_id):
    """Open the page and wait until it is drawn: its main action visible, nothing loading (the diagrams,
    the charts, Swagger UI)."""
    page.goto(path)
    expect(page.get_by_test_id(test_id).first).to_be_visible()
    expect(page.locator("[data-state=loading]")).to_have_count(0, timeout=15_000)


def check(page: Page, pages: dict, values: dict, screenshots) -> list:
    """Each page on the phone, then (the same page, the window widened) on the laptop; some in English."""
    wrong = []
    for name, (_who, path, test_id) in pages.items():
        url = path.format(**values)
        page.set_viewport_size(PHONE)
        show(page, url, test_id)
        wrong += [f"phone {name} {url}: {p}" for p in problems(page, test_id)]
        if name in SCREENSHOTS:
            screenshots(page, SCREENSHOTS[name])
        page.set_viewport_size(LAPTOP)
        wrong += [f"laptop {name} {url}: {p}" for p in problems(page, test_id)]
        if name in LAPTOP_SCREENSHOTS:
            screenshots(page, LAPTOP_SCREENSHOTS[name])
    page.set_viewport_size(PHONE)
    for name, (_who, path, test_id) in pages.items():
        if name in IN_ENGLISH:
            url = path.format(**values)
            show(page, url + ("&" if "?" in url else "?") + "lang=en", test_id)
            wrong += [f"phone English {name} {url}: {p}" for p in problems(page, test_id)]
    return wrong


def menu_folds_on_the_phone(page: Page, screenshots):
    """The top bar: on the phone a menu button, its links hidden until it is opened; on the laptop the links."""
    page.set_viewport_size(PHONE)
    page.goto("/")
    expect(page.get_by_test_id("nav-search")).to_be_hidden()
    page.get_by_test_id("menu-button").click()
    expect(page.get_by_test_id("nav-search")).to_be_in_viewport()
    expect(page.get_by_test_id("logout")).to_be_in_viewport()
    screenshots(page, "phone-03-menu")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("nav-search")).to_be_hidden()
    page.set_viewport_size(LAPTOP)
    expect(page.get_by_test_id("menu-button")).to_be_hidden()
    expect(page.get_by_test_id("nav-search")).to_be_in_viewport()


def test_every_page_fits_a_phone_and_a_laptop(app, people, world, browser, base_url, screenshots):
    wrong = []
    everything = {**PAGES, **OTHER_PAGES}
    for who in sorted({who for who, _path, _test_id in everything.values()}):
        context = browser.new_context(base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai")
        page = context.new_page()
        if who == "customer":
            page.goto(f"/my/{world['token']}")
        elif who:
            login(page, who)
        if who == "customer_service":
            menu_folds_on_the_phone(page, screenshots)
        wrong += check(page, {name: spec for name, spec in everything.items() if spec[0] == who}, world, screenshots)
        context.close()
    assert wrong == [], "\n".join(wrong)

"""The diagrams in a real browser (Debian's chromium): the procedure page draws the deployed BPMN with
bpmn-js (served from app/static/vendor/, nothing from outside), overlays where complaints are and the
documentation of the element pointed at; a complaint page draws its own version with its path.
Screenshots go to test-artifacts/screenshots/<backend>/."""
import os
import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from app.config import ROOT
from app.extensions import db
from app.timeutil import utcnow
from tests.flow import Desk

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

VIEWER = ROOT / "app" / "static" / "vendor" / "bpmn-js" / "bpmn-navigated-viewer.production.min.js"


@pytest.fixture(autouse=True)
def vendored_viewer():
    if not VIEWER.exists():
        message = "bpmn-js is not vendored: run `make vendor`"
        if os.environ.get("REQUIRE_ALL_BACKENDS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def login(page: Page, username):
    page.goto("/login")
    page.get_by_test_id("input-username").fill(username)
    page.get_by_test_id("input-password").fill(f"pw-{username}")
    page.get_by_test_id("submit-login").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)


def watch_requests(page: Page, base_url):
    seen, failed = [], []
    page.on("request", lambda r: seen.append(r.url))
    # A request the next navigation cut short (the icon of a page left at once) did not fail.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and failed.append(f"{r.failure} {r.url}"))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    return lambda: ([u for u in seen if not u.startswith(base_url + "/")], failed)


def element(page: Page, element_id):
    return page.locator(f'g.djs-element[data-element-id="{element_id}"]')


def test_procedure_page_draws_the_diagram_with_overlays_and_documentation(app, people, page: Page, base_url,
                                                                            screenshots):
    desk = Desk(app.test_client(), people)
    late = desk.register(received_at=(utcnow() - timedelta(hours=26)).isoformat())   # its review is overdue
    for _ in range(3):
        desk.walk(desk.register(), ["initial_review"])                              # three at investigate
    desk.walk(desk.register(), ["initial_review", "investigate"])
    db.session.remove()
    outside = watch_requests(page, base_url)

    login(page, "compliance")
    page.get_by_test_id("nav-procedure").click()       # the complaint procedure and the processes beside it
    page.locator('[data-testid="procedure-row"][data-process="complaint_handling"] a').click()
    expect(page).to_have_url(re.compile(r"/procedure/complaint_handling$"))
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    expect(element(page, "initial_review")).to_have_count(1)
    expect(element(page, "analyse_and_plan")).to_have_count(1)                        # the second pool
    expect(page.get_by_test_id("diagram").locator(".bjs-powered-by")).to_be_visible()  # the bpmn.io watermark

    # Overlays: counts per element, the colour scale and the overdue marker.
    review = page.get_by_test_id("overlay-initial_review")
    expect(review).to_have_attribute("data-waiting", "1")
    expect(review).to_have_attribute("data-overdue", "1")
    expect(review).to_contain_text("等待 1")
    expect(review).to_contain_text("超时 1")
    investigate = page.get_by_test_id("overlay-investigate")
    expect(investigate).to_have_attribute("data-waiting", "3")
    expect(investigate).to_have_attribute("data-overdue", "0")
    expect(page.get_by_test_id("overlay-analyse_and_plan")).to_have_attribute("data-waiting", "1")
    expect(element(page, "investigate")).to_have_class(re.compile(r"\bload-4\b"))
    expect(element(page, "initial_review")).to_have_class(re.compile(r"\bhas-overdue\b"))
    expect(element(page, "initial_review")).to_have_class(re.compile(r"\bload-2\b"))
    shot = screenshots(page, "10-procedure", height=1000)

    # The side panel: the documentation of the element pointed at, kept when clicked.
    expect(page.get_by_test_id("element-doc-intro")).to_be_visible()
    element(page, "initial_review").click()
    doc = page.get_by_test_id("doc-initial_review")
    expect(doc).to_be_visible()
    expect(doc).to_contain_text("C-3.2.1")
    expect(doc).to_contain_text("审核结论")
    expect(doc).to_contain_text("received_at 之后 24 小时")
    element(page, "investigate").hover()
    expect(page.get_by_test_id("doc-investigate")).to_be_visible()
    expect(page.get_by_test_id("doc-investigate")).to_contain_text("round_started_at 之后第 3 个工作日结束时")
    expect(doc).to_be_hidden()
    page.mouse.move(5, 5)                                                             # away: the selection again
    expect(doc).to_be_visible()
    screenshots(page, "11-procedure-documentation", height=1000)
    assert shot.exists()
    assert outside() == ([], [])
    assert late


def test_complaint_page_marks_its_path_on_its_own_diagram(app, people, page: Page, base_url, screenshots):
    desk = Desk(app.test_client(), people)
    number = desk.register(received_at=(utcnow() - timedelta(hours=26)).isoformat())
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                       ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "利息计算有误"}),
                       ("re_evaluation", {"needs_investigation": False})])
    db.session.remove()
    outside = watch_requests(page, base_url)

    login(page, "compliance")
    page.goto(f"/complaints/{number}")
    section = page.get_by_test_id("complaint-diagram")
    expect(section).to_have_attribute("data-version", "1")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    for done in ("initial_review", "investigate", "customer_confirmation", "re_evaluation", "start_round"):
        expect(element(page, done)).to_have_class(re.compile(r"\bdone\b"))
    expect(element(page, "analyse_and_plan")).to_have_class(re.compile(r"\bcurrent\b"))
    expect(element(page, "resolve")).to_have_class(re.compile(r"\bcurrent\b"))      # the call activity around it
    expect(element(page, "archive")).not_to_have_class(re.compile(r"\bdone\b|\bcurrent\b"))
    expect(element(page, "initial_review_deadline")).to_have_class(re.compile(r"\bmissed\b"))
    expect(element(page, "flow_entry_direct_to_resolve")).to_have_class(re.compile(r"\btaken\b"))
    expect(element(page, "flow_outcome_reject")).not_to_have_class(re.compile(r"\btaken\b"))
    expect(page.get_by_test_id("visits-start_round")).to_have_text("×2")
    expect(page.get_by_test_id("visits-customer_confirmation")).to_have_count(0)     # once only
    expect(page.get_by_test_id("path-legend")).to_be_visible()
    shot = screenshots(page, "12-complaint-diagram")
    section.screenshot(path=str(shot.with_name("12-complaint-diagram-section.png")))
    page.get_by_test_id("path").locator("summary").click()
    expect(page.locator('[data-testid="path-step"][data-element-id="start_round"][data-nth="2"]')).to_have_count(1)

    # The case file, printable, from the same page.
    page.get_by_test_id("case-file-link").click()
    expect(page.get_by_test_id("case-file")).to_contain_text(number)
    expect(page.locator('[data-testid="case-deadline"][data-state="missed"]')).to_have_count(1)
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.get_by_test_id("print-button")).to_be_hidden()
    screenshots(page, "13-case-file-print", height=1200)
    assert outside() == ([], [])


READABLE_ZOOM = 0.8          # app/static/diagram.js

# Per visit badge: its box and the boxes of its element's name (a task's inside the shape, an event's or a
# gateway's in its own label element, "<id>_label"), and whether they meet.
BADGES_AND_NAMES = """() => [...document.querySelectorAll('[data-testid^="visits-"]')].map(badge => {
  const id = badge.getAttribute('data-testid').slice('visits-'.length);
  const b = badge.getBoundingClientRect();
  const names = [...document.querySelectorAll(
      `g.djs-element[data-element-id="${id}"] .djs-visual text, g.djs-element[data-element-id="${id}_label"] .djs-visual text`)]
    .map(t => t.getBoundingClientRect()).filter(t => t.width > 0 && t.height > 0);
  const meets = names.some(t => b.left < t.right && t.left < b.right && b.top < t.bottom && t.top < b.bottom);
  return {id, meets, names: names.length, external: !!document.querySelector(`g.djs-element[data-element-id="${id}_label"]`)};
})"""


def viewed(page: Page, element_id) -> dict:
    """The canvas's zoom, and whether the element's shape lies inside the visible part of the canvas (by
    the viewer's viewbox and by the boxes the browser drew)."""
    return page.evaluate("""(id) => {
      const viewer = window.procedureViewer, canvas = viewer.get('canvas');
      const box = canvas.viewbox(), shape = viewer.get('elementRegistry').get(id);
      const inBox = shape.x >= box.x && shape.y >= box.y && shape.x + shape.width <= box.x + box.width
        && shape.y + shape.height <= box.y + box.height;
      const frame = document.getElementById('diagram').getBoundingClientRect();
      const drawn = document.querySelector(`g.djs-element[data-element-id="${id}"]`).getBoundingClientRect();
      const inFrame = drawn.left >= frame.left && drawn.top >= frame.top && drawn.right <= frame.right
        && drawn.bottom <= frame.bottom;
      return {zoom: canvas.zoom(), inside: inBox && inFrame};
    }""", element_id)


def test_the_complaint_diagram_opens_readable_on_the_current_step(app, people, page: Page, backend):
    """Not the whole diagram at a zoom where names are 6 px: the step the complaint is at, centred, at a
    zoom where they can be read; badges beside the shapes, never over a name; "whole diagram" and back."""
    desk = Desk(app.test_client(), people)
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                       ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "利息计算有误"}),
                       ("re_evaluation", {"needs_investigation": False})])
    db.session.remove()

    login(page, "compliance")
    page.goto(f"/complaints/{number}")
    expect(page.get_by_test_id("diagram")).to_have_attribute("data-state", "ready")
    page.get_by_test_id("diagram").scroll_into_view_if_needed()
    now = viewed(page, "analyse_and_plan")                      # the open task, in the second pool
    assert now["inside"] and now["zoom"] >= READABLE_ZOOM, now

    badges = page.evaluate(BADGES_AND_NAMES)
    assert {b["id"] for b in badges} >= {"start_round"}
    assert any(b["external"] for b in badges), badges               # an event or gateway passed twice too
    assert all(b["names"] for b in badges), badges
    assert [b["id"] for b in badges if b["meets"]] == [], badges

    whole = page.get_by_test_id("diagram-whole")
    expect(whole).to_have_text("全图")
    whole.click()
    assert viewed(page, "analyse_and_plan")["zoom"] < READABLE_ZOOM          # this diagram is big
    assert [b["id"] for b in page.evaluate(BADGES_AND_NAMES) if b["meets"]] == []
    page.get_by_test_id("diagram-focus").click()
    back = viewed(page, "analyse_and_plan")
    assert back["inside"] and back["zoom"] >= READABLE_ZOOM, back

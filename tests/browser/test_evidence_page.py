"""Evidence and notes in a real browser: customer service attaches two files to a complaint (one refused,
said beside the page's other messages), the list shows them, a note goes into the timeline; the claims
specialist's investigation form takes a file through its file field and the task is done. Screenshots:
evidence-01-complaint, evidence-02-section (the README's)."""
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_diagrams import login
from tests.flow import Desk

# The browser's side of this is the same on every database (the data paths behind it run on both backends in
# the non-browser tests): SQLite only, to keep CI within its time.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120


def files(*named):
    return [{"name": name, "mimeType": "application/octet-stream", "buffer": content} for name, content in named]


def test_attach_files_and_a_note_then_answer_a_file_field(app, people, page: Page, base_url, client, screenshots,
                                                          tmp_path):
    app.config["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    from app import evidence
    evidence.init_app(app)
    desk = Desk(client, people)
    number = desk.register()
    login(page, "customer_service")
    page.goto(f"/complaints/{number}")
    page.get_by_test_id("evidence-input").set_input_files(files(("维修发票.pdf", PDF), ("setup.pdf", ELF)))
    page.get_by_test_id("evidence-description").fill("维修发票")
    page.get_by_test_id("evidence-submit").click()
    expect(page.get_by_test_id("evidence-file")).to_have_count(1)
    expect(page.get_by_test_id("evidence-section")).to_contain_text("维修发票.pdf")
    expect(page.locator(".flash, [data-testid=flash]").filter(has_text="setup.pdf")).to_contain_text("是程序")
    page.get_by_test_id("note-text").fill("客户要求书面答复。")
    page.get_by_test_id("note-submit").click()
    expect(page.locator('[data-testid=timeline-row][data-action="note_added"]')).to_contain_text("客户要求书面答复。")
    page.locator("#evidence").scroll_into_view_if_needed()
    whole = screenshots(page, "evidence-01-complaint")
    page.get_by_test_id("evidence-and-notes").screenshot(path=str(whole.with_name("evidence-02-section.png")))

    desk.complete(number, "initial_review")
    page.wait_for_load_state("networkidle")     # no response still on its way to set the session again
    page.context.clear_cookies()
    login(page, "claims_specialist")
    page.goto(f"/tasks/{desk.task_id(number, 'investigate')}")
    page.get_by_test_id("input-evidence_files").set_input_files(files(("通话记录.pdf", PDF.replace(b"1.4", b"1.5"))))
    page.get_by_test_id("input-findings").fill("理赔延误属实。")
    page.get_by_test_id("input-customer_contacted-true").check()
    page.get_by_test_id("submit-task").click()
    expect(page.get_by_test_id("flash").first).to_contain_text("调查取证")
    data = desk.complaint(number)
    done = [e for e in data["history"] if e["action"] == "task_completed" and e["element_id"] == "investigate"]
    assert len(done) == 1 and len(done[0]["data"]["form_data"]["evidence_files"]) == 1

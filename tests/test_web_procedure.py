"""The procedure pages over real HTTP (Flask's test client, CSRF on, the real engine), on SQLite (the page is the same on every
backend): the diagram page with documentation, versions and overlay data; traceability; a complaint's
path on its diagram; the case file; and a process owner changing the procedure — a broken upload
refused with its located problems, a safe one previewed, deployed and running complaints migrated."""
import io
import json
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from app.config import ROOT
from app.extensions import db
from app.models import AuditEvent, Deadline, InstanceSnapshot, ProcessInstance, ProcessVersion
from app.web import diagram
from tests.flow import HAPPY_PATH, reviews_at_two_speeds_and_one_overdue
from tests.test_migration import deploy_changed, remove_re_evaluation, safe_change
from tests.test_web import as_, browser, desk, fresh, text  # noqa: F401  (browser and desk are fixtures)

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
PROCESS = "/procedure/complaint_handling"
BPMN = (ROOT / "processes" / "complaint_handling.bpmn").read_text(encoding="utf-8")
DATA = re.compile(r'<script type="application/json" id="diagram-data">(.*?)</script>', re.S)


def diagram_data(response) -> dict:
    found = DATA.search(response.get_data(as_text=True))
    assert found, "no diagram data on the page"
    return json.loads(found.group(1))


def versions():
    fresh()
    return db.session.execute(select(ProcessVersion.version).where(ProcessVersion.process_id == "complaint_handling")
                              .order_by(ProcessVersion.version)).scalars().all()


def instance(number):
    fresh()
    return db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()


def upload(b, xml, name="complaint_handling.bpmn"):
    data = {"bpmn": (io.BytesIO(xml.encode("utf-8") if isinstance(xml, str) else xml), name)}
    return b.post(f"{PROCESS}/upload", data, page=PROCESS, content_type="multipart/form-data")


def confirm(b, preview):
    """Submit the deploy form of an upload preview, as the browser does."""
    page = preview.get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(file_name|content|expected)" value="([^"]*)"', page))
    assert set(fields) == {"file_name", "content", "expected"}, "no deploy form on the preview"
    return b.post(f"{PROCESS}/deploy", fields, page=PROCESS, content_type="multipart/form-data")


# ---- who may see and do what ----------------------------------------------------------------------
PAGES = ["/procedure", PROCESS, f"{PROCESS}/v1", f"{PROCESS}/v1/complaint_handling.bpmn", f"{PROCESS}/v1/stats.json",
         "/traceability", f"{PROCESS}/migrate", "/complaints/TS-1/case-file", "/complaints/TS-1/case-file.json"]


@pytest.mark.parametrize("url", PAGES)
def test_every_procedure_page_requires_login(browser, people, url):
    r = browser().get(url)
    assert r.status_code == 302 and r.location.startswith("/login?next=")


@pytest.mark.parametrize("url", [f"{PROCESS}/upload", f"{PROCESS}/deploy", f"{PROCESS}/migrate"])
def test_every_procedure_action_requires_login(browser, people, url):
    r = browser().post(url, page="/login")
    assert r.status_code == 302 and r.location.startswith("/login")


def test_readers_read_the_procedure_and_only_the_process_owner_changes_it(browser, desk):
    number = desk.register()
    for who in ("compliance", "customer_service", "claims_specialist", "management", "training", "process_owner"):
        b = as_(browser, who)
        r = b.get(PROCESS)
        assert r.status_code == 200, who
        assert 'data-testid="nav-procedure"' in r.text
        assert ('data-testid="upload-form"' in r.text) == (who == "process_owner"), who
        assert b.get("/traceability").status_code == 200
        assert b.get(f"{PROCESS}/v1/complaint_handling.bpmn").status_code == 200
    # Several processes (the main one and those beside it): a list that links to each.
    listing = as_(browser, "process_owner").get("/procedure")
    assert listing.status_code == 200 and f'href="{PROCESS}"' in listing.text
    for who in ("compliance", "customer_service", "management"):
        b = as_(browser, who)
        assert upload(b, BPMN).status_code == 403, who
        assert b.get(f"{PROCESS}/migrate").status_code == 403
        assert b.post(f"{PROCESS}/migrate", {"instance": "1"}, page=PROCESS).status_code == 403
        assert b.post(f"{PROCESS}/deploy", {"content": "", "file_name": "x.bpmn", "expected": ""},
                      page=PROCESS).status_code == 403
    compliance = as_(browser, "compliance")
    assert compliance.get(f"/complaints/{number}/case-file").status_code == 200
    assert compliance.get(f"/complaints/{number}/case-file.json").status_code == 200
    owner = as_(browser, "process_owner")
    assert owner.get(f"/complaints/{number}/case-file").status_code == 403     # not a reader of complaints
    assert 'data-testid="procedure-link"' in owner.get("/").text
    assert versions() == [1]


def test_unknown_process_version_and_file_are_404(browser, people):
    b = as_(browser, "compliance")
    assert b.get("/procedure/nope").status_code == 404
    assert b.get(f"{PROCESS}/v9").status_code == 404
    assert b.get(f"{PROCESS}/v1/other.bpmn").status_code == 404
    assert b.get("/complaints/TS-20991231-999999/case-file").status_code == 404


# ---- reading the procedure --------------------------------------------------------------------------
def test_procedure_page_shows_version_deployer_and_each_elements_documentation(browser, people):
    r = as_(browser, "compliance").get(PROCESS)
    page, words = r.text, text(r)
    assert re.search(r'data-testid="procedure-version" data-version="1"', page)
    assert "版本 1" in words and "test" in words                       # deployed by the fixture's "test"
    data = diagram_data(r)
    assert data["mode"] == "procedure" and data["xml_url"].endswith("/v1/complaint_handling.bpmn?inline=1")
    review = re.search(r'data-testid="doc-initial_review" hidden>(.*?)</section>', page, re.S).group(1)
    assert "C-3.2.1" in review and "C-3.2.3" in review and "客服人员对投诉内容进行初步审核" in review
    assert "审核结论" in review and "风险评估" in review and "受理、不予受理、疑似恶意投诉" in review
    assert "received_at 之后 24 小时" in review                       # the deadline in words
    assert "hours_after(received_at, 24)" in review
    investigate = re.search(r'data-testid="doc-investigate" hidden>(.*?)</section>', page, re.S).group(1)
    assert "round_started_at 之后第 3 个工作日结束时（北京时间）" in investigate
    gateway = re.search(r'data-testid="doc-review_outcome" hidden>(.*?)</section>', page, re.S).group(1)
    assert "decision == &#39;accept&#39;" in gateway or "decision == 'accept'" in gateway
    assert 'data-testid="doc-participant_complaint_resolution"' in page       # the second pool too


def test_deadlines_in_words_in_both_languages(app):
    timers = [({"kind": "timeDate", "expression": "hours_after(received_at, 24)"},
               "24 hours after received_at", "received_at 之后 24 小时"),
              ({"kind": "timeDate", "expression": "working_days_after(round_started_at, 3)"},
               "3 working days after round_started_at (end of that day, Beijing time)",
               "round_started_at 之后第 3 个工作日结束时（北京时间）"),
              ({"kind": "timeDuration", "expression": '"P2DT4H"'}, "2 days 4 hours after the step starts",
               "步骤开始后 2 天 4 小时"),
              ({"kind": "timeDate", "expression": "due_at"}, "expression: due_at", "表达式：due_at")]
    for language, column in (("en", 1), ("zh_Hans_CN", 2)):
        with app.app_context(), app.test_request_context():     # a fresh `g`: Flask-Babel caches the locale there
            from flask import session
            session["lang"] = language
            for row in timers:
                assert diagram.timer_words(row[0]) == row[column]


def test_bpmn_download_of_any_version(browser, people):
    b = as_(browser, "compliance")
    r = b.get(f"{PROCESS}/v1/complaint_handling.bpmn")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    assert r.headers["Content-Disposition"] == "attachment; filename=complaint_handling-v1-complaint_handling.bpmn"
    assert r.get_data(as_text=True) == BPMN
    inline = b.get(f"{PROCESS}/v1/complaint_handling.bpmn?inline=1")
    assert "Content-Disposition" not in inline.headers and inline.get_data(as_text=True) == BPMN


def test_overlay_data_counts_waiting_overdue_and_median_per_element(browser, desk):
    with time_machine.travel(T0, tick=False) as clock:
        reviews_at_two_speeds_and_one_overdue(desk, clock)
        b = as_(browser, "management")
        stats = {e["id"]: e for e in b.get(f"{PROCESS}/v1/stats.json?days=7").json["elements"]}
        page = b.get(f"{PROCESS}?days=7")
    assert {k: stats["initial_review"][k] for k in ("waiting", "overdue", "completed", "median_hours", "level")} \
        == {"waiting": 1, "overdue": 1, "completed": 2, "median_hours": 4.0, "level": 2}
    assert stats["investigate"]["waiting"] == 2 and stats["investigate"]["overdue"] == 0
    assert stats["investigate"]["level"] == 4 and stats["investigate"]["median_hours"] is None
    assert "archive" not in stats
    overlays = {e["id"]: e for e in diagram_data(page)["overlays"]}
    assert overlays["initial_review"]["waiting_text"] == "等待 1" and overlays["initial_review"]["overdue_text"] \
        == "超时 1" and overlays["initial_review"]["median_text"] == "中位 4.0 小时"
    assert re.search(r'data-testid="stats-row" data-element-id="initial_review" data-waiting="1" data-overdue="1"',
                     page.text)
    assert 'class="swatch load-swatch-4">2<' in page.text                    # the colour scale's top: 2 waiting
    # Nothing finished in an empty window; bad periods fall back to 30 days.
    with time_machine.travel(T0 + timedelta(days=40), tick=False):
        b = as_(browser, "management")
        later = {e["id"]: e for e in b.get(f"{PROCESS}/v1/stats.json?days=7").json["elements"]}
        assert later["initial_review"]["completed"] == 0 and later["initial_review"]["waiting"] == 1
        assert b.get(f"{PROCESS}/v1/stats.json?days=5").json["days"] == 30


def test_traceability_page_marks_gaps_and_links_elements(browser, people, tmp_path):
    b = as_(browser, "compliance")
    r = b.get("/traceability")
    page = r.text
    # Every clause of the procedure is implemented by a diagram element (or, for principles, by the app).
    assert 'data-gap="yes"' not in page and "没有缺口" in text(r)
    assert re.search(r'data-testid="trace-row" data-clause="C-5.4" data-gap="no"', page)
    assert re.search(r'data-testid="trace-row" data-clause="C-4.1" data-gap="no"', page)
    row = re.search(r'data-clause="C-4.1".*?</tr>', page, re.S).group(0)
    assert f'href="{PROCESS}?element=initial_review_deadline"' in row
    assert "tests/test_deadlines.py::test_initial_review_overdue_after_24_hours_escalates_to_management" in row
    # A version whose diagram no longer cites C-7.4 leaves it as a gap.
    deploy_changed(tmp_path, lambda xml: xml.replace("[C-7.4]", ""))
    r = b.get("/traceability")
    assert re.search(r'data-testid="trace-row" data-clause="C-7.4" data-gap="yes"', r.text)
    assert "缺口" in text(r) and "C-7.4" in text(r)
    md = b.get("/traceability?format=md")
    assert md.mimetype == "text/markdown" and "**GAP: no element**" in md.get_data(as_text=True)


# ---- one complaint ----------------------------------------------------------------------------------
def test_complaint_page_marks_its_path_rounds_and_missed_deadlines(app, browser, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        clock.shift(timedelta(hours=25))
        from app.scheduler import fire_due_timers
        assert fire_due_timers(app) == 1                                   # the 24-hour review deadline
        first = desk.complaint(number)
        desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"])
        b = as_(browser, "compliance")
        one_round = diagram_data(b.get(f"/complaints/{number}"))["marks"]
        desk.walk(number, [("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "金额偏低"}),
                           ("re_evaluation", {"needs_investigation": False})])
        r = b.get(f"/complaints/{number}")
    assert first["complaint"]["number"] == number
    marks = diagram_data(r)["marks"]
    assert "initial_review" in marks["done"] and "investigate" in marks["done"]
    # The task, the call activities around it, and management's follow-up of the missed review deadline.
    assert marks["current"] == ["analyse_and_plan", "handling", "initial_review_overdue", "resolve"]
    assert marks["missed"] == ["initial_review_deadline"]
    assert "resolution_deadline" in marks["deadline_open"]
    assert marks["counts"]["start_round"] == 2 and marks["counts"]["round_merge"] == 2
    assert "analyse_and_plan" not in marks["counts"] and "investigate" not in marks["counts"]   # once each
    # The first round went through the investigation: the direct flow round_entry -> resolve_merge was
    # not taken then, and is once the second round skipped the investigation.
    direct = [f for f in diagram.of_version(instance(number).version)["flows"].values()
              if f["source"] == "round_entry" and f["target"] == "resolve_merge"][0]["id"]
    assert direct not in one_round["taken"] and direct in marks["taken"]
    assert "flow_review_deadline_to_overdue" in marks["taken"]
    steps = re.findall(r'data-testid="path-step" data-element-id="([^"]+)" data-nth="(\d+)"', r.text)
    assert ("start_round", "2") in steps and ("re_evaluation", "1") in steps
    assert 'data-testid="case-file-link"' in r.text and "流程版本 1" in text(r)


def test_case_file_shows_decisions_deadlines_and_versions_masked_by_role(app, browser, desk):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        clock.shift(timedelta(hours=25))
        from app.scheduler import fire_due_timers
        fire_due_timers(app)
        desk.walk(number, HAPPY_PATH)
        compliance = as_(browser, "compliance")
        r = compliance.get(f"/complaints/{number}/case-file")
        j = compliance.get(f"/complaints/{number}/case-file.json")
        cs = as_(browser, "customer_service").get(f"/complaints/{number}/case-file.json")
    page, words = r.text, text(r)
    assert r.status_code == 200 and "投诉 " + number + " 的案卷" in words
    decisions = re.findall(r'data-testid="case-decision" data-step="([^"]+)" data-state="([^"]+)"', page)
    assert [s for s, state in decisions if state == "completed"] == HAPPY_PATH
    assert ("initial_review_overdue", "open") in decisions          # management's follow-up, still open
    assert "材料齐全，符合受理条件" in words and "customer_service" in words
    deadlines = dict(re.findall(r'data-testid="case-deadline" data-state="([^"]+)" data-element-id="([^"]+)"',
                                page))
    assert deadlines.get("missed") == "initial_review_deadline"
    assert re.search(r'data-testid="case-deadline" data-state="met" data-element-id="investigation_deadline"', page)
    assert re.search(r'data-testid="case-version" data-version="1"', page)
    assert 'data-personal="masked"' in page and "138****5678" in words and "13812345678" not in page
    assert "@media print" in (ROOT / "app" / "static" / "web.css").read_text(encoding="utf-8")
    assert j.headers["Content-Disposition"] == f"attachment; filename=case-file-{number}.json"
    record = json.loads(j.get_data(as_text=True))
    assert record["complaint"]["phone"] == "138****5678" and record["complaint"]["personal_data"] == "masked"
    assert {d["element_id"] for d in record["decisions"]} >= set(HAPPY_PATH)
    assert {(d["element_id"], d["state"]) for d in record["deadlines"]} >= {("initial_review_deadline", "missed")}
    assert json.loads(cs.get_data(as_text=True))["complaint"]["phone"] == "13812345678"


# ---- changing the procedure ------------------------------------------------------------------------
def test_a_broken_upload_shows_its_located_problems_and_deploys_nothing(browser, desk):
    number = desk.register()
    owner = as_(browser, "process_owner")
    before = fresh() or db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    broken = BPMN.replace("hours_after(received_at, 24)", "hours_after(received_at, 24")
    r = upload(owner, broken)
    assert r.status_code == 422
    problems = re.findall(r'data-testid="problem" data-element-id="([^"]*)" data-line="([^"]*)"', r.text)
    line = next(i for i, l in enumerate(BPMN.splitlines(), 1) if ">hours_after(received_at, 24)<" in l)
    assert ("initial_review_deadline", str(line)) in problems
    assert "complaint_handling.bpmn" in text(r) and "没有部署任何内容" in text(r)
    assert 'data-testid="deploy-form"' not in r.text
    assert upload(owner, b"not xml at all").status_code == 422
    r = upload(owner, BPMN, name="notes.txt")
    assert r.status_code == 422 and "只能上传 .bpmn（流程图）和 .dmn（决策表）文件" in text(r)
    assert versions() == [1] and instance(number).version.version == 1
    fresh()
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == before
    # The same content as deployed: nothing to do.
    assert 'data-testid="no-change"' in upload(owner, BPMN).text


def test_a_safe_change_is_previewed_deployed_and_running_complaints_migrated(browser, desk, people):
    with time_machine.travel(T0, tick=False):
        at_investigate = desk.register(received_at=T0.isoformat())
        desk.complete(at_investigate, "initial_review")
        task_id = desk.task_id(at_investigate, "investigate")
        desk.client.post(f"/api/v1/tasks/{task_id}/claim", json={}, headers=people["claims_specialist"].headers)
        done = desk.register(received_at=T0.isoformat())
        desk.walk(done, HAPPY_PATH)
        fresh()
        due_before = dict(db.session.execute(select(Deadline.timer_task_id, Deadline.due_at)).all())
        owner = as_(browser, "process_owner")

        preview = upload(owner, safe_change(BPMN))
        assert preview.status_code == 200
        changed = dict(re.findall(r'data-testid="diff-changed" data-element-id="([^"]+)">[^<]*<code>[^<]*</code> '
                                  r'<small class="muted">\(([^)]*)\)', preview.text))
        assert changed["investigate"] == "bpmn_name" and "investigation_deadline" in changed
        assert re.search(rf'data-testid="dry-run-row" data-complaint="{at_investigate}" data-migratable="yes"',
                         preview.text)
        assert done not in preview.text                                  # only running complaints
        assert versions() == [1]                                         # a preview deploys nothing

        r = confirm(owner, preview)
        assert r.status_code == 302 and r.location == f"{PROCESS}/migrate"
        assert versions() == [1, 2]
        fresh()
        v2 = db.session.execute(select(ProcessVersion).where(ProcessVersion.version == 2)).scalar_one()
        assert v2.deployed_by == "process_owner"
        assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "process_deployed",
                                                           AuditEvent.actor == "process_owner")).scalar_one()
        assert instance(at_investigate).version.version == 1            # deploying moves nobody

        dry = owner.get(f"{PROCESS}/migrate")
        assert re.search(rf'data-testid="migrate-row" data-complaint="{at_investigate}" data-ok="yes"', dry.text)
        assert "版本 1" in text(dry) and instance(at_investigate).version.version == 1
        ticked = re.findall(r'name="instance" value="(\d+)" checked', dry.text)
        assert ticked == [str(instance(at_investigate).id)]
        result = owner.post(f"{PROCESS}/migrate?to=2", {"instance": ticked}, page=f"{PROCESS}/migrate")
        assert result.status_code == 200
        assert re.search(rf'data-testid="migrate-row" data-complaint="{at_investigate}" data-ok="yes"', result.text)
        assert "已迁移到版本 2" in text(result)

        inst = instance(at_investigate)
        assert inst.version.version == 2
        assert dict(db.session.execute(select(Deadline.timer_task_id, Deadline.due_at)).all()) == due_before
        migrated = db.session.execute(select(AuditEvent).where(AuditEvent.action == "instance_migrated")).scalar_one()
        assert migrated.actor == "process_owner" and migrated.business_key == at_investigate
        assert db.session.execute(select(InstanceSnapshot).where(InstanceSnapshot.instance_id == inst.id)).scalar_one()
        assert desk.open_tasks(at_investigate)["investigate"]["name"] == "调查取证与核实"
        assert 'data-testid="nothing-to-migrate"' in owner.get(f"{PROCESS}/migrate").text
        page = owner.get(PROCESS)
        assert re.search(r'data-testid="procedure-version" data-version="2"', page.text)
        assert 'data-testid="version-link"' in page.text                # version 1 one click away
        assert owner.get(f"{PROCESS}/v1").status_code == 200
        assert "调查取证与核实" in owner.get(f"{PROCESS}/v2/complaint_handling.bpmn").get_data(as_text=True)
        timeline = as_(browser, "compliance").get(f"/complaints/{at_investigate}?all=1")
        assert "从版本 1 到版本 2" in text(timeline)


def test_an_unsafe_change_shows_the_exact_reason_and_the_complaint_stays(browser, desk, tmp_path):
    at_re_evaluation = desk.register()
    desk.walk(at_re_evaluation, HAPPY_PATH[:4] + [("customer_confirmation", {
        "satisfied": False, "dissatisfaction_reasons": "不满意"})])
    fresh_one = desk.register()
    owner = as_(browser, "process_owner")
    preview = upload(owner, remove_re_evaluation(BPMN))
    assert re.search(r'data-testid="diff-removed" data-element-id="re_evaluation"', preview.text)
    row = re.search(rf'data-testid="dry-run-row" data-complaint="{at_re_evaluation}" data-migratable="no">.*?</tr>',
                    preview.text, re.S).group(0)
    assert "其当前步骤 重新评估 (re_evaluation) 已被删除" in text_of(row)
    assert re.search(rf'data-complaint="{fresh_one}" data-migratable="yes"', preview.text)
    assert confirm(owner, preview).status_code == 302
    dry = owner.get(f"{PROCESS}/migrate")
    assert re.search(rf'data-complaint="{at_re_evaluation}" data-ok="no"', dry.text)
    assert "其当前步骤 重新评估 (re_evaluation) 已被删除" in text(dry)
    before = instance(at_re_evaluation).workflow_json
    # Even when ticked by hand, the engine refuses it and nothing changes.
    ids = [str(instance(n).id) for n in (at_re_evaluation, fresh_one)]
    result = owner.post(f"{PROCESS}/migrate", {"instance": ids}, page=f"{PROCESS}/migrate")
    assert re.search(rf'data-complaint="{at_re_evaluation}" data-ok="no"', result.text)
    assert re.search(rf'data-complaint="{fresh_one}" data-ok="yes"', result.text)
    assert instance(at_re_evaluation).version.version == 1 and instance(at_re_evaluation).workflow_json == before
    assert instance(fresh_one).version.version == 2
    desk.complete(at_re_evaluation, "re_evaluation")                     # it carries on, on its own version


def test_a_preview_is_not_deployed_when_the_files_changed_since(browser, desk, app, tmp_path):
    owner = as_(browser, "process_owner")
    preview = upload(owner, safe_change(BPMN))
    # Meanwhile a form on disk changes: the confirmed content no longer makes the previewed change.
    forms = tmp_path / "forms"
    shutil.copytree(ROOT / "forms", forms)
    schema = json.loads((forms / "archive.json").read_text(encoding="utf-8"))
    schema["title"] = "归档（新）"
    (forms / "archive.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    app.config["FORMS_DIR"] = forms
    r = confirm(owner, preview)
    assert r.status_code == 409 and versions() == [1]


def text_of(fragment: str) -> str:
    import html
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()

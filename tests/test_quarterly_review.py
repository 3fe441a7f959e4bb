"""The quarterly review as a process (issue 11, item 2; C-3.5.2, C-3.5.3, C-5.2, C-5.3, C-5.4, C-6.4):
started by the scheduler's cron job at the start of each quarter (once, whatever fires twice) or by hand
for any period; the analysis attached; a review meeting for management; improvement measures assigned to
their owners, tracked, escalated when late; targeted training in the training department's lane."""
import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from app.extensions import db
from app.models import AnalysisReport, HumanTask, ImprovementMeasure, PeriodicStart, ProcessInstance
from app.scheduler import catch_up_quarterly_review, fire_due_timers, quarterly_trigger, start_quarterly_review
from app.timeutil import BUSINESS_TZ

QUARTER_START = datetime(2027, 1, 1, 0, 30, tzinfo=BUSINESS_TZ)
MEETING = {"meeting_date": "2027-01-08", "attendees": "王经理（客服部）\n李经理（理赔部）",
           "problems_discussed": "理赔时效投诉上升；材料清单多次告知。", "minutes": "审阅了 2026Q4 的分析报告。",
           "decisions": "两项改进措施；对理赔专员开展时效培训。", "measures_needed": True, "training_needed": True,
           "training_focus": "理赔时效与一次性告知"}


def measure(title, due_on, more, owner="measure_owner", **changes):
    return {"measure_title": title, "measure_category": "claim_delay", "measure_cause": "process_design",
            "measure_owner": owner, "measure_due_on": due_on, "measure_success_criteria": "下季度该类投诉下降",
            "another_measure": more, **changes}


def reviews():
    return db.session.execute(select(ProcessInstance).where(ProcessInstance.process_id == "quarterly_review")) \
        .scalars().all()


def tasks(client, person, queue="available"):
    r = client.get(f"/api/v1/tasks?queue={queue}&per_page=100", headers=person.headers)
    assert r.status_code == 200, r.json
    return r.json["items"]


def open_task(client, person, element_id, queue="available"):
    found = [t for t in tasks(client, person, queue) if t["element_id"] == element_id]
    assert found, f"{element_id} not in {person.user.username}'s {queue} queue"
    return found[0]


def complete(client, person, task, data, expect=200):
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": data}, headers=person.headers)
    assert r.status_code == expect, r.json
    return r.json


def test_the_cron_job_fires_at_the_start_of_each_quarter_in_beijing_time():
    trigger = quarterly_trigger()
    after = datetime(2026, 11, 30, tzinfo=timezone.utc)
    fires = []
    for _ in range(4):
        after = trigger.get_next_fire_time(None, after)
        fires.append(after)
        after += timedelta(minutes=1)
    assert [f.isoformat() for f in fires] == ["2027-01-01T00:30:00+08:00", "2027-04-01T00:30:00+08:00",
                                              "2027-07-01T00:30:00+08:00", "2027-10-01T00:30:00+08:00"]


@pytest.mark.clause("C-5.4", "C-3.5.2")
def test_the_cron_job_starts_the_last_quarters_review_once_with_its_analysis(app, people):
    with time_machine.travel(QUARTER_START, tick=False):
        first = start_quarterly_review(app)
        again = start_quarterly_review(app)          # a second firing (or a second scheduler): nothing new
    assert first is not None and again is None
    [review] = reviews()
    assert review.business_key == "QR-2026Q4" and review.id == first
    start = db.session.execute(select(PeriodicStart)).scalar_one()
    assert (start.period, str(start.period_start), str(start.period_end)) == ("2026Q4", "2026-10-01", "2026-12-31")
    report = db.session.execute(select(AnalysisReport).where(AnalysisReport.instance_id == review.id)).scalar_one()
    assert (str(report.period_start), str(report.period_end)) == ("2026-10-01", "2026-12-31")
    [meeting] = db.session.execute(select(HumanTask).where(HumanTask.instance_id == review.id)).scalars().all()
    assert (meeting.element_id, meeting.role) == ("review_meeting", "management")
    # The meeting's deadline: 10 working days after the analysis (New Year's Day is a holiday).
    assert meeting.due_at is not None and meeting.due_at.astimezone(BUSINESS_TZ).date().isoformat() == "2027-01-15"


def test_a_scheduler_started_late_catches_up_only_early_in_the_quarter(app, people):
    with time_machine.travel(datetime(2027, 2, 20, 9, tzinfo=BUSINESS_TZ), tick=False):
        assert catch_up_quarterly_review(app) is None        # 50 days in: a person starts it if wanted
    assert reviews() == []
    with time_machine.travel(datetime(2027, 1, 10, 9, tzinfo=BUSINESS_TZ), tick=False):
        assert catch_up_quarterly_review(app) is not None
        assert catch_up_quarterly_review(app) is None
    assert [r.business_key for r in reviews()] == ["QR-2026Q4"]


def test_started_by_hand_for_a_quarter_or_any_period_once_each(app, people):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["review", "start", "2026Q3", "--by", "management"])
    assert result.exit_code == 0, result.output
    assert "review 2026Q3 started" in result.output
    again = runner.invoke(args=["review", "start", "2026q3"])
    assert again.exit_code != 0 and "already been started" in again.output
    custom = runner.invoke(args=["review", "start", "--from", "2026-07-01", "--to", "2026-08-15"])
    assert custom.exit_code == 0, custom.output
    assert sorted(r.business_key for r in reviews()) == ["QR-2026-07-01..2026-08-15", "QR-2026Q3"]
    for args, message in ((["review", "start", "--from", "2026-09-01", "--to", "2026-08-01"], "after it ends"),
                          (["review", "start", "2026Q5"], "is not a quarter"),
                          (["review", "start", "--from", "2026-13-01", "--to", "2026-12-31"], "is not a date"),
                          (["review", "start"], "either a quarter"),
                          (["review", "start", "2099Q1"], "2099Q1 has not ended"),
                          (["review", "start", "--from", "2099-01-01", "--to", "2099-01-31"], "has not ended")):
        bad = runner.invoke(args=args)
        assert bad.exit_code != 0 and message in bad.output, (args, bad.output)
    assert len(reviews()) == 2


@pytest.mark.clause("C-5.2", "C-5.3", "C-5.4", "C-3.5.3", "C-6.4")
def test_a_quarter_with_meeting_measures_escalation_and_training(app, people, client):
    mgmt, owner, training = people["management"], people["measure_owner"], people["training"]
    with time_machine.travel(QUARTER_START, tick=False) as clock:
        review_id = start_quarterly_review(app)
        meeting = open_task(client, mgmt, "review_meeting")
        assert meeting["business_key"] == "QR-2026Q4"
        body = complete(client, mgmt, meeting, MEETING)
        assert {t["element_id"] for t in body["next_tasks"]} >= {"define_measure"}

        # Each measure names its owner, who must be an active user with the owner role.
        define = open_task(client, mgmt, "define_measure")
        r = client.get(f"/api/v1/tasks/{define['id']}", headers=mgmt.headers)
        owner_field = r.json["form"]["properties"]["measure_owner"]
        assert owner_field["enum"] == ["measure_owner"]
        missing = {k: v for k, v in measure("x", "2027-02-26", False).items() if k != "measure_owner"}
        assert "measure_owner" in complete(client, mgmt, define, missing, expect=422)["error"]["fields"]
        wrong = complete(client, mgmt, define, measure("x", "2027-02-26", False, owner="claims_specialist"), expect=422)
        assert "measure_owner" in wrong["error"]["fields"]
        past = complete(client, mgmt, define, measure("x", "2026-12-31", False), expect=422)   # due yesterday
        assert list(past["error"]["fields"]) == ["measure_due_on"]
        complete(client, mgmt, define, measure("理赔材料清单一次性告知", "2027-02-26", True))
        complete(client, mgmt, open_task(client, mgmt, "define_measure"), measure("赔款到账短信提醒", "2027-03-31", False))

        rows = db.session.execute(select(ImprovementMeasure).order_by(ImprovementMeasure.seq)).scalars().all()
        assert [(m.seq, m.title, m.state, m.owner_id, str(m.due_on)) for m in rows] == [
            (1, "理赔材料清单一次性告知", "open", owner.user.id, "2027-02-26"),
            (2, "赔款到账短信提醒", "open", owner.user.id, "2027-03-31")]
        assert all(str(m.period_start) == "2026-10-01" and m.category == "claim_delay" for m in rows)
        # The measures' tasks went straight to their owner: in their own queue, in nobody's pool.
        mine = [t for t in tasks(client, owner, "mine") if t["element_id"] == "carry_out_measure"]
        assert len(mine) == 2 and all(t["assignee"] == "measure_owner" for t in mine)
        assert sorted(t["subject"] for t in mine) == ["理赔材料清单一次性告知 · 2027-02-26", "赔款到账短信提醒 · 2027-03-31"]
        assert not [t for t in tasks(client, owner) if t["element_id"] == "carry_out_measure"]

        # Training: the training department's lane has the work.
        plan = open_task(client, training, "plan_training")
        complete(client, training, plan, {"training_topics": "理赔时效", "training_problems": "理赔时效类投诉上升",
                                          "training_audience": "理赔专员", "training_planned_on": "2027-01-20",
                                          "trainer": "张老师"})
        hold = open_task(client, training, "hold_training")
        assert hold["due_at"].startswith("2027-01-20T15:59:59")
        complete(client, training, hold, {"training_held_on": "2027-01-20", "training_attendees": "赵一\n钱二",
                                          "attendance_count": 2, "invited_count": 3,
                                          "training_completion": "partly_completed"})

        # The first measure is late: escalated, and management follows it up.
        clock.move_to(datetime(2027, 2, 27, 9, tzinfo=BUSINESS_TZ))
        assert fire_due_timers(app) == 1
        first = db.session.execute(select(ImprovementMeasure).where(ImprovementMeasure.seq == 1)).scalar_one()
        db.session.refresh(first)
        assert first.escalated and first.state == "open"
        follow_up = open_task(client, mgmt, "follow_up_late_measure")
        complete(client, mgmt, follow_up, {"follow_up_action": "new_date_agreed", "agreed_date": "2027-03-10",
                                           "follow_up_notes": "系统改造排期延后。"})
        carry = sorted((t for t in tasks(client, owner, "mine") if t["element_id"] == "carry_out_measure"),
                       key=lambda t: t["id"])
        done = {"measure_outcome": "done", "actions_taken": "上线了材料清单。", "evidence": "制度修订 2027-03 号",
                "completed_on": "2027-03-09"}
        assert "evidence" in complete(client, owner, carry[0], {**done, "evidence": ""}, expect=422)["error"]["fields"]
        complete(client, owner, carry[0], done)
        complete(client, owner, carry[1], {"measure_outcome": "dropped", "actions_taken": "短信渠道已覆盖此需求。",
                                           "completed_on": "2027-03-10"})

    rows = db.session.execute(select(ImprovementMeasure).order_by(ImprovementMeasure.seq)).scalars().all()
    for row in rows:
        db.session.refresh(row)
    assert {row.state for row in rows} == {"done", "dropped"}
    assert any(row.evidence == "制度修订 2027-03 号" and row.actions_taken == "上线了材料清单。"
               and str(row.completed_on) == "2027-03-09" for row in rows)
    # The agreed new date was recorded on the first measure while it was open.
    assert str(rows[0].due_on) == "2027-03-10" and rows[0].escalated
    assert all(row.completed_at is not None for row in rows)
    instance = db.session.get(ProcessInstance, review_id)
    db.session.refresh(instance)
    assert instance.status == "completed"


def test_a_meeting_without_measures_or_training_ends_the_review(app, people, client):
    mgmt = people["management"]
    with time_machine.travel(QUARTER_START, tick=False):
        review_id = start_quarterly_review(app)
        meeting = open_task(client, mgmt, "review_meeting")
        # Training needs its focus.
        bad = complete(client, mgmt, meeting, {**MEETING, "training_focus": ""}, expect=422)
        assert "training_focus" in bad["error"]["fields"]
        complete(client, mgmt, meeting, {**MEETING, "measures_needed": False, "training_needed": False,
                                         "training_focus": ""})
    instance = db.session.get(ProcessInstance, review_id)
    db.session.refresh(instance)
    assert instance.status == "completed"
    assert db.session.execute(select(func.count()).select_from(ImprovementMeasure)).scalar_one() == 0


@pytest.mark.parametrize("role", ["customer_service", "claims_specialist", "training"])
def test_other_roles_cannot_hold_the_meeting(app, people, client, role):
    with time_machine.travel(QUARTER_START, tick=False):
        start_quarterly_review(app)
        meeting = open_task(client, people["management"], "review_meeting")
        r = client.post(f"/api/v1/tasks/{meeting['id']}/complete", json={"data": MEETING},
                        headers=people[role].headers)
    assert r.status_code == 403



def test_the_pages_of_a_review_for_management_and_the_measure_owner(app, people, client):
    from tests.test_web import Browser, text
    mgmt = people["management"]
    with time_machine.travel(QUARTER_START, tick=True):
        start_quarterly_review(app)
        web = Browser(app).login("management")
        meeting = open_task(client, mgmt, "review_meeting")
        started = text(web.get(f"/tasks/{meeting['id']}"))
        assert "流程启动" in started and "投诉已登记" not in started     # a review registers no complaint
        complete(client, mgmt, meeting, {**MEETING, "training_needed": False})
        define = open_task(client, mgmt, "define_measure")
        home = text(web.get("/"))
        assert "登记改进措施" in home and "QR-2026Q4" in home
        page = web.get(f"/tasks/{define['id']}")
        body = page.get_data(as_text=True)
        # The owner is chosen from the users with the owner role; the attached analysis is one click away.
        assert 'value="measure_owner"' in body and "measure_owner (measure_owner)" in body
        assert 'data-testid="report-link"' in body and "/analysis/reports/" in body
        form = {k: ("true" if v is True else "false" if v is False else v) for k, v in measure("网页登记的措施", "2027-03-01", False).items()}
        wrong = web.post(f"/tasks/{define['id']}", {**form, "measure_owner": "claims_specialist",
                                                     "measure_due_on": "2026-12-01"})
        assert wrong.status_code == 422
        assert "该日期已过：请选择今天或以后的日期。" in text(wrong) and "请从选项中选择一项。" in text(wrong)
        done = web.post(f"/tasks/{define['id']}", form)
        assert done.status_code == 302, text(done)
        owner = Browser(app).login("measure_owner")
        mine = text(owner.get("/"))
        assert "落实改进措施" in mine and "网页登记的措施 · 2027-03-01" in mine
        task_id = [t for t in tasks(client, people["measure_owner"], "mine") if t["element_id"] == "carry_out_measure"][0]["id"]
        own_page = text(owner.get(f"/tasks/{task_id}"))
        assert "网页登记的措施 · 2027-03-01" in own_page and "投诉分析" in own_page
        assert 'data-testid="report-link"' not in owner.get(f"/tasks/{task_id}").get_data(as_text=True)
        # A measure owner reads no complaint.
        assert owner.get("/complaints").status_code == 403


def test_a_reviews_steps_are_named_in_english_in_the_queue_and_its_filter(app, people):
    """Lists name a step from the forms of every process's newest version, not the complaint process's alone: the
    quarterly review's meeting reads in English in the queue row and in the step filter."""
    from tests.test_web import Browser, text
    with time_machine.travel(QUARTER_START, tick=True):
        start_quarterly_review(app)
        web = Browser(app).login("management")
        web.get("/language/en?next=/")
        home = web.get("/")
        words = text(home)
        assert "Complaint review meeting" in words and "召开投诉处理总结会议" not in words, words
        assert re.search(r'<option value="review_meeting"[^>]*>\s*Complaint review meeting', home.text), home.text


def test_management_starts_the_review_of_a_period_from_the_analysis_page(app, people):
    from tests.test_web import Browser, text
    web = Browser(app).login("management")
    page = web.get("/analysis?quarter=2026Q3")
    assert page.status_code == 200 and 'data-testid="start-review"' in page.get_data(as_text=True)
    action = "/analysis/review?from=2026-07-01&to=2026-09-30"
    started = web.post(action, {}, page="/analysis?quarter=2026Q3", follow_redirects=True)
    assert "2026Q3 的季度回顾已启动：分析报告已附上" in text(started)
    assert [r.business_key for r in reviews()] == ["QR-2026Q3"]
    again = web.post(action, {}, page="/analysis?quarter=2026Q3", follow_redirects=True)
    assert "2026Q3 的季度回顾已经启动过。" in text(again) and len(reviews()) == 1
    shown = web.get("/analysis?quarter=2026Q3").get_data(as_text=True)
    assert 'data-testid="review-started"' in shown and 'data-testid="start-review"' not in shown
    bad = web.post("/analysis/review?from=2026-09-30&to=2026-07-01", {}, page="/analysis?quarter=2026Q3",
                   follow_redirects=True)
    assert bad.status_code == 422 and len(reviews()) == 1          # the page says what is wrong with the dates
    # A period that has not ended offers no start, and a start asked for anyway is refused in words.
    future = web.get("/analysis?quarter=2099Q1").get_data(as_text=True)
    assert 'data-testid="review-not-yet"' in future and 'data-testid="start-review"' not in future
    early = web.post("/analysis/review?quarter=2099Q1", {}, page="/analysis?quarter=2099Q1", follow_redirects=True)
    assert "2099Q1 结束后才能开始其回顾。" in text(early) and len(reviews()) == 1
    # Training reads the analysis but does not start reviews.
    trainer = Browser(app).login("training")
    assert 'data-testid="start-review"' not in trainer.get("/analysis?quarter=2026Q2").get_data(as_text=True)
    assert trainer.post("/analysis/review?quarter=2026Q2", {}, page="/analysis?quarter=2026Q2").status_code == 403
    assert len(reviews()) == 1


def _define_one(client, people, due_on, title="理赔材料清单一次性告知"):
    mgmt = people["management"]
    complete(client, mgmt, open_task(client, mgmt, "review_meeting"), {**MEETING, "training_needed": False})
    complete(client, mgmt, open_task(client, mgmt, "define_measure"), measure(title, due_on, False))


def _measure_row():
    row = db.session.execute(select(ImprovementMeasure)).scalar_one()
    db.session.refresh(row)
    return row


def test_a_late_measure_is_escalated_again_at_each_new_date_and_closing_it_ends_the_follow_up(app, people, client):
    mgmt, owner = people["management"], people["measure_owner"]
    with time_machine.travel(QUARTER_START, tick=False) as clock:
        review_id = start_quarterly_review(app)
        _define_one(client, people, "2027-02-26")
        clock.move_to(datetime(2027, 2, 27, 9, tzinfo=BUSINESS_TZ))
        assert fire_due_timers(app) == 1
        first = open_task(client, mgmt, "follow_up_late_measure")
        assert first["subject"] == "理赔材料清单一次性告知 · measure_owner · 2027-02-26"
        complete(client, mgmt, first, {"follow_up_action": "new_date_agreed", "agreed_date": "2027-03-10",
                                       "follow_up_notes": "约定新日期"})
        assert str(_measure_row().due_on) == "2027-03-10"
        assert not [t for t in tasks(client, mgmt) if t["element_id"] == "follow_up_late_measure"]
        # Still not done at the new date: escalated again.
        clock.move_to(datetime(2027, 3, 11, 9, tzinfo=BUSINESS_TZ))
        assert fire_due_timers(app) == 1
        second = open_task(client, mgmt, "follow_up_late_measure")
        assert second["subject"].endswith("2027-03-10")
        # The owner finishes before management follows up: the follow-up is withdrawn, the review ends.
        carry = [t for t in tasks(client, owner, "mine") if t["element_id"] == "carry_out_measure"][0]
        complete(client, owner, carry, {"measure_outcome": "done", "actions_taken": "已上线", "evidence": "变更单 88",
                                        "completed_on": "2027-03-11"})
    withdrawn = db.session.get(HumanTask, second["id"])
    db.session.refresh(withdrawn)
    assert withdrawn.state == "cancelled"
    row = _measure_row()
    assert (row.state, str(row.completed_on), row.owner_id) == ("done", "2027-03-11", owner.user.id)
    instance = db.session.get(ProcessInstance, review_id)
    db.session.refresh(instance)
    assert instance.status == "completed"


def test_a_supervisor_gives_a_measure_to_another_owner_who_closes_it(app, people, client):
    from tests.conftest import make_user
    from tests.test_web import Browser
    other = make_user("owner_2", "measure_owner")
    with time_machine.travel(QUARTER_START, tick=True):
        start_quarterly_review(app)
        _define_one(client, people, "2027-03-31")
        carry = [t for t in tasks(client, people["measure_owner"], "mine") if t["element_id"] == "carry_out_measure"][0]
        # The owner reads their task through the API too.
        r = client.get(f"/api/v1/tasks/{carry['id']}", headers=people["measure_owner"].headers)
        assert r.status_code == 200 and r.json["task"]["subject"] == "理赔材料清单一次性告知 · 2027-03-31"
        web = Browser(app).login("management")
        page = web.get(f"/tasks/{carry['id']}")           # a supervisor reads any task, to reassign it
        assert page.status_code == 200 and 'data-testid="assign-select"' in page.get_data(as_text=True)
        moved = web.post(f"/tasks/{carry['id']}/assign", {"username": "owner_2"}, page=f"/tasks/{carry['id']}")
        assert moved.status_code == 302
        assert web.post(f"/tasks/{carry['id']}", {"measure_outcome": "done"}).status_code == 403   # not theirs to do
        complete(client, other, carry, {"measure_outcome": "dropped", "actions_taken": "并入另一项措施。",
                                        "completed_on": "2027-01-05"})
    row = _measure_row()
    assert (row.state, row.owner_id, row.evidence) == ("dropped", other.user.id, "")


def test_a_task_named_for_someone_who_cannot_take_it_stays_in_the_queue(app, people, client):
    from app.models import AuditEvent
    from app.timeutil import utcnow
    with time_machine.travel(QUARTER_START, tick=True):
        start_quarterly_review(app)
        _define_one(client, people, "2027-03-31")
    runtime = app.extensions["runtime"]
    row = db.session.execute(select(HumanTask).where(HumanTask.element_id == "carry_out_measure")).scalar_one()
    row.assignee_id, row.claimed_at = None, None
    inst = db.session.get(ProcessInstance, row.instance_id)
    for name in ("claims_specialist", "nobody"):       # the wrong role; no such user
        runtime._assign_as_drawn(inst, row, name, "test", utcnow())
        assert row.assignee_id is None
    db.session.commit()
    reasons = [e.data["reason"] for e in db.session.execute(select(AuditEvent).where(
        AuditEvent.action == "task_assignee_unavailable").order_by(AuditEvent.id)).scalars()]
    assert reasons == ["claims_specialist is not an active user with the role measure_owner",
                       "nobody is not an active user with the role measure_owner"]


def test_task_properties_are_checked_at_deploy_and_never_act(app, bundles, caplog):
    from pathlib import Path

    from SpiffWorkflow import TaskState

    from app import known_lanes
    from app.config import ROOT
    from app.engine import workflow
    from app.engine.registry import load_with_upload
    from app.engine.scripting import make_script_engine
    source = (ROOT / "processes" / "improvement_measure.bpmn").read_text(encoding="utf-8")
    good = "value=\"measure['title'] + ' · ' + measure['due_on']\""
    assert good in source
    broken = source.replace(good, "value=\"measure['title'] +\"")
    _, problems = load_with_upload(Path(app.config["PROCESSES_DIR"]), Path(app.config["FORMS_DIR"]), known_lanes(app),
                                   "improvement_measure.bpmn", broken.encode("utf-8"))
    assert [p.element_id for p in problems] == ["carry_out_measure"] and "property subject" in problems[0].message
    # On a running workflow: an expression that fails or would act is left out, and nothing is sent.
    bundle = next(b for b in bundles if b.process_id == "quarterly_review")
    effects = []
    wf = workflow.start(bundle.content_hash, bundle.spec_json, bundle.subprocess_specs_json,
                        {"period_start": "2026-07-01", "period_end": "2026-09-30", "period_label": "2026Q3"},
                        make_script_engine(effects))
    [meeting] = wf.get_tasks(state=TaskState.READY, manual=True)
    spec, kept = meeting.task_spec, meeting.task_spec.extensions       # the spec is shared: put it back
    spec.extensions = {"properties": {"assignee": "no_such_name", "subject": "notify_customer('x') or 'sent'"}}
    try:
        assert workflow.task_properties(wf, str(meeting.id)) == {}
    finally:
        spec.extensions = kept
    assert [e["kind"] for e in effects] == ["attach_analysis", "confirmed_due"]
    assert "could not be evaluated" in caplog.text

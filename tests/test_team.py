"""Team tasks (/team) and bulk assign / release (/team/bulk, POST /api/v1/tasks/bulk) over real HTTP with
the real runtime: the list shows the open tasks of every lane (less those 回避 keeps the supervisor out
of) with its filters and masking; a bulk action changes each task it may and names each one refused,
with the audit events of single calls; only supervisors get in; the web form needs its CSRF token; at
most 200 tasks at a time. The two data paths (web and API bulk actions) run on both backends; the page's
checks on SQLite only (they do not depend on the database)."""
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, HumanTask
from app.timeutil import utcnow
from tests.flow import Desk
from tests.test_web import TOKEN, Browser, flashes, fresh, snapshot, text

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def desk(app, people):
    return Desk(Browser(app), people)


@pytest.fixture
def world(desk):
    """Open tasks in three lanes: a fresh review (customer service), two investigations (claims
    specialists; the claims specialist handled the second one's claim), a malicious review
    (management), and a review of a complaint about a claim the manager handled (回避)."""
    fresh_one = desk.register()
    investigating = desk.register()
    desk.complete(investigating, "initial_review")
    avoided_by_specialist = desk.register(claim_handler="claims_specialist")
    desk.complete(avoided_by_specialist, "initial_review")
    malicious = desk.register()
    desk.complete(malicious, "initial_review", decision="suspected_malicious", malicious_indicators="重复投诉")
    avoided_by_manager = desk.register(claim_handler="management")
    return {"fresh": fresh_one, "investigating": investigating, "avoided": avoided_by_specialist,
            "malicious": malicious, "manager_avoids": avoided_by_manager}


@pytest.fixture
def investigation(desk):
    """One complaint under investigation (claims specialists' lane): for the checks that need one task."""
    number = desk.register()
    desk.complete(number, "initial_review")
    return number


def task_of(number, element_id) -> HumanTask:
    fresh()
    return db.session.execute(select(HumanTask).where(HumanTask.business_key == number,
                                                      HumanTask.element_id == element_id,
                                                      HumanTask.state == "open")).scalar_one()


def rows(response) -> list[dict]:
    """The rows of the team list: task id, complaint number, step and role."""
    found = re.findall(r'data-testid="team-row" data-task-id="([^"]+)" data-complaint="([^"]*)" '
                       r'data-step="([^"]+)" data-role="([^"]*)"', response.text)
    return [{"id": i, "number": n, "step": s, "role": r} for i, n, s, r in found]


def numbers(response) -> set:
    return {row["number"] for row in rows(response)}


def events(action, task_id):
    fresh()
    return db.session.execute(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.task_id == task_id)
                              .order_by(AuditEvent.id)).scalars().all()


def as_(app, username) -> Browser:
    return Browser(app).login(username)


# ---- the list ------------------------------------------------------------------------------------------
@SQLITE_ONLY
def test_the_list_shows_every_lane_and_leaves_out_what_the_manager_must_stand_aside_from(app, backend, world):
    manager = as_(app, "management")
    r = manager.get("/team")
    assert r.status_code == 200 and 'data-testid="nav-team"' in r.text
    found = rows(r)
    assert {row["role"] for row in found} == {"customer_service", "claims_specialist", "management"}
    assert numbers(r) == {world["fresh"], world["investigating"], world["avoided"], world["malicious"]}
    assert world["manager_avoids"] not in r.text                           # 回避: not even its number
    assert world["manager_avoids"] in numbers(as_(app, "management_2").get("/team"))
    # Customer names masked for management (no personal-data role); every row has a checkbox.
    assert "张*" in text(r) and "张三" not in text(r)
    assert r.text.count('data-testid="select-task"') == len(found)
    assert 'data-testid="complaint-link"' in r.text and "团队任务" in text(r)


@SQLITE_ONLY
def test_a_rows_cells_and_the_colleagues_to_give_tasks_to(app, backend, world):
    """Each cell of a row says what the queue page's says (the same app/web/queue_rows.py), plus the task's role
    and holder; a colleague in the "give to" list shows with their roles' names."""
    review = task_of(world["fresh"], "initial_review")
    r = as_(app, "management").get("/team")
    row = re.search(rf'<tr data-testid="team-row" data-task-id="{review.id}".*?</tr>', r.text, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", " ", c).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert f'href="/complaints/{world["fresh"]}" data-testid="complaint-link"' in row
    assert f'href="/tasks/{review.id}" data-testid="task-link"' in row
    assert cells[2:7] == [["客服人员"], ["无人（待领取）"], ["张*"], ["电话热线"], ["理赔纠纷", "›", "理赔时效"]]
    assert re.search(r'data-testid="time-left" data-state="soon">剩余 2[34] 小时</span><br><small class="muted">'
                     r'\d{4}年\d+月\d+日 \d\d:\d\d</small>', row)                      # the 24-hour review
    assert 'class="row-soon"' in row
    assert '<option value="claims_specialist">claims_specialist · 理赔专员</option>' in r.text
    assert '<option value="management_2">management_2 · 管理层</option>' in r.text
    english = as_(app, "management")
    english.get("/language/en?next=/")
    r = english.get("/team")
    row = re.search(rf'<tr data-testid="team-row" data-task-id="{review.id}".*?</tr>', r.text, re.S).group(0)
    assert ">Customer service<" in row and ">Hotline<" in row and "Claim settlement too slow<" in row
    assert '<option value="claims_specialist">claims_specialist · Claims specialist</option>' in r.text


@SQLITE_ONLY
def test_the_filters_holder_role_step_overdue_and_pages(app, backend, world, desk):
    investigate = task_of(world["investigating"], "investigate")
    r = desk.client.post(f"/api/v1/tasks/{investigate.id}/claim", json={},
                         headers=desk.people["claims_specialist"].headers)
    assert r.status_code == 200
    manager = as_(app, "management")
    assert numbers(manager.get("/team?role=claims_specialist")) == {world["investigating"], world["avoided"]}
    assert {row["step"] for row in rows(manager.get("/team?step=initial_review"))} == {"initial_review"}
    assert numbers(manager.get("/team?step=initial_review")) == {world["fresh"]}
    held = manager.get("/team?holder=claims_specialist")
    assert [row["id"] for row in rows(held)] == [investigate.id]
    assert re.search(r'data-testid="task-holder">claims_specialist<', held.text)
    assert investigate.id not in {row["id"] for row in rows(manager.get("/team?holder=none"))}
    assert rows(manager.get("/team?holder=nobody-at-all")) == []
    r = manager.get("/team?role=management&holder=none")
    assert numbers(r) == {world["malicious"]}
    assert '<option value="management" selected>管理层</option>' in r.text      # the filter shows as chosen
    assert 'data-testid="team-empty"' in manager.get("/team?overdue=1").text
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):   # the 24-hour review is late now
        late = as_(app, "management").get("/team?overdue=1")
        assert numbers(late) == {world["fresh"]} and 'data-state="overdue"' in late.text
    app.config["WEB_PER_PAGE"] = 2
    first, second = manager.get("/team"), manager.get("/team?page=2")
    assert len(rows(first)) == 2 and len(rows(second)) == 2 and 'data-testid="team-total">4<' in first.text
    assert not {row["id"] for row in rows(first)} & {row["id"] for row in rows(second)}
    assert "page=2" in first.text
    assert manager.get("/team?page=x").status_code == 200
    everything = manager.get("/team?all=1&role=claims_specialist")
    assert everything.text.count(" checked data-testid=\"select-task\"") == 2


@SQLITE_ONLY
def test_only_supervisors_get_the_page_the_form_and_the_api(app, backend, investigation, people):
    task = task_of(investigation, "investigate")
    for who in ("claims_specialist", "customer_service", "compliance", "head_office"):
        b = as_(app, who)
        page = b.get("/")
        assert 'data-testid="nav-team"' not in page.text
        assert b.get("/team").status_code == 403
        token = TOKEN.search(b.get("/", follow_redirects=True).text).group(1)
        r = b.post("/team/bulk", {"action": "release", "task_id": task.id, "csrf_token": token}, token=False)
        assert r.status_code == 403
        r = b.post("/api/v1/tasks/bulk", json={"action": "release", "task_ids": [task.id]}, headers=people[who].headers)
        assert r.status_code == 403 and r.json["error"]["code"] == "wrong_role"
    assert Browser(app).get("/team").location.startswith("/login")
    assert Browser(app).post("/api/v1/tasks/bulk", json={}).status_code == 401
    assert events("task_unclaimed", task.id) == []


@SQLITE_ONLY
def test_the_bulk_form_needs_its_csrf_token(app, backend, investigation):
    task = task_of(investigation, "investigate")
    manager = as_(app, "management")
    before = snapshot()
    form = {"action": "assign", "username": "claims_specialist_2", "task_id": task.id}
    r = manager.post("/team/bulk", form, token=False)
    assert r.status_code == 400 and "表单已失效" in text(r)
    assert manager.post("/team/bulk", {**form, "csrf_token": "forged"}, token=False).status_code == 400
    assert snapshot() == before
    assert manager.post("/team/bulk", form, page="/team").status_code == 302        # with it: done
    assert task_of(investigation, "investigate").assignee.username == "claims_specialist_2"


@SQLITE_ONLY
def test_bad_requests_say_why_keep_the_filters_and_change_nothing(app, backend, investigation):
    task = task_of(investigation, "investigate")
    manager = as_(app, "management")
    query = "?role=claims_specialist&overdue=1&page=1"
    before = snapshot()
    cases = [({"action": "assign", "username": "claims_specialist"}, "请至少选择一项任务"),
             ({"action": "assign", "task_id": task.id}, "请选择接收所选任务的同事"),
             ({"action": "assign", "task_id": task.id, "username": "nobody"}, "没有用户 nobody"),
             ({"action": "delete", "task_id": task.id}, "请选择对所选任务的操作"),
             ({"action": "release", "task_id": [f"t{i}" for i in range(201)]}, "每次最多处理 200 项任务，您选择了 201 项")]
    for form, message in cases:
        r = manager.post("/team/bulk" + query, form, page="/team")
        assert r.status_code == 302 and r.location == "/team" + query
        said = flashes(manager.get(r.location))
        assert any(message in m for m in said), (form, said)
    assert snapshot() == before
    # Exactly 200 is allowed (here none of them exists: each is named, none changed).
    r = manager.post("/team/bulk", {"action": "release", "task_id": [f"t{i}" for i in range(200)]}, page="/team")
    assert any("所选的 200 项任务均未更改" in m for m in flashes(manager.get(r.location)))
    assert snapshot() == before


@SQLITE_ONLY
def test_many_refusals_are_named_in_lines_that_fit_the_session_cookie(app, backend, people):
    manager = as_(app, "management")
    ids = [str(uuid.uuid4()) for _ in range(200)]
    r = manager.post("/team/bulk", {"action": "release", "task_id": ids}, page="/team")
    cookie = manager.client.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 4000
    said = flashes(manager.get(r.location))
    assert said[0] == "所选的 200 项任务均未更改。"
    assert said[1] == f"未更改：{ids[0]} · —：没有这个任务，可能已被删除。"
    assert len(said) == 1 + 12 + 1 and said[-1] == "另有 188 项任务未更改，仍在列表中。"


# ---- the bulk actions (both backends) ------------------------------------------------------------------
def test_bulk_assign_and_release_on_the_page(app, world, desk):
    investigate = task_of(world["investigating"], "investigate")
    avoided = task_of(world["avoided"], "investigate")
    review = task_of(world["fresh"], "initial_review")
    manager = as_(app, "management")
    page = manager.get("/team?role=claims_specialist")
    assert 'data-testid="bulk-assign"' in page.text and "claims_specialist_2" in page.text
    form = {"action": "assign", "username": "claims_specialist",
            "task_id": [investigate.id, avoided.id, review.id, investigate.id]}       # a repeat counts once
    r = manager.post("/team/bulk?role=claims_specialist", form, page="/team?role=claims_specialist")
    assert r.status_code == 302 and r.location == "/team?role=claims_specialist"
    said = flashes(manager.get(r.location))
    assert said[0] == "已将 1 项任务改派给claims_specialist。"
    assert len(said) == 3
    assert said[1].startswith(f"未更改：{world['avoided']} · ") and said[1].endswith(
        "claims_specialist 经办过该投诉涉及的原理赔案件，须回避。")
    assert said[2].startswith(f"未更改：{world['fresh']} · ") and said[2].endswith(
        "claims_specialist 不具备此任务所需的角色。")
    assert task_of(world["investigating"], "investigate").assignee.username == "claims_specialist"
    assert task_of(world["avoided"], "investigate").assignee_id is None
    assert task_of(world["fresh"], "initial_review").assignee_id is None
    [assigned] = events("task_assigned", investigate.id)
    assert assigned.actor == "management" and assigned.data == {"assignee": "claims_specialist",
                                                                "previous_assignee": None}
    assert events("task_assigned", avoided.id) == [] and events("task_assigned", review.id) == []

    # Release: the held one goes back to the queue; the one nobody holds is named, not "released" again.
    r = manager.post("/team/bulk", {"action": "release", "task_id": [investigate.id, review.id]}, page="/team")
    said = flashes(manager.get(r.location))
    assert said[0] == "1 项任务已退回待领取队列。"
    assert said[1].startswith(f"未更改：{world['fresh']} · ") and said[1].endswith("此任务无人经办，已在其角色的待领取队列中。")
    assert task_of(world["investigating"], "investigate").assignee_id is None
    [released] = events("task_unclaimed", investigate.id)
    assert released.actor == "management" and released.data == {"previous_assignee": "claims_specialist"}
    assert events("task_unclaimed", review.id) == []
    # English: the same summary in the other language.
    manager.get("/team?lang=en")
    r = manager.post("/team/bulk", {"action": "assign", "username": "claims_specialist_2",
                                    "task_id": [investigate.id]}, page="/team")
    assert flashes(manager.get(r.location))[0] == "1 task given to claims_specialist_2."


def test_bulk_through_the_api(app, world, people):
    investigate = task_of(world["investigating"], "investigate")
    avoided = task_of(world["avoided"], "investigate")
    malicious = task_of(world["malicious"], "malicious_review")
    client, headers = Browser(app), people["management"].headers
    r = client.post("/api/v1/tasks/bulk", headers=headers, json={
        "action": "assign", "username": "claims_specialist_2", "task_ids": [investigate.id, avoided.id, malicious.id,
                                                                            "no-such-task", investigate.id]})
    assert r.status_code == 200, r.json
    assert r.json["action"] == "assign" and r.json["username"] == "claims_specialist_2"
    assert (r.json["done"], r.json["refused"]) == (2, 2)
    results = {item["task_id"]: item for item in r.json["results"]}
    assert [item["task_id"] for item in r.json["results"]] == [investigate.id, avoided.id, malicious.id,
                                                               "no-such-task"]
    assert results[investigate.id] == {"task_id": investigate.id, "complaint_number": world["investigating"],
                                       "ok": True, "error": None}
    assert results[avoided.id]["ok"] and results[avoided.id]["complaint_number"] == world["avoided"]
    assert results[malicious.id]["error"]["code"] == "assignee_lacks_role" and not results[malicious.id]["ok"]
    assert results["no-such-task"] == {"task_id": "no-such-task", "complaint_number": None, "ok": False,
                                       "error": {"code": "not_found", "message": "no task no-such-task"}}
    assert len(events("task_assigned", investigate.id)) == 1 and len(events("task_assigned", avoided.id)) == 1

    # The manager who handled a claim stands aside from its complaint's tasks, in bulk too.
    avoided_review = task_of(world["manager_avoids"], "initial_review")
    r = client.post("/api/v1/tasks/bulk", headers=headers, json={
        "action": "release", "task_ids": [investigate.id, avoided_review.id, malicious.id]})
    assert r.status_code == 200 and (r.json["done"], r.json["refused"]) == (1, 2)
    codes = [item["error"] and item["error"]["code"] for item in r.json["results"]]
    assert codes == [None, "excluded", "not_held"]
    assert task_of(world["investigating"], "investigate").assignee_id is None
    assert events("task_unclaimed", avoided_review.id) == [] and events("task_unclaimed", malicious.id) == []


@SQLITE_ONLY
def test_api_errors_have_the_apps_shape(app, backend, investigation, people):
    client, headers = Browser(app), people["management"].headers
    task = task_of(investigation, "investigate")
    before = snapshot()

    def error(body, status, code="invalid_data"):
        r = client.post("/api/v1/tasks/bulk", headers=headers, json=body)
        assert r.status_code == status, r.json
        assert r.json["error"]["code"] == code and isinstance(r.json["error"]["message"], str)
        assert all(isinstance(v, str) for v in r.json["error"]["fields"].values()), r.json
        return r.json["error"]["fields"]

    assert set(error({"task_ids": [task.id]}, 422)) == {"action"}
    assert set(error({"action": "assign", "task_ids": [task.id]}, 422)) == {"username"}
    assert set(error({"action": "move", "task_ids": [task.id]}, 422)) == {"action"}
    assert set(error({"action": "release", "task_ids": []}, 422)) == {"task_ids"}
    assert set(error({"action": "release", "task_ids": [f"t{i}" for i in range(201)]}, 422)) == {"task_ids"}
    assert set(error({"action": "release", "task_ids": [task.id, 7]}, 422)) == {"task_ids.1"}
    assert set(error({"action": "release", "task_ids": ["a\u0000b"]}, 422)) == {"task_ids.0"}
    assert set(error({"action": "release", "task_ids": [task.id], "extra": 1}, 422)) == {"extra"}
    assert error({"action": "assign", "username": "nobody", "task_ids": [task.id]}, 404, "not_found") == {
        "username": "unknown user"}
    r = client.open("/api/v1/tasks/bulk", method="POST", headers=headers, data="[]", content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["code"] == "malformed_body"
    assert snapshot() == before
    fresh()
    assert db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action.in_(("task_assigned", "task_unclaimed")))).scalar_one() == 0

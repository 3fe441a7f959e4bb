"""The handlers' web UI over real HTTP (Flask's test client, CSRF on, the real runtime), on SQLite: login and
lockout, role checks, CSRF, masking, forms, double submission, language. The walk of a complaint through the
HTML routes, on every backend, is in test_web_backends.py."""
import html
import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.extensions import db
from app.scheduler import fire_due_timers
from app.models import AuditEvent, Complaint, HumanTask, User
from app.timeutil import BUSINESS_TZ, utcnow
from tests.flow import COMPLAINT, FORM_DATA, Desk

# SQLite only: what this module checks is the page (its HTML, script and layout), the same on every
# backend; the data paths behind it run on both backends in the API and engine tests.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')




class Browser:
    """One person's browser: cookies kept, each request in its own app context (as in production,
    so nothing cached in `g` leaks between requests), the CSRF token read from the page's HTML."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def open(self, url, method="GET", **kwargs):
        with self.app.app_context():
            return self.client.open(url, method=method, **kwargs)

    def get(self, url, **kwargs):
        return self.open(url, **kwargs)

    def post(self, url, data=None, page=None, token=True, **kwargs):
        """POST `data` to `url` with the CSRF token of `page` (default: the url itself), as a
        browser submitting the form on that page does."""
        if "json" in kwargs:                      # the JSON API: Bearer tokens, no CSRF token
            return self.open(url, method="POST", **kwargs)
        data = dict(data or {})
        if token:
            data.setdefault("csrf_token", self.token(page or url))
        return self.open(url, method="POST", data=data, **kwargs)

    def token(self, page):
        r = self.get(page)
        found = TOKEN.search(r.text)
        assert found, f"no csrf_token on {page} ({r.status_code})"
        return found.group(1)

    def login(self, username, password=None):
        r = self.post("/login", {"username": username, "password": password or f"pw-{username}"})
        assert r.status_code == 302, text(r)
        return self


def text(response) -> str:
    """The visible text of a page, whitespace collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def flashes(response) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'data-testid="flash">([^<]*)<', response.get_data(as_text=True))]


def task_ids(response, queue) -> list[str]:
    """Task ids of the rows of one queue table on the home page."""
    page = response.get_data(as_text=True)
    table = re.search(rf'data-testid="queue-{queue}">(.*?)</table>', page, flags=re.S)
    return re.findall(r'data-testid="queue-row" data-task-id="([^"]+)"', table.group(1)) if table else []


def fresh():
    """The test's own session sees what the requests committed."""
    db.session.rollback()
    db.session.expire_all()


def audit_count(action=None):
    fresh()
    q = select(func.count()).select_from(AuditEvent)
    if action:
        q = q.where(AuditEvent.action == action)
    return db.session.execute(q).scalar_one()


def snapshot():
    fresh()
    tasks = db.session.execute(select(HumanTask.id, HumanTask.state, HumanTask.assignee_id, HumanTask.row_version)
                               .order_by(HumanTask.id)).all()
    complaints = db.session.execute(select(Complaint.number, Complaint.current_step, Complaint.status)).all()
    events = db.session.execute(select(AuditEvent.action).where(AuditEvent.action != "personal_data_viewed")
                                .order_by(AuditEvent.id)).scalars().all()
    return tasks, complaints, events


def open_task(number, element_id):
    fresh()
    return db.session.execute(select(HumanTask).where(HumanTask.business_key == number,
                                                      HumanTask.element_id == element_id,
                                                      HumanTask.state == "open")).scalar_one()


@pytest.fixture
def browser(app):
    return lambda: Browser(app)


@pytest.fixture
def desk(app, people):
    """Sets up complaints through the JSON API (the web routes are what these tests check)."""
    return Desk(Browser(app), people)


def as_(browser, username):
    return browser().login(username)


# ---- login, lockout, logout ---------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/", "/complaints", "/complaints/new", "/complaints/TS-1", "/tasks/x",
                                 "/complaints?q=13812345678"])
def test_every_page_requires_login(browser, people, url):
    r = browser().get(url)
    assert r.status_code == 302 and r.location.startswith("/login?next=")


@pytest.mark.parametrize("url", ["/tasks/x/claim", "/tasks/x/unclaim", "/tasks/x/assign", "/tasks/x",
                                 "/complaints/new", "/logout"])
def test_every_action_requires_login(browser, people, url):
    r = browser().post(url, page="/login")        # a valid token, but nobody logged in
    assert r.status_code == 302 and r.location.startswith("/login")


def test_login_page_and_redirect_back(browser, people):
    b = browser()
    r = b.get("/login")
    assert r.status_code == 200 and 'for="username"' in r.text and 'for="password"' in r.text
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = b.post("/login?next=/complaints", {"username": "management", "password": "pw-management"}, page="/login")
    assert r.status_code == 302 and r.location == "/complaints"
    assert b.get("/login").location == "/"                      # logged in already
    assert b.get("/").status_code == 200


def test_login_never_redirects_off_site(browser, people):
    r = browser().post("/login?next=https://evil.example/x", {"username": "management", "password": "pw-management"},
                       page="/login")
    assert r.status_code == 302 and r.location == "/"


def test_wrong_password_and_unknown_user_get_the_same_message(browser, people):
    b = browser()
    for username in ("management", "nobody"):
        r = b.post("/login", {"username": username, "password": "wrong"})
        assert r.status_code == 401
        assert "用户名或密码错误" in text(r)
        assert f'value="{username}"' in r.text                  # the username is kept
    assert b.get("/").status_code == 302                         # still logged out


def test_lockout_after_five_failures_for_fifteen_minutes(browser, people):
    t0 = utcnow()
    with time_machine.travel(t0, tick=False) as clock:
        b = browser()
        for _ in range(4):
            assert b.post("/login", {"username": "claims_specialist", "password": "nope"}).status_code == 401
        r = b.post("/login", {"username": "claims_specialist", "password": "nope"})
        assert r.status_code == 429 and "账户已锁定" in text(r)
        assert audit_count("account_locked") == 1
        # Even the right password is refused while locked, with the time it unlocks (Beijing time).
        r = b.post("/login", {"username": "claims_specialist", "password": "pw-claims_specialist"})
        until = (t0 + timedelta(minutes=15)).astimezone(BUSINESS_TZ)
        assert r.status_code == 429 and until.strftime("%H:%M") in text(r)
        assert b.get("/").status_code == 302
        clock.shift(timedelta(minutes=14))
        assert b.post("/login", {"username": "claims_specialist",
                                 "password": "pw-claims_specialist"}).status_code == 429
        clock.shift(timedelta(minutes=1, seconds=1))
        b.login("claims_specialist")
        assert b.get("/").status_code == 200
    fresh()
    user = db.session.execute(select(User).where(User.username == "claims_specialist")).scalar_one()
    assert user.failed_logins == 0 and user.locked_until is None


def test_a_good_login_resets_the_failure_count(browser, people):
    b = browser()
    for _ in range(4):
        b.post("/login", {"username": "training", "password": "nope"})
    b.login("training")
    b.post("/logout", page="/")
    for _ in range(4):
        assert b.post("/login", {"username": "training", "password": "nope"}).status_code == 401


def test_inactive_user_cannot_log_in(browser, people):
    people["training"].user.active = False
    db.session.commit()
    r = browser().post("/login", {"username": "training", "password": "pw-training"})
    assert r.status_code == 401


def test_logout(browser, people):
    b = as_(browser, "management")
    r = b.post("/logout", page="/")
    assert r.status_code == 302 and r.location == "/login"
    assert "您已退出登录" in text(b.get("/login"))
    assert b.get("/").status_code == 302


# ---- CSRF -------------------------------------------------------------------------------------------
def test_forms_without_a_csrf_token_are_rejected(browser, people):
    b = as_(browser, "customer_service")
    body = {**COMPLAINT, "received_at": "2026-01-05T10:00"}
    before = snapshot()
    r = b.post("/complaints/new", body, token=False)
    assert r.status_code == 400 and "表单已失效" in text(r)
    r = b.post("/complaints/new", {**body, "csrf_token": "forged"}, token=False)
    assert r.status_code == 400
    assert b.post("/logout", token=False).status_code == 400
    assert browser().post("/login", {"username": "management", "password": "pw-management"},
                          token=False).status_code == 400
    assert snapshot() == before


def test_the_api_needs_no_csrf_token(app, people):
    r = Browser(app).post("/api/v1/complaints", json={**COMPLAINT, "received_at": utcnow().isoformat()},
                          headers=people["customer_service"].headers)
    assert r.status_code == 201


# ---- roles ------------------------------------------------------------------------------------------
@pytest.fixture
def clock(app):
    with time_machine.travel(utcnow(), tick=False) as traveller:
        yield traveller


def overdue_review(app, desk, clock):
    """A complaint whose 24-hour initial review is overdue: the scheduler fired the deadline, so a
    follow-up task waits in the management lane."""
    number = desk.register()
    clock.shift(timedelta(hours=25))
    assert fire_due_timers(app) == 1
    return number


def test_a_claims_specialist_cannot_open_or_claim_a_management_task(browser, desk, app, clock):
    number = overdue_review(app, desk, clock)
    task = open_task(number, "initial_review_overdue")
    b = as_(browser, "claims_specialist")
    r = b.get(f"/tasks/{task.id}")
    assert r.status_code == 403 and "此任务属于其他角色" in text(r)
    before = snapshot()
    assert b.post(f"/tasks/{task.id}/claim", page="/").status_code == 403
    assert b.post(f"/tasks/{task.id}", {"initial_review_overdue_cause": "x"}, page="/").status_code == 403
    assert snapshot() == before
    assert as_(browser, "management").get(f"/tasks/{task.id}").status_code == 200


def test_compliance_reads_everything_and_changes_nothing(browser, desk, app, clock):
    number = overdue_review(app, desk, clock)
    review = open_task(number, "initial_review")
    b = as_(browser, "compliance")
    assert b.get("/").location == "/complaints"                 # no queues: the complaint list instead
    assert number in text(b.get("/complaints"))
    assert b.get(f"/complaints/{number}").status_code == 200
    r = b.get(f"/tasks/{review.id}")
    assert r.status_code == 200 and 'data-testid="task-form"' not in r.text
    assert "您可以查看此任务，但不能处理" in text(r)
    before = snapshot()
    assert b.post(f"/tasks/{review.id}/claim", page="/complaints").status_code == 403
    assert b.post(f"/tasks/{review.id}", FORM_DATA["initial_review"], page="/complaints").status_code == 403
    assert b.post(f"/tasks/{review.id}/unclaim", page="/complaints").status_code == 403
    assert b.post(f"/tasks/{review.id}/assign", {"username": "customer_service"},
                  page="/complaints").status_code == 403
    assert b.get("/complaints/new").status_code == 403
    assert b.post("/complaints/new", {**COMPLAINT, "received_at": "2026-01-05T10:00"},
                  page="/complaints").status_code == 403
    assert snapshot() == before


def test_only_customer_service_registers(browser, people):
    for who in ("claims_specialist", "management", "compliance"):
        r = as_(browser, who).get("/complaints/new")
        assert r.status_code == 403 and "无权访问" in text(r)
    assert 'data-testid="nav-register"' not in as_(browser, "management").get("/").text


def test_a_role_without_pages_sees_a_friendly_page(browser, desk):
    number = desk.register()
    b = as_(browser, "process_owner")
    assert "这里没有您的工作" in text(b.get("/"))
    assert b.get(f"/complaints/{number}").status_code == 403
    assert b.get("/complaints").status_code == 403


def test_unknown_complaint_and_task_are_friendly_404s(browser, people):
    b = as_(browser, "management")
    r = b.get("/complaints/TS-20991231-999999")
    assert r.status_code == 404 and "没有编号为 TS-20991231-999999 的投诉" in text(r)
    r = b.get("/tasks/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "没有这个任务" in text(r)
    assert b.post("/tasks/nope/claim", page="/").status_code == 404


def test_the_original_claim_handler_stands_aside(browser, desk):
    number = desk.register(claim_handler="claims_specialist")
    desk.complete(number, "initial_review")
    investigate = open_task(number, "investigate")
    b = as_(browser, "claims_specialist")
    assert investigate.id not in task_ids(b.get("/"), "available")
    r = b.get(f"/tasks/{investigate.id}")
    assert r.status_code == 403 and "回避" in text(r)
    other = as_(browser, "claims_specialist_2")
    assert investigate.id in task_ids(other.get("/"), "available")


# ---- personal data ------------------------------------------------------------------------------------
def test_personal_data_masked_or_full_by_role_and_full_views_audited(browser, desk):
    number = desk.register()
    desk.complete(number, "initial_review")
    phone, masked_phone = COMPLAINT["phone"], "138****5678"

    views = audit_count("personal_data_viewed")
    r = as_(browser, "customer_service").get(f"/complaints/{number}")
    assert phone in r.text and COMPLAINT["id_number"] in r.text and 'data-personal="full"' in r.text
    assert audit_count("personal_data_viewed") == views + 1

    specialist = as_(browser, "claims_specialist")
    for who in (specialist, as_(browser, "compliance"), as_(browser, "management")):
        r = who.get(f"/complaints/{number}")
        assert phone not in r.text and masked_phone in r.text and COMPLAINT["email"] not in r.text
        assert COMPLAINT["id_number"] not in r.text and 'data-personal="masked"' in r.text
    assert audit_count("personal_data_viewed") == views + 1      # masked views are not full views

    # The specialist's queue shows the customer masked, never the phone.
    home = specialist.get("/")
    assert "张*" in text(home) and "张三" not in text(home) and phone not in home.text
    # Once the specialist holds the complaint's task, the task page shows the data in full, audited.
    investigate = open_task(number, "investigate")
    specialist.post(f"/tasks/{investigate.id}/claim", page="/")
    r = specialist.get(f"/tasks/{investigate.id}")
    assert phone in r.text and "张三" in text(r)
    assert audit_count("personal_data_viewed") == views + 2
    fresh()
    last = db.session.execute(select(AuditEvent).where(AuditEvent.action == "personal_data_viewed")
                              .order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
    assert last.actor == "claims_specialist" and last.business_key == number

    # Lists mask the phone even for customer service; search results too.
    cs = as_(browser, "customer_service")
    r = cs.get(f"/complaints?q={COMPLAINT['policy_number']}")
    assert masked_phone in r.text and phone not in r.text


# ---- the task form -------------------------------------------------------------------------------------
def claimed_review(browser, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    b = as_(browser, "customer_service")
    assert b.post(f"/tasks/{review.id}/claim", page="/").status_code == 302
    return number, review, b


def test_invalid_input_is_kept_and_explained_next_to_each_field(browser, desk):
    number, review, b = claimed_review(browser, desk)
    before = snapshot()
    r = b.post(f"/tasks/{review.id}", {"decision": "reject", "risk_level": "high",
                                       "review_notes": "材料不全，<无法>受理\r\n第二行", "rejection_reason": ""})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "有 1 项需要修改" in text(r)
    error = re.search(r'data-testid="error-rejection_reason">([^<]*)<', page)
    assert error and error.group(1) == "此项为必填项。"
    assert 'value="reject" checked' in page and 'value="high" checked' in page
    assert "材料不全，&lt;无法&gt;受理\r\n第二行</textarea>" in page or "材料不全，&lt;无法&gt;受理\n第二行</textarea>" in page
    assert 'aria-invalid="true"' in page
    # A value outside the enum and a missing required field.
    r = b.post(f"/tasks/{review.id}", {"decision": "maybe", "review_notes": "x"})
    assert r.status_code == 422
    assert re.search(r'data-testid="error-decision">请从选项中选择一项。<', r.text)
    assert re.search(r'data-testid="error-risk_level">此项为必填项。<', r.text)
    assert snapshot() == before


def test_number_bounds_and_types_are_explained(browser, desk):
    number = desk.register()
    desk.complete(number, "initial_review")
    desk.complete(number, "investigate", who="claims_specialist")
    plan = open_task(number, "analyse_and_plan")
    b = as_(browser, "claims_specialist")
    r = b.get(f"/tasks/{plan.id}")
    assert 'type="number"' in r.text and 'min="0"' in r.text and 'max="100000000"' in r.text
    data = {**FORM_DATA["analyse_and_plan"], "compensation_amount": "-5"}
    before = snapshot()
    r = b.post(f"/tasks/{plan.id}", data)
    assert r.status_code == 422
    assert re.search(r'data-testid="error-compensation_amount">请输入 0 至 100,000,000 之间的数字。<', r.text)
    assert 'value="-5"' in r.text
    r = b.post(f"/tasks/{plan.id}", {**data, "compensation_amount": "一千"})
    assert re.search(r'data-testid="error-compensation_amount">请输入数字。<', r.text)
    assert snapshot() == before
    r = b.post(f"/tasks/{plan.id}", {**data, "compensation_amount": "1000.50"})
    assert r.status_code == 302
    fresh()
    event = db.session.execute(select(AuditEvent).where(AuditEvent.task_id == plan.id,
                                                        AuditEvent.action == "task_completed")).scalar_one()
    assert event.data["form_data"]["compensation_amount"] == 1000.5


def test_checkboxes_dates_and_yes_no(browser, desk, app, clock):
    number = overdue_review(app, desk, clock)
    follow_up = open_task(number, "initial_review_overdue")
    b = as_(browser, "management")
    r = b.get(f"/tasks/{follow_up.id}")
    assert r.text.count('type="checkbox" id="f-initial_review_overdue_actions-') == 4
    assert 'type="date"' in r.text
    bad = {"initial_review_overdue_cause": "人手不足", "initial_review_overdue_due_date": "2026-13-45"}
    r = b.post(f"/tasks/{follow_up.id}", bad)
    assert r.status_code == 422
    assert re.search(r'data-testid="error-initial_review_overdue_actions">请至少选择一项。<', r.text)
    assert re.search(r'data-testid="error-initial_review_overdue_due_date">请输入日期（年-月-日）。<', r.text)
    good = {**bad, "initial_review_overdue_due_date": "2026-12-01",
            "initial_review_overdue_actions": ["urge_handler", "inform_customer"]}
    r = b.post(f"/tasks/{follow_up.id}", good)
    assert r.status_code == 302, text(r)
    fresh()
    event = db.session.execute(select(AuditEvent).where(AuditEvent.task_id == follow_up.id,
                                                        AuditEvent.action == "task_completed")).scalar_one()
    assert event.data["form_data"] == {"initial_review_overdue_cause": "人手不足",
                                       "initial_review_overdue_actions": ["urge_handler", "inform_customer"],
                                       "initial_review_overdue_due_date": "2026-12-01"}


def test_double_submission_gets_a_clear_message_and_changes_nothing(browser, desk):
    number, review, b = claimed_review(browser, desk)
    page_token = b.token(f"/tasks/{review.id}")
    data = {**FORM_DATA["initial_review"], "csrf_token": page_token}
    first = b.post(f"/tasks/{review.id}", data)
    assert first.status_code == 302 and first.location == "/"
    done = b.get("/")
    assert any("已完成" in m and "调查取证" in m for m in flashes(done))
    before = snapshot()
    again = b.post(f"/tasks/{review.id}", data)                  # the same form sent again
    assert again.status_code == 302
    r = b.get(again.location)
    assert any("此任务已完成" in m and "customer_service" in m for m in flashes(r))
    assert 'data-testid="task-form"' not in r.text and "审核结论" in text(r)   # shows what was submitted
    assert b.post(f"/tasks/{review.id}/claim", page="/").status_code == 302
    assert snapshot() == before


def test_a_task_held_by_someone_else(browser, desk):
    number = desk.register()
    desk.complete(number, "initial_review")
    investigate = open_task(number, "investigate")
    first = as_(browser, "claims_specialist")
    first.post(f"/tasks/{investigate.id}/claim", page="/")
    second = as_(browser, "claims_specialist_2")
    before = snapshot()
    r = second.post(f"/tasks/{investigate.id}/claim", page=f"/complaints/{number}")
    assert r.status_code == 302
    assert any("已被他人领取" in m for m in flashes(second.get(r.location)))
    r = second.get(f"/tasks/{investigate.id}")
    assert 'data-testid="task-form"' not in r.text and "正由claims_specialist处理" in text(r)
    r = second.post(f"/tasks/{investigate.id}", FORM_DATA["investigate"])
    assert r.status_code == 302
    assert any("此任务已分配给 claims_specialist" in m for m in flashes(second.get(r.location)))
    r = second.post(f"/tasks/{investigate.id}/unclaim", page=f"/tasks/{investigate.id}")
    assert any("只有经办人或管理层可以退回" in m for m in flashes(second.get(r.location)))
    assert snapshot() == before


# ---- claim, release, reassign ---------------------------------------------------------------------------
def test_claim_release_and_reassign(browser, desk):
    number = desk.register()
    desk.complete(number, "initial_review")
    investigate = open_task(number, "investigate")
    specialist = as_(browser, "claims_specialist")
    home = specialist.get("/")
    assert investigate.id in task_ids(home, "available") and 'data-testid="claim-button"' in home.text
    r = specialist.post(f"/tasks/{investigate.id}/claim", page="/")
    assert r.location == f"/tasks/{investigate.id}"
    home = specialist.get("/")
    assert investigate.id in task_ids(home, "mine") and investigate.id not in task_ids(home, "available")
    assert re.search(r'data-testid="count-mine">\s*1\s*<', home.text)

    r = specialist.post(f"/tasks/{investigate.id}/unclaim", {"next": "/"}, page="/")
    assert r.location == "/"
    assert investigate.id in task_ids(specialist.get("/"), "available")

    manager = as_(browser, "management")
    page = f"/complaints/{number}"
    r = manager.get(page)
    assert 'data-testid="assign-form"' in r.text and "claims_specialist_2" in r.text
    r = manager.post(f"/tasks/{investigate.id}/assign", {"username": "claims_specialist_2"}, page=page)
    assert r.status_code == 302 and r.location == page
    r = manager.get(page)
    assert any("已改派给claims_specialist_2" in m for m in flashes(r))
    assert re.search(r'data-testid="task-holder">claims_specialist_2<', r.text)
    assert investigate.id in task_ids(as_(browser, "claims_specialist_2").get("/"), "mine")

    before = snapshot()
    r = manager.post(f"/tasks/{investigate.id}/assign", {"username": "customer_service"}, page=page)
    assert any("不具备此任务所需的角色" in m for m in flashes(manager.get(r.location)))
    r = manager.post(f"/tasks/{investigate.id}/assign", {"username": "nobody"}, page=page)
    assert any("请选择要转交的同事" in m for m in flashes(manager.get(r.location)))
    assert specialist.post(f"/tasks/{investigate.id}/assign", {"username": "claims_specialist"},
                           page="/").status_code == 403
    assert snapshot() == before


# ---- queues -------------------------------------------------------------------------------------------
def test_queue_rows_filters_sorting_and_pages(app, browser, desk, clock):
    late = overdue_review(app, desk, clock)
    numbers = [desk.register(channel=channel, category=category)
               for channel, category in (("hotline", "claim_delay"), ("website", "claim_amount"),
                                         ("email", "service_attitude"))]
    clock.shift(timedelta(hours=1))
    b = as_(browser, "customer_service")
    r = b.get("/")
    rows = task_ids(r, "available")
    assert len(rows) == 4
    # Soonest deadline first: the late complaint's review is overdue and leads.
    assert rows[0] == open_task(late, "initial_review").id
    first_row = re.search(r'<tr data-testid="queue-row".*?</tr>', r.text, flags=re.S).group(0)
    assert 'data-state="overdue"' in first_row and "已超时 2 小时" in text(r) and "row-overdue" in first_row
    assert text(r).count("剩余 23 小时") == 3 and r.text.count('data-state="soon"') == 3
    assert "电话热线" in text(r) and "官方网站" in text(r) and "理赔纠纷 › 理赔时效" in text(r)
    assert re.search(r'data-testid="count-available">\s*4\s*<', r.text)

    assert task_ids(b.get("/?channel=website"), "available") == [open_task(numbers[1], "initial_review").id]
    assert task_ids(b.get("/?category=service_attitude"), "available") == [open_task(numbers[2], "initial_review").id]
    assert task_ids(b.get("/?overdue=1"), "available") == [open_task(late, "initial_review").id]
    assert task_ids(b.get("/?step=investigate"), "available") == []
    by_received = task_ids(b.get("/?sort=received"), "available")
    assert by_received[0] == open_task(late, "initial_review").id
    assert task_ids(b.get("/?sort=created"), "available")[0] == open_task(late, "initial_review").id

    app.config["WEB_PER_PAGE"] = 3
    page1, page2 = b.get("/"), b.get("/?pa=2")
    assert len(task_ids(page1, "available")) == 3 and len(task_ids(page2, "available")) == 1
    assert "第 1 页，共 2 页" in text(page1) and "pa=2" in page1.text


def test_queue_row_links_are_those_url_for_makes(app):
    """The queue page makes each URL's shape once and puts the row's task id or complaint number in (quoted as
    url_for quotes a path segment), for any characters a number format may give."""
    from types import SimpleNamespace
    from flask import url_for
    from app.web.queue_rows import QueueRows
    complaint = SimpleNamespace(channel="hotline", category=None, received_at=None, customer_name="张三",
                                decision_clock=None, decision_due_at=None, status="open", decision_warning_days=None)
    with app.test_request_context("/"):
        rows = QueueRows(pii=False, forms={}, now=utcnow())
        for task_id, number in (("0b3c-9f", "TS-20261201-000001"), ("a b/ü?#%", "投诉:2026/12 #1 ü%")):
            task = SimpleNamespace(id=task_id, business_key=number, element_id="initial_review", name="初审",
                                   subject=None, due_at=None)
            row = rows.row(task, complaint)
            assert row["task_url"] == url_for("tasks.task", task_id=task_id)
            assert row["claim_url"] == url_for("tasks.claim", task_id=task_id)
            assert row["unclaim_url"] == url_for("tasks.unclaim", task_id=task_id)
            assert row["complaint_url"] == url_for("complaints.complaint", number=number)
            assert row["customer"] == "张*" and row["channel"] == "电话热线" and row["due"]["state"] == "none"


def test_management_sees_the_overdue_follow_up_in_red(browser, desk, app, clock):
    number = overdue_review(app, desk, clock)
    r = as_(browser, "management").get("/")
    follow_up = open_task(number, "initial_review_overdue")
    assert task_ids(r, "available") == [follow_up.id]
    assert "初审超时跟进" in text(r)


# ---- register, search, complaint page ---------------------------------------------------------------------
def test_register_form_shows_every_intake_field_and_defaults_received_at_to_now(browser, people):
    r = as_(browser, "customer_service").get("/complaints/new")
    assert r.status_code == 200
    for name in ("channel", "customer_name", "phone", "email", "id_number", "policy_number", "claim_number",
                 "claim_handler", "category", "product_line", "description", "received_at"):
        assert f'for="f-{name}"' in r.text and f'name="{name}"' in r.text
    now = utcnow().astimezone(BUSINESS_TZ).strftime("%Y-%m-%dT%H:")
    assert re.search(rf'type="datetime-local" id="f-received_at"[^>]*value="{now}\d\d"', r.text)
    for label in ("电话热线", "官方网站", "手机应用", "电子邮件", "其他"):
        assert label in text(r)


def test_register_errors_are_kept_and_explained(browser, people):
    b = as_(browser, "customer_service")
    before = snapshot()
    future = (utcnow() + timedelta(days=1)).astimezone(BUSINESS_TZ).strftime("%Y-%m-%dT%H:%M")
    r = b.post("/complaints/new", {"channel": "hotline", "customer_name": "李四", "phone": "abc",
                                   "email": "nope", "description": "投诉内容", "received_at": future},
               page="/complaints/new")
    assert r.status_code == 422
    for field, message in (("phone", "电话号码无效。"), ("email", "电子邮件地址无效。"),
                           ("policy_number", "此项为必填项。"), ("category", "此项为必填项。"),
                           ("product_line", "此项为必填项。"),
                           ("received_at", "收到时间不能晚于现在。")):
        assert re.search(rf'data-testid="error-{field}">{message}<', r.text), field
    assert 'value="李四"' in r.text and ">投诉内容</textarea>" in r.text
    assert snapshot() == before


def test_search_by_number_phone_id_number_policy_and_claim(browser, desk):
    number = desk.register()
    b = as_(browser, "claims_specialist")
    r = b.get(f"/complaints?q={number}")
    assert r.status_code == 302 and r.location == f"/complaints/{number}"
    # The search form posts its term: a phone or ID number never sits in a URL (or an access log).
    assert 'method="post"' in b.get("/complaints").text
    for q in (COMPLAINT["phone"], COMPLAINT["id_number"], COMPLAINT["policy_number"], COMPLAINT["claim_number"]):
        r = b.post("/complaints", {"q": q})
        assert r.status_code == 200 and number in r.text and "找到 1 件投诉" in text(r)
    for q in (COMPLAINT["policy_number"], COMPLAINT["claim_number"]):
        assert number in b.get(f"/complaints?q={q}").text
    # A personal identifier in a URL finds nothing: it is only searched from the request body.
    for q in (COMPLAINT["phone"], COMPLAINT["id_number"]):
        assert 'data-testid="search-empty"' in b.get(f"/complaints?q={q}").text
    r = b.post("/complaints", {"q": "nothing-like-this"})
    assert 'data-testid="search-empty"' in r.text


def test_complaint_page_shows_status_holder_deadlines_and_translated_timeline(browser, desk, app, clock):
    number = overdue_review(app, desk, clock)
    desk.complete(number, "initial_review", risk_level="medium")
    investigate = open_task(number, "investigate")
    as_(browser, "claims_specialist").post(f"/tasks/{investigate.id}/claim", page="/")
    r = as_(browser, "management").get(f"/complaints/{number}")
    page, words = r.text, text(r)
    assert re.search(rf'data-testid="complaint-number">{number}<', page)
    assert "处理中" in words and "调查取证" in words
    assert re.search(r'data-testid="current-task" data-task-id="[^"]+" data-step="investigate"', page)
    assert re.search(r'data-testid="task-holder">claims_specialist<', page)
    assert re.search(r'data-testid="deadline-row" data-state="missed"', page)   # the 24-hour review
    assert re.search(r'data-testid="deadline-row" data-state="open"', page)     # the investigation
    assert "剩余" in words and "个工作日" in words
    for action in ("投诉已登记，流程启动", "超过时限", "完成任务"):      # decisions and missed deadlines
        assert action in words, action
    for action in ("生成任务", "设定时限", "领取任务"):                 # routine: folded until asked for
        assert action not in words.split("全部显示", 1)[1], action
    assert "条例行事件" in words
    # The decision and the data entered, with the form's labels and option names.
    assert "风险评估" in words and "中" in words and "材料齐全，符合受理条件" in words
    assert 'data-action="personal_data_viewed"' not in page
    r = as_(browser, "management").get(f"/complaints/{number}?all=1")
    assert 'data-action="task_claimed"' in r.text
    assert all(action in text(r) for action in ("生成任务", "设定时限", "领取任务")) and "只看决定" in text(r)


def test_task_page_shows_the_complaint_earlier_decisions_and_dissatisfaction(browser, desk):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                       ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "赔付金额偏低",
                                                  "customer_feedback": "要求重新核算"})])
    re_eval = open_task(number, "re_evaluation")
    r = as_(browser, "claims_specialist").get(f"/tasks/{re_eval.id}")
    words = text(r)
    assert r.status_code == 200 and "重新评估" in words
    assert 'data-testid="highlight-dissatisfaction_reasons"' in r.text and "赔付金额偏低" in words
    assert r.text.count('data-testid="decision"') == 5
    assert COMPLAINT["description"] in words and COMPLAINT["policy_number"] in words
    assert "是否需要补充调查取证" in words and 'data-testid="input-needs_investigation-true"' in r.text


# ---- language ------------------------------------------------------------------------------------------
def test_chinese_by_default_english_on_request(browser, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    b = as_(browser, "customer_service")
    r = b.get("/")
    assert '<html lang="zh-CN">' in r.text
    assert "我的任务" in text(r) and "待领取" in text(r) and "退出登录" in text(r)
    r = b.get("/language/en?next=/")
    assert r.status_code == 302 and r.location == "/"
    r = b.get("/")
    words = text(r)
    assert '<html lang="en">' in r.text
    assert "My tasks" in words and "To claim" in words and "Log out" in words and "我的任务" not in words
    assert "Initial review" in words and "Hotline" in words
    r = b.get(f"/tasks/{review.id}")
    words = text(r)
    assert "Review decision" in words and "审核结论" in words          # English label with the Chinese
    assert "Accept · 受理" in words
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d", words)    # dates the English way
    r = b.get("/?lang=zh_Hans_CN")
    assert "我的任务" in text(r)
    # The choice survives logging in again.
    b.get("/?lang=en")
    b.post("/logout", page="/")
    assert "Log in" in text(b.get("/login"))

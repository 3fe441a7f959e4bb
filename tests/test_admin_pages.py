"""The admin pages and one's own account, through real HTTP into Flask (SQLite: the rules behind them run
on both databases in test_accounts.py): creating a user with a password shown once and changed at the
first login, disabling (sessions and API tokens stop at once), a generated password ending the user's
other sessions, one-time links, unlocking, the last administrator, and the second factor from setup to
login (codes good once, wrong codes counted towards the lock, required by role)."""
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.timeutil import utcnow
from tests.test_web import Browser, audit_count, flashes, fresh, text

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def admin(app, people):
    return Browser(app).login("admin")


def user_id(username) -> int:
    fresh()
    return db.session.execute(select(User.id).where(User.username == username)).scalar_one()


def shown(response, testid) -> str:
    return re.search(rf'data-testid="{testid}">([^<]+)<', response.get_data(as_text=True)).group(1)


def test_an_admin_creates_a_user_who_chooses_a_password_at_first_login(app, admin):
    r = admin.post("/admin/users/new", {"username": "zhao.lei", "display_name": "赵磊", "roles": "claims_specialist",
                                        "email": "zhao.lei@insurer.example"})
    assert r.status_code == 200, text(r)
    password = shown(r, "generated-password")
    assert password not in r.headers.get("Location", "") and "no-store" in r.headers["Cache-Control"]
    zhao = Browser(app)
    r = zhao.post("/login", {"username": "zhao.lei", "password": password})
    assert r.headers["Location"] == "/"
    r = zhao.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/account"       # nothing else before that
    r = zhao.post("/account/password", {"current_password": password, "new_password": "short",
                                        "repeat": "short"}, page="/account", follow_redirects=True)
    assert "at least 12 characters" in text(r) or "至少需要 12 个字符" in text(r)
    r = zhao.post("/account/password", {"current_password": password, "new_password": "river stones at dusk",
                                        "repeat": "river stones at dusk"}, page="/account")
    assert zhao.get("/").status_code == 200
    assert audit_count("user_created") == 1 and audit_count("password_changed") == 1


def test_bad_input_keeps_what_was_typed(admin, people):
    r = admin.post("/admin/users/new", {"username": "a b", "display_name": "Someone", "roles": "management"})
    assert r.status_code == 422 and 'value="Someone"' in r.get_data(as_text=True)
    r = admin.post("/admin/users/new", {"username": "someone", "display_name": "Someone"})
    assert r.status_code == 422 and 'value="someone"' in r.get_data(as_text=True)
    r = admin.post("/admin/users/new", {"username": "management", "display_name": "X", "roles": "management"})
    assert r.status_code == 422 and "management" in text(r)
    assert audit_count("user_created") == 0


def test_a_disabled_user_is_out_at_once(app, admin, people):
    worker = Browser(app).login("customer_service")
    target = user_id("customer_service")
    admin.post(f"/admin/users/{target}/disable", page=f"/admin/users/{target}")
    assert worker.get("/").status_code == 302                                  # their session ended
    r = app.test_client().get("/api/v1/tasks", headers=people["customer_service"].headers)
    assert r.status_code == 401 and r.json["error"]["code"] == "user_inactive"
    r = Browser(app).post("/login", {"username": "customer_service", "password": "pw-customer_service"})
    assert r.status_code == 401
    admin.post(f"/admin/users/{target}/enable", page=f"/admin/users/{target}")
    Browser(app).login("customer_service")


def test_a_generated_password_ends_the_users_sessions(app, admin):
    worker = Browser(app).login("management")
    target = user_id("management")
    r = admin.post(f"/admin/users/{target}/password", {"method": "generated"}, page=f"/admin/users/{target}")
    password = shown(r, "generated-password")
    assert worker.get("/").status_code == 302
    assert Browser(app).post("/login", {"username": "management", "password": "pw-management"}).status_code == 401
    Browser(app).login("management", password)


def test_a_one_time_link(app, admin):
    target = user_id("training")
    r = admin.post(f"/admin/users/{target}/password", {"method": "link"}, page=f"/admin/users/{target}")
    link = shown(r, "reset-url")
    assert link.startswith(app.config["PUBLIC_BASE_URL"] + "/password/reset/")     # the site's address
    path = urlsplit(link).path
    anyone = Browser(app)
    r = anyone.post(path, {"new_password": "training-2026-password", "repeat": "training-2026-password"})
    assert r.status_code == 422 and ("username" in text(r) or "用户名" in text(r))
    r = anyone.post(path, {"new_password": "seven quiet lanterns", "repeat": "seven quiet lanterns"})
    assert r.status_code == 302
    Browser(app).login("training", "seven quiet lanterns")
    assert anyone.get(path).status_code == 404
    assert audit_count("password_reset") == 1 and audit_count("password_changed") == 1


def test_unlock_after_a_lockout(app, admin):
    for _ in range(5):
        Browser(app).post("/login", {"username": "compliance", "password": "wrong"})
    assert Browser(app).post("/login", {"username": "compliance", "password": "pw-compliance"}).status_code == 429
    target = user_id("compliance")
    assert "unlock" in admin.get(f"/admin/users/{target}").get_data(as_text=True)
    admin.post(f"/admin/users/{target}/unlock", page=f"/admin/users/{target}")
    Browser(app).login("compliance")


def test_the_last_administrator_cannot_lock_themselves_out(app, admin):
    me = user_id("admin")
    r = admin.post(f"/admin/users/{me}", {"display_name": "admin", "roles": "management"})
    assert r.status_code == 422 and 'value="management" checked' in r.get_data(as_text=True)
    r = admin.post(f"/admin/users/{me}/disable", page=f"/admin/users/{me}", follow_redirects=True)
    assert flashes(r) and audit_count("user_disabled") == 0
    fresh()
    assert "admin" in db.session.get(User, me).roles


def test_changing_ones_password_ends_the_other_sessions(app, people):
    here, there = Browser(app).login("head_office"), Browser(app).login("head_office")
    r = here.post("/account/password", {"current_password": "wrong", "new_password": "x", "repeat": "x"},
                  page="/account")
    assert r.status_code == 302 and audit_count("password_changed") == 0
    r = here.post("/account/password", {"current_password": "pw-head_office", "new_password": "a kite over the bay",
                                        "repeat": "a kite over the bay"}, page="/account")
    assert here.get("/").status_code == 200 and there.get("/").status_code == 302
    for _ in range(4):                                   # wrong current passwords count towards the lock
        here.post("/account/password", {"current_password": "guess", "new_password": "x", "repeat": "x"},
                  page="/account")
    assert Browser(app).post("/login", {"username": "head_office", "password": "a kite over the bay"}) \
        .status_code == 429
    assert audit_count("account_locked") == 1                   # the account's own lock, as at the login


def test_an_administrator_gives_nobody_roles_themselves(admin):
    me = user_id("admin")
    r = admin.post(f"/admin/users/{me}", {"display_name": "admin", "roles": ["admin", "customer_service"]})
    assert r.status_code == 422 and audit_count("user_updated") == 0


def test_a_save_that_changes_nothing_says_so_and_records_nothing(admin):
    target = user_id("training")
    same = {"display_name": "training", "roles": "training", "email": ""}
    r = admin.post(f"/admin/users/{target}", same, page=f"/admin/users/{target}", follow_redirects=True)
    assert "没有任何更改：training 保持原样。" in text(r) and audit_count("user_updated") == 0
    r = admin.post(f"/admin/users/{target}", {**same, "email": "t@insurer.example"}, page=f"/admin/users/{target}",
                   follow_redirects=True)
    assert "已保存 training" in text(r) and audit_count("user_updated") == 1


def test_the_list_filters(admin):
    r = admin.get("/admin/users?role=management")
    rows = re.findall(r'data-testid="user-row" data-username="([^"]+)"', r.get_data(as_text=True))
    assert rows == ["management", "management_2"]
    r = admin.get("/admin/users?q=claims&state=active")
    assert re.findall(r'data-username="([^"]+)"', r.get_data(as_text=True)) == ["claims_specialist",
                                                                                  "claims_specialist_2"]
    assert 'data-testid="users"' not in admin.get("/admin/users?q=nobody-at-all").get_data(as_text=True)


@pytest.fixture
def clock(app):
    with time_machine.travel(utcnow(), tick=False) as traveller:
        yield traveller


def set_up_second_factor(browser) -> pyotp.TOTP:
    page = browser.get("/account/second-factor").get_data(as_text=True)
    secret = re.search(r'data-testid="secret">([A-Z2-7]+)<', page).group(1)
    totp = pyotp.TOTP(secret)
    assert "<svg" in page and browser.get("/account/second-factor").get_data(as_text=True).count(secret) == 1
    cookie = browser.client.get_cookie("session").value
    assert secret not in cookie and secret not in _session_text(cookie)      # the cookie holds a nonce only
    r = browser.post("/account/second-factor", {"code": "000000" if totp.now() != "000000" else "111111"})
    assert r.status_code == 422
    r = browser.post("/account/second-factor", {"code": totp.now()})
    assert r.status_code == 302
    return totp


def _session_text(cookie) -> str:
    import base64
    import zlib
    body = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return (zlib.decompress(raw) if cookie.startswith(".") else raw).decode()


def test_the_second_factor(app, people, clock):
    owner = Browser(app).login("process_owner")
    totp = set_up_second_factor(owner)
    r = owner.get("/account/second-factor")               # on: not replaced without turning it off
    assert r.status_code == 302 and r.headers["Location"] == "/account"
    clock.shift(timedelta(seconds=31))
    r = Browser(app).post("/login", {"username": "process_owner", "password": "pw-process_owner"})
    assert r.headers["Location"] == "/login/code"
    b = Browser(app)
    b.post("/login", {"username": "process_owner", "password": "pw-process_owner"})
    assert b.get("/").status_code == 302                             # not logged in before the code
    assert b.post("/login/code", {"code": "12345"}).status_code == 401
    code = totp.now()
    assert b.post("/login/code", {"code": code}).status_code == 302
    assert b.get("/procedure").status_code == 200
    again = Browser(app)                                             # the same code again: refused
    again.post("/login", {"username": "process_owner", "password": "pw-process_owner"})
    assert again.post("/login/code", {"code": code}).status_code == 401
    clock.shift(timedelta(minutes=6))                                # too late: the password again
    r = again.post("/login/code", {"code": totp.now()}, page="/login")
    assert r.status_code == 302 and r.headers["Location"] == "/login"


def test_wrong_codes_lock_the_account(app, people, clock):
    owner = Browser(app).login("process_owner")
    set_up_second_factor(owner)
    b = Browser(app)
    b.post("/login", {"username": "process_owner", "password": "pw-process_owner"})
    statuses = [b.post("/login/code", {"code": "000001"}, page="/login/code").status_code for _ in range(5)]
    assert statuses[:4] == [401] * 4 and statuses[4] == 302
    r = Browser(app).post("/login", {"username": "process_owner", "password": "pw-process_owner"})
    assert r.status_code == 429
    assert audit_count("account_locked") == 1


def test_a_role_may_require_the_second_factor_and_an_admin_may_reset_it(app, admin, clock):
    app.config["TOTP_REQUIRED_ROLES"] = ("process_owner",)
    owner = Browser(app).login("process_owner")
    r = owner.get("/procedure")
    assert r.status_code == 302 and r.headers["Location"] == "/account/second-factor"
    set_up_second_factor(owner)
    assert owner.get("/procedure").status_code == 200
    r = owner.post("/account/second-factor/off", {"code": "123456"}, page="/account", follow_redirects=True)
    assert "requires" in text(r) or "要求" in text(r)
    target = user_id("process_owner")
    admin.post(f"/admin/users/{target}/second-factor/reset", page=f"/admin/users/{target}")
    fresh()
    assert db.session.get(User, target).totp_secret is None
    assert audit_count("second_factor_enabled") == 1 and audit_count("second_factor_reset") == 1

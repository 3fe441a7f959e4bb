"""Login limits (app/login_limits.py, app/web/auth/routes.py): failures counted in the database per address
and per submitted username, the same answers for usernames that exist and ones that don't, a locked
account's API tokens refused until the lock ends, and old counts purged by the scheduler."""
import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select
from werkzeug import security as werkzeug_security

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import LoginAttempt, User
from app.scheduler import purge_login_attempts
from app.timeutil import utcnow
from tests.test_concurrency import run_together
from tests.test_web import TOKEN, Browser, audit_count, fresh, text

KNOWN, UNKNOWN = "management", "manager_xx"          # the same length, so even Content-Length matches


class From(Browser):
    """A browser at a given client address."""

    def __init__(self, app, address="10.0.0.1"):
        super().__init__(app)
        self.address = address

    def open(self, url, method="GET", **kwargs):
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.address})
        return super().open(url, method=method, **kwargs)

    def try_login(self, username, password="wrong"):
        return self.post("/login", {"username": username, "password": password})


def comparable(response, username):
    """What a person (or a script) sees, minus the things that differ by design: the username they
    typed, echoed in the form, the session's own CSRF token and cookie, and each request's own id."""
    body = TOKEN.sub('name="csrf_token" value="…"', response.get_data(as_text=True)).replace(username, "NAME")
    headers = sorted((k, v) for k, v in response.headers.items() if k not in ("Set-Cookie", "X-Request-ID"))
    return response.status_code, headers, body


def test_known_and_unknown_usernames_get_identical_answers(app, people):
    limit = app.config["LOGIN_MAX_ATTEMPTS"]
    with time_machine.travel(utcnow(), tick=False):
        known, unknown = From(app), From(app)
        for attempt in range(1, limit + 3):
            a, b = known.try_login(KNOWN), unknown.try_login(UNKNOWN)
            assert comparable(a, KNOWN) == comparable(b, UNKNOWN), attempt
            assert a.status_code == (401 if attempt < limit else 429), attempt
        assert "账户已锁定" in text(a)
        # Even the right password is refused while locked, for either.
        a, b = known.try_login(KNOWN, f"pw-{KNOWN}"), unknown.try_login(UNKNOWN, f"pw-{KNOWN}")
        assert comparable(a, KNOWN) == comparable(b, UNKNOWN)
        assert a.status_code == 429
    assert audit_count("account_locked") == 1                    # the real account's lock is on record
    fresh()
    assert db.session.execute(select(User.locked_until).where(User.username == KNOWN)).scalar_one() is not None


def test_an_unknown_username_costs_a_password_hash_check_too(app, people, monkeypatch):
    checked = []
    real = werkzeug_security.check_password_hash
    monkeypatch.setattr("app.web.auth.routes.check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    From(app).try_login(UNKNOWN)
    From(app).try_login(KNOWN)
    assert len(checked) == 2 and checked[0].startswith("scrypt:")        # as `flask users create` hashes


def test_one_address_is_limited_across_usernames(app, people):
    app.config["LOGIN_IP_MAX_ATTEMPTS"] = 3
    t0 = utcnow()
    with time_machine.travel(t0, tick=False) as clock:
        attacker = From(app, "10.0.0.66")
        assert attacker.try_login("a-guess").status_code == 401
        assert attacker.try_login("b-guess").status_code == 401
        r = attacker.try_login("c-guess")
        assert r.status_code == 429 and "网络的登录失败次数过多" in text(r)
        # Refused before any password is looked at: a right one too, whoever it is for.
        assert attacker.try_login("training", "pw-training").status_code == 429
        assert comparable(attacker.try_login(KNOWN), KNOWN) == comparable(attacker.try_login(UNKNOWN), UNKNOWN)
        # Another address is not affected, and the per-username counts stayed under their own limit.
        From(app, "10.0.0.7").login("training")
        clock.shift(timedelta(minutes=app.config["LOGIN_IP_WINDOW_MINUTES"], seconds=1))
        From(app, "10.0.0.66").login("training")


def test_one_username_is_limited_across_addresses(app, people):
    limit = app.config["LOGIN_MAX_ATTEMPTS"]
    for i in range(limit - 1):
        assert From(app, f"10.1.0.{i}").try_login(UNKNOWN).status_code == 401
    r = From(app, "10.1.0.200").try_login(UNKNOWN)
    assert r.status_code == 429 and "账户已锁定" in text(r)
    assert From(app, "10.1.0.201").try_login(UNKNOWN.upper()).status_code == 429    # any spelling


def test_a_locked_accounts_tokens_stop_until_the_lock_ends(app, people):
    token = people["claims_specialist"].headers
    t0 = utcnow()
    with time_machine.travel(t0, tick=False) as clock:
        client = Browser(app)                # each request in its own app context, as in production
        assert client.get("/api/v1/tasks", headers=token).status_code == 200
        b = From(app)
        for _ in range(app.config["LOGIN_MAX_ATTEMPTS"]):
            b.try_login("claims_specialist")
        r = client.get("/api/v1/tasks", headers=token)
        assert r.status_code == 401 and r.json["error"]["code"] == "account_locked"
        assert client.get("/api/v1/tasks", headers=people["claims_specialist_2"].headers).status_code == 200
        clock.shift(timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"], seconds=1))
        assert client.get("/api/v1/tasks", headers=token).status_code == 200
        b.login("claims_specialist")                                 # and the password works again


def test_behind_a_trusted_proxy_the_forwarded_address_counts(app, people):
    def failures_by_key(proxies):
        proxied = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                             TRUSTED_PROXIES=proxies)
        for client_address in ("203.0.113.1", "203.0.113.2"):
            Browser(proxied).post("/login", {"username": UNKNOWN, "password": "x"},
                                  headers={"X-Forwarded-For": client_address})
        fresh()
        rows = db.session.execute(select(LoginAttempt.key, func.sum(LoginAttempt.n))
                                  .where(LoginAttempt.key.like("ip:%")).group_by(LoginAttempt.key)).all()
        db.session.execute(LoginAttempt.__table__.delete())
        db.session.commit()
        return dict(rows)
    assert failures_by_key(1) == {"ip:203.0.113.1": 1, "ip:203.0.113.2": 1}
    # Without a configured proxy the header is the client's own claim: ignored.
    assert failures_by_key(0) == {"ip:127.0.0.1": 2}


def test_simultaneous_failures_are_all_counted(app, people):
    """Like gunicorn workers: every request its own connection, and the count still exact."""
    app.config["LOGIN_IP_MAX_ATTEMPTS"] = 100
    browsers = [From(app, "10.9.9.9") for _ in range(8)]
    tokens = [TOKEN.search(b.get("/login").text).group(1) for b in browsers]
    responses = run_together(app, [
        (lambda _client, b=b, t=t, i=i: b.post("/login", {"username": f"guess-{i}", "password": "x",
                                                           "csrf_token": t}, token=False))
        for i, (b, t) in enumerate(zip(browsers, tokens))])
    assert sorted(r.status_code for r in responses) == [401] * 8
    fresh()
    assert db.session.execute(select(func.sum(LoginAttempt.n))
                              .where(LoginAttempt.key == "ip:10.9.9.9")).scalar_one() == 8


def test_simultaneous_guesses_at_one_account_lock_it_once(app, people):
    browsers = [From(app, f"10.8.0.{i}") for i in range(8)]
    tokens = [TOKEN.search(b.get("/login").text).group(1) for b in browsers]
    responses = run_together(app, [
        (lambda _client, b=b, t=t: b.post("/login", {"username": "training", "password": "x", "csrf_token": t},
                                          token=False))
        for b, t in zip(browsers, tokens)])
    codes = [r.status_code for r in responses]
    assert set(codes) <= {401, 429} and 429 in codes, codes
    assert audit_count("account_locked") == 1


def test_the_scheduler_purges_old_windows(app, people):
    t0 = utcnow()
    with time_machine.travel(t0, tick=False) as clock:
        From(app, "10.2.0.1").try_login(UNKNOWN)
        clock.shift(timedelta(minutes=app.config["LOGIN_ATTEMPT_WINDOW_MINUTES"] - 5))
        From(app, "10.2.0.2").try_login("someone-else")
        clock.shift(timedelta(minutes=6))
        assert purge_login_attempts(app) == 2                    # the first attempt's address and username
    fresh()
    keys = set(db.session.execute(select(LoginAttempt.key)).scalars())
    assert keys == {"ip:10.2.0.2", "user:someone-else"}


@pytest.mark.parametrize("username", [KNOWN, UNKNOWN, "x" * 300])
def test_long_or_odd_usernames_are_answered_not_crashed(app, people, username):
    r = From(app).try_login(username + " ' \" <b>")
    assert r.status_code == 401
    assert re.search(r"<b>", r.get_data(as_text=True).split('name="username"')[1][:400]) is None   # escaped


def test_an_administrator_unlocks_an_account_early(app, people):
    token = people["claims_specialist"].headers
    b = From(app)
    for _ in range(app.config["LOGIN_MAX_ATTEMPTS"]):
        b.try_login("claims_specialist")
    client = Browser(app)
    assert client.get("/api/v1/tasks", headers=token).status_code == 401
    assert b.try_login("claims_specialist", "pw-claims_specialist").status_code == 429
    result = app.test_cli_runner().invoke(args=["users", "unlock", "claims_specialist", "--by", "admin"])
    assert result.exit_code == 0, result.output
    assert audit_count("account_unlocked") == 1
    assert client.get("/api/v1/tasks", headers=token).status_code == 200
    b.login("claims_specialist")
    assert app.test_cli_runner().invoke(args=["users", "unlock", "nobody"]).exit_code != 0

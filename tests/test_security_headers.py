"""Browser hardening on every response (app/security.py): the Content-Security-Policy, no framing,
nosniff, a Referrer-Policy, `Cache-Control: no-store` on pages and API answers (static files cache
normally), HSTS only when configured, and a Secure session cookie everywhere but development."""
import re

import pytest

from app import create_app
from app.config import SettingError, TestConfig, secure_cookies
from tests.flow import COMPLAINT, Desk
from tests.test_web import Browser

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")


def assert_hardened(response, cached=False):
    headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in headers          # only when configured
    if cached:
        assert "no-store" not in headers.get("Cache-Control", "")
    else:
        assert headers["Cache-Control"] == "no-store"


def test_pages_with_personal_data_are_never_framed_or_stored(app, people):
    desk = Desk(app.test_client(), people)
    number = desk.register()
    b = Browser(app)
    assert_hardened(b.get("/login"))
    b.login("customer_service")
    for url in ("/", f"/complaints/{number}", f"/complaints/{number}/case-file",
                f"/complaints/{number}/case-file.json", "/complaints/TS-nope"):
        r = b.get(url)
        assert r.status_code in (200, 404), url
        assert_hardened(r)
    page = b.get(f"/complaints/{number}").text
    assert COMPLAINT["phone"] in page                                       # personal data, hence no-store
    assert_hardened(b.get("/", follow_redirects=False))
    assert_hardened(Browser(app).get("/"))                                   # the redirect to the login


def test_api_answers_are_never_stored(app, people):
    desk = Desk(app.test_client(), people)
    number = desk.register()
    client = app.test_client()
    for url, who, status in ((f"/api/v1/complaints/{number}", "customer_service", 200),
                             ("/api/v1/tasks", "claims_specialist", 200),
                             (f"/api/v1/complaints/{number}", None, 401),
                             ("/api/v1/complaints/TS-nope", "customer_service", 404)):
        r = client.get(url, headers=people[who].headers if who else {})
        assert r.status_code == status, url
        assert_hardened(r)


def test_only_a_view_marked_cacheable_keeps_its_own_caching(app, people):
    """A deployed BPMN file is immutable and holds no personal data: its Cache-Control stands."""
    b = Browser(app)
    b.login("compliance")
    r = b.get("/procedure/complaint_handling/v1/complaint_handling.bpmn?inline=1")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, max-age=3600"
    assert_hardened(r, cached=True)
    assert b.get("/procedure/complaint_handling").headers["Cache-Control"] == "no-store"


def test_static_files_keep_normal_caching(app):
    r = app.test_client().get("/static/web.css")
    assert r.status_code == 200
    assert_hardened(r, cached=True)
    assert "ETag" in r.headers


def test_no_page_has_inline_script_or_style(app, people):
    """The policy runs no inline script, handler attribute or style attribute: the pages have none
    (a `<script type="application/json">` data block is data, never executed)."""
    desk = Desk(app.test_client(), people)
    number = desk.register()
    b = Browser(app).login("customer_service")
    for url in ("/", "/complaints/new", f"/complaints/{number}", f"/complaints/{number}/case-file",
                "/procedure/complaint_handling"):
        page = b.get(url).text
        for script in _tags(page, "script"):
            assert " src=" in script or 'type="application/json"' in script, (url, script)
        assert " style=" not in page and "<style" not in page, url
        assert " onclick=" not in page and "javascript:" not in page, url


def _tags(page, name):
    return re.findall(rf"<{name}\b[^>]*>", page)


def test_hsts_only_when_configured(app):
    hardened = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                          HSTS_SECONDS=31536000)
    r = hardened.test_client().get("/login")
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize("environ, secure", [
    ({}, True),                                                   # production: the default
    ({"APP_ENV": "production"}, True),
    ({"APP_ENV": "development"}, False),                          # make run / scripts/run-dev.sh
    ({"FLASK_DEBUG": "1"}, False),
    ({"FLASK_DEBUG": "0"}, True),
    ({"SESSION_COOKIE_SECURE": "0"}, False),                      # the explicit override wins
    ({"SESSION_COOKIE_SECURE": "1", "APP_ENV": "development"}, True),
    ({"SESSION_COOKIE_SECURE": "true", "APP_ENV": "development"}, True),   # not read as off
    ({"SESSION_COOKIE_SECURE": "off"}, False),
])
def test_session_cookie_is_secure_outside_development(environ, secure):
    assert secure_cookies(environ) is secure


def test_a_session_cookie_setting_that_means_nothing_is_refused():
    with pytest.raises(SettingError, match="SESSION_COOKIE_SECURE='secure': use 1 \\(on\\) or 0 \\(off\\)"):
        secure_cookies({"SESSION_COOKIE_SECURE": "secure"})


def test_the_default_cookie_is_sent_with_the_secure_flag(app):
    production = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                            SESSION_COOKIE_SECURE=secure_cookies({}))
    cookie = production.test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in app.test_client().get("/login").headers["Set-Cookie"]     # the tests' http config

"""Security of the customer's page beyond test_portal.py: link tokens made with a secret of their own
(PORTAL_LINK_SECRET), so rotating SECRET_KEY leaves customers' links working; no start outside
development without a real PUBLIC_BASE_URL; and CSRF protection on the portal's own cookie, so that
the portal never writes Flask's session cookie, the one staff log in with."""
import re

import pytest
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from app import create_app, portal_links
from app.config import TestConfig
from app.extensions import db
from app.models import OutboxMessage, PortalLink
from app.outbox.dispatch import Dispatcher
from app.portal import access
from tests.flow import Desk
from tests.test_portal import (TOKEN, Phone, at_confirmation, complaint_of, customer_events, link_token, opened,
                               reason, task_row)

LINK = re.compile(r"https://complaints\.insurer\.example/my/([0-9a-f]{48})")


@pytest.fixture
def desk(app, people):
    return Desk(Phone(app, "10.9.9.9"), people)


# ---- a link secret of its own ------------------------------------------------------------------------------
def test_the_link_secret_is_its_own_when_set_and_the_secret_key_otherwise():
    assert portal_links.secret({"SECRET_KEY": "session-key", "PORTAL_LINK_SECRET": "link-key"}) == "link-key"
    assert portal_links.secret({"SECRET_KEY": "session-key", "PORTAL_LINK_SECRET": None}) == "session-key"
    assert portal_links.secret({"SECRET_KEY": "session-key"}) == "session-key"      # installations before it
    key = "0123456789abcdef" * 2
    assert portal_links.token_for("link-key", key) != portal_links.token_for("session-key", key)


def test_a_link_sent_under_the_link_secret_still_opens_after_the_secret_key_changes(outbox, desk, sink):
    outbox.config["PORTAL_LINK_SECRET"] = "the-link-secret"
    number = desk.register()
    Dispatcher(outbox).dispatch_due()
    token = LINK.search(next(s.text for s in sink.sms if number in s.text)).group(1)
    message = db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number)).scalar_one()
    assert token == portal_links.token_for("the-link-secret", message.key)
    assert token != portal_links.token_for(outbox.config["SECRET_KEY"], message.key)

    outbox.config["SECRET_KEY"] = "a-new-session-key-after-a-leak"
    phone = Phone(outbox)
    r = phone.get(f"/my/{token}")
    assert r.status_code == 302 and r.location == "/my/"
    page = phone.get("/my/")
    assert page.status_code == 200 and number in page.text


# ---- PUBLIC_BASE_URL --------------------------------------------------------------------------------------
@pytest.fixture
def production(monkeypatch):
    """An environment like a server's: neither APP_ENV=development nor FLASK_DEBUG."""
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return dict(TESTING=False, SQLALCHEMY_DATABASE_URI="sqlite://")


def test_outside_development_the_app_does_not_start_without_a_public_address(production):
    with pytest.raises(RuntimeError, match="PUBLIC_BASE_URL is not set"):
        create_app(TestConfig, PUBLIC_BASE_URL=None, **production)
    with pytest.raises(RuntimeError, match="PUBLIC_BASE_URL is not set"):
        create_app(TestConfig, PUBLIC_BASE_URL="", **production)
    app = create_app(TestConfig, PUBLIC_BASE_URL="https://complaints.insurer.example", **production)
    assert app.config["PUBLIC_BASE_URL"] == "https://complaints.insurer.example"


@pytest.mark.parametrize("environ", [{"APP_ENV": "development"}, {"FLASK_DEBUG": "1"}])
def test_in_development_the_public_address_defaults_to_the_local_server(production, monkeypatch, environ):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert create_app(TestConfig, PUBLIC_BASE_URL=None, **production).config["PUBLIC_BASE_URL"] == \
        "http://127.0.0.1:5000"


def test_the_tests_get_the_local_default_too():
    assert create_app(TestConfig, PUBLIC_BASE_URL=None).config["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"


@pytest.mark.parametrize("url", ["ftp://x", "example.com", "complaints.insurer.example/my", "https://",
                                 "http://[::1", "https://kf.example.cn/?from=sms", "javascript:alert(1)"])
@pytest.mark.parametrize("testing", [True, False])
def test_a_public_address_that_is_not_absolute_http_is_refused_everywhere(production, url, testing):
    with pytest.raises(RuntimeError, match="PUBLIC_BASE_URL must be an absolute http"):
        create_app(TestConfig, PUBLIC_BASE_URL=url, **{**production, "TESTING": testing})


@pytest.mark.parametrize("url", ["http://localhost:8000", "https://kf.example.cn/complaints/", "https://[::1]:443"])
def test_absolute_http_addresses_are_accepted(production, url):
    assert create_app(TestConfig, PUBLIC_BASE_URL=url, **production).config["PUBLIC_BASE_URL"] == url


# ---- CSRF on the portal's own cookie ------------------------------------------------------------------------
def page_token(phone, url) -> str:
    return TOKEN.search(phone.get(url).text).group(1)


def nonce_of(app, phone):
    with app.test_request_context():
        return access._serializer().loads(phone.cookie().value).get("nonce")


def session_cookies(response) -> list:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]


def test_a_portal_post_with_its_token_works(app, desk):
    number = desk.register()
    phone = opened(app, number)
    r = phone.post("/my/withdraw", {"reason": "已协商解决", "csrf_token": page_token(phone, "/my/withdraw")},
                   token=False)
    assert r.status_code == 200 and 'data-what="withdrawn"' in r.text
    assert complaint_of(number).outcome == "withdrawn"


def staff_token(app):
    """A token Flask-WTF would accept from a staff session."""
    with app.test_request_context():
        return generate_csrf()


@pytest.mark.parametrize("sent", ["missing", "empty", "wrong", "non-ascii", "staff", "another device"])
def test_a_portal_post_without_this_devices_token_is_refused_and_changes_nothing(app, desk, sent):
    number = at_confirmation(desk)
    phone = opened(app, number)
    task_id = task_row(number, "customer_confirmation").id
    good = page_token(phone, f"/my/answer/{task_id}")
    token = {"missing": None, "empty": "", "wrong": "0" * len(good), "non-ascii": "令牌" + good[2:],
             "staff": staff_token(app), "another device": page_token(opened(app, number), "/my/withdraw")}[sent]
    assert token != good
    data = {"satisfied": "true", "customer_feedback": "好"} | ({} if token is None else {"csrf_token": token})
    r = phone.post(f"/my/answer/{task_id}", data, token=False)
    assert r.status_code == 400 and reason(r) == "form_expired"
    assert session_cookies(r) == []
    assert task_row(number, "customer_confirmation").state == "open" and customer_events(number) == []
    assert phone.get("/my/").status_code == 200                  # still in: the cookie is kept


def test_a_device_without_a_portal_cookie_has_no_token(app, desk):
    number = desk.register()
    stranger = Phone(app, "10.2.2.2")
    token = page_token(opened(app, number), "/my/withdraw")
    for data in ({}, {"csrf_token": ""}, {"csrf_token": token}):
        r = stranger.post("/my/withdraw", data, token=False)
        assert r.status_code == 400 and reason(r) == "form_expired"
    assert complaint_of(number).status != "closed"


def test_the_link_sets_a_nonce_that_a_language_switch_keeps(app, desk):
    number = desk.register()
    phone = opened(app, number)
    nonce = nonce_of(app, phone)
    assert nonce and len(nonce) >= 16
    token = page_token(phone, "/my/withdraw")
    assert phone.get("/my/language/en").status_code == 302                     # the cookie is re-written
    assert nonce_of(app, phone) == nonce
    r = phone.post("/my/withdraw", {"reason": "", "csrf_token": token}, token=False)
    assert r.status_code == 200 and 'data-what="withdrawn"' in r.text


def test_a_cookie_from_before_nonces_gets_one_and_its_forms_work(app, desk):
    number = desk.register()
    link = db.session.execute(select(PortalLink).order_by(PortalLink.id.desc()).limit(1)).scalar_one()
    phone = Phone(app)
    with app.test_request_context():
        phone.client.set_cookie("portal", access._serializer().dumps({"link": link.id}), path="/my")
    assert nonce_of(app, phone) is None
    page = phone.get("/my/withdraw")
    assert nonce_of(app, phone)                                                # written by that page
    r = phone.post("/my/withdraw", {"reason": "", "csrf_token": TOKEN.search(page.text).group(1)}, token=False)
    assert r.status_code == 200 and complaint_of(number).outcome == "withdrawn"


def walk_the_portal(app, desk, phone):
    """Every kind of portal response on `phone`: the link, pages, a language switch, refused and accepted
    posts, leaving."""
    number = at_confirmation(desk)
    task_id = task_row(number, "customer_confirmation").id
    responses = [phone.get(f"/my/{link_token(app, number)}"), phone.get("/my/"),
                 phone.get(f"/my/answer/{task_id}"), phone.get("/my/withdraw"), phone.get("/my/language/en"),
                 phone.post("/my/withdraw", {"reason": "x"}, token=False),
                 phone.post(f"/my/answer/{task_id}", {"satisfied": "true", "customer_feedback": "好"}),
                 phone.get("/my/survey"), phone.post("/my/leave", {}, page="/my/"), phone.get("/my/")]
    assert [r.status_code for r in responses] == [302, 200, 200, 200, 302, 400, 200, 200, 200, 403]
    return responses


def test_no_portal_response_sets_the_session_cookie(app, desk):
    phone = Phone(app)
    for r in walk_the_portal(app, desk, phone):
        assert session_cookies(r) == [], r.request.path
    assert phone.client.get_cookie("session") is None


def test_a_staff_session_is_left_as_it_was_by_portal_visits(app, desk):
    staff = Phone(app)
    r = staff.post("/login", {"username": "customer_service", "password": "pw-customer_service"})
    assert r.status_code == 302
    before = staff.client.get_cookie("session").value
    for r in walk_the_portal(app, desk, staff):
        assert session_cookies(r) == [], r.request.path
    assert staff.client.get_cookie("session").value == before
    assert staff.get("/").status_code == 200                                  # still logged in

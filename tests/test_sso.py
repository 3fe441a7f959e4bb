"""Single sign-on against a real OpenID Connect provider on 127.0.0.1 (tests/oidc_provider.py, Authlib's
server components): the app fetches its discovery document, keys, tokens and userinfo over HTTP; the browser's
trip through the provider is a `requests` call to its /authorize, which approves at once as the test's
account. SQLite only: the columns' migration is checked on both backends by test_migrations."""
import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from app import accounts, create_app, sso
from app.config import TestConfig
from app.extensions import db
from app.models import AuditEvent, User
from tests.conftest import make_user
from tests.oidc_provider import KEY_ID, Account, Provider
from tests.test_web import Browser, flashes, text

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
GROUP_ROLES = "cs-team=customer_service,claims=claims_specialist,claims=training,managers=management"
WANG = Account("8f3c-wang", "wang.fang", "王芳", "wang.fang@insurer.example", ["cs-team", "claims", "canteen"])
UNVERIFIED = "无法验证公司统一身份认证服务的应答，未登录任何用户。如再次出现，请联系系统管理员。"


@pytest.fixture(scope="module")
def provider():
    started = Provider().start()
    yield started
    started.stop()


@pytest.fixture
def idp(app, provider):
    """The app set up for the provider, whose knobs start from their defaults."""
    provider.account, provider.signing_key = None, provider.key
    provider.id_token_overrides, provider.discovery_overrides = {}, {}
    provider.authorize_requests.clear()
    provider.logout_requests.clear()
    app.config.update(provider.app_config(OIDC_GROUP_ROLES=GROUP_ROLES))
    return provider


def to_provider(browser, provider, account, start="/login/sso") -> str:
    """The browser's trip from the app to the provider's /authorize, which approves as `account`: the
    callback path and query the provider sends the browser back to."""
    provider.account = account
    r = browser.get(start)
    assert r.status_code == 302 and r.headers["Location"].startswith(provider.issuer + "/authorize?"), r.headers
    answer = requests.get(r.headers["Location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert (back.scheme, back.netloc, back.path) == ("http", "localhost", "/login/sso/callback")
    return f"{back.path}?{back.query}"


def sso_login(browser, provider, account, start="/login/sso", tamper=None):
    """The whole trip; `tamper` may change the callback's query first. Returns the callback's response."""
    back = urlsplit(to_provider(browser, provider, account, start))
    query = parse_qs(back.query)
    if tamper:
        tamper(query)
    return browser.get(urlunsplit(("", "", back.path, urlencode(query, doseq=True), "")))


def refused(browser, r) -> list:
    """The messages the login page shows after a refused sign-in (and that nobody is logged in)."""
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login", r.headers
    page = browser.get("/login")
    assert page.status_code == 200 and 'data-testid="submit-login"' in page.text
    with browser.client.session_transaction() as session:
        assert "_user_id" not in session and "login_method" not in session     # nobody logged in
    return flashes(page)


def user(username):
    db.session.expire_all()
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def audited(action):
    db.session.expire_all()
    return [e.data | {"actor": e.actor} for e in db.session.execute(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).scalars()]


def test_first_login_creates_the_user_with_the_roles_of_their_groups(app, idp):
    browser = Browser(app)
    page = browser.get("/login?next=/complaints")
    assert "使用公司统一身份登录" in text(page) and 'href="/login/sso?next=/complaints"' in page.text

    r = sso_login(browser, idp, WANG, start="/login/sso?next=/complaints")
    assert r.status_code == 302 and r.headers["Location"] == "/complaints"
    asked = idp.authorize_requests[-1]                  # state, nonce and PKCE (S256) on the way out
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"] and asked["nonce"] and asked["state"]
    assert asked["scope"] == "openid profile email" and asked["ui_locales"] == "zh-Hans-CN"
    assert browser.get("/complaints").status_code == 200
    with browser.client.session_transaction() as session:
        assert session["login_method"] == "sso"

    wang = user("wang.fang")             # "canteen" maps to nothing and is ignored; claims gives two roles
    assert wang.roles == {"customer_service", "claims_specialist", "training"}
    assert (wang.display_name, wang.email) == ("王芳", "wang.fang@insurer.example")
    assert (wang.sso_issuer, wang.sso_subject) == (idp.issuer, "8f3c-wang")
    assert audited("sso_user_created") == [{"roles": ["claims_specialist", "customer_service", "training"],
                                            "actor": "wang.fang"}]
    assert len(audited("login_sso")) == 1


def test_each_login_resyncs_the_roles_and_a_user_with_no_mapped_group_left_loses_them(app, idp):
    sso_login(Browser(app), idp, WANG)
    moved = Account(WANG.sub, "fang.wang", "王芳（管理）", "", ["managers"])   # new groups, name; same subject
    r = sso_login(Browser(app), idp, moved)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    wang = user("wang.fang")                                      # the username stays: it is in the audit trail
    assert wang.roles == {"management"} and wang.display_name == "王芳（管理）"
    assert wang.email == "wang.fang@insurer.example"              # no e-mail claim: the one known stays
    assert user("fang.wang") is None
    assert audited("sso_roles_changed") == [{"before": ["claims_specialist", "customer_service", "training"],
                                             "after": ["management"], "actor": "wang.fang"}]

    browser = Browser(app)
    assert refused(browser, sso_login(browser, idp, Account(WANG.sub, "wang.fang", groups=["canteen"]))) == [
        "您的公司账号不属于任何对应本系统角色的用户组，无法登录。请联系系统管理员将您加入相应的用户组。"]
    assert user("wang.fang").roles == set()
    assert audited("sso_roles_changed")[-1]["after"] == []
    assert audited("login_sso_refused") == [{"reason": "no_role", "actor": "wang.fang"}]


def test_no_mapped_group_is_refused_and_no_user_is_created(app, idp):
    browser = Browser(app)
    browser.get("/language/en")
    r = sso_login(browser, idp, Account("77-li", "li.lei", "李雷", groups=["canteen"]))
    assert refused(browser, r) == ["Your company account is in no group that gives a role in this application, so "
                                   "you cannot log in here. Ask an administrator to add you to the right group."]
    assert user("li.lei") is None


def test_a_tampered_state_or_a_replayed_callback_logs_nobody_in(app, idp):
    browser = Browser(app)
    r = sso_login(browser, idp, WANG, tamper=lambda query: query.update(state=["forged-" + query["state"][0]]))
    assert refused(browser, r) == ["本次登录已过期或已被使用，请在登录页重新点击统一身份登录按钮。"]
    assert user("wang.fang") is None

    # A real sign-in; then the same callback again, in another browser holding the cookie from before the
    # callback (the provider takes a code once), and in the same browser (its state is used up).
    browser = Browser(app)
    callback = to_provider(browser, idp, WANG)
    cookie = browser.client.get_cookie("session").value
    assert browser.get(callback).status_code == 302 and browser.get("/").status_code == 200

    again = Browser(app)
    again.client.set_cookie("session", cookie)
    assert refused(again, again.get(callback)) == ["公司统一身份认证服务未能完成登录（invalid_grant），请重新登录。"]
    replay = browser.get(callback)
    assert replay.status_code == 302 and urlsplit(replay.headers["Location"]).path == "/login"
    assert flashes(browser.get("/login", follow_redirects=True)) == [
        "本次登录已过期或已被使用，请在登录页重新点击统一身份登录按钮。"]
    assert len(audited("login_sso")) == 1


def test_a_disabled_account_is_refused(app, idp):
    sso_login(Browser(app), idp, WANG)
    wang = user("wang.fang")
    wang.active = False
    db.session.commit()
    browser = Browser(app)
    assert refused(browser, sso_login(browser, idp, WANG)) == ["您在本系统的账号已停用，请联系系统管理员。"]
    assert user("wang.fang").roles == {"customer_service", "claims_specialist", "training"}     # untouched


def test_an_sso_user_has_no_local_password(app, idp):
    sso_login(Browser(app), idp, WANG)
    hashed = user("wang.fang").password_hash
    assert hashed.startswith("scrypt:")                     # a real hash (same time to check), of nothing known
    for password in ("wang.fang", "8f3c-wang", hashed):
        r = Browser(app).post("/login", {"username": "wang.fang", "password": password})
        assert r.status_code == 401 and "用户名或密码错误" in text(r)


def test_a_local_account_of_the_same_name_is_taken_over_only_when_configured(app, idp):
    make_user("wang.fang", "compliance")
    browser = Browser(app)
    assert refused(browser, sso_login(browser, idp, WANG)) == [
        "本系统已有名为 wang.fang 的账号，且未与公司统一身份关联，不能用于您的登录。请联系系统管理员。"]
    assert user("wang.fang").roles == {"compliance"} and user("wang.fang").sso_subject is None
    Browser(app).login("wang.fang")                         # the local password still works

    link = accounts.reset_link_token(db.session, "admin", user("wang.fang"), timedelta(hours=24))
    db.session.commit()
    app.config["OIDC_LINK_LOCAL_ACCOUNTS"] = True
    assert sso_login(Browser(app), idp, WANG).status_code == 302
    with pytest.raises(accounts.AccountError):              # a link sent before must not set a password now
        accounts.link_user(db.session, link)
    wang = user("wang.fang")
    assert wang.sso_subject == WANG.sub and wang.roles == {"customer_service", "claims_specialist", "training"}
    assert [e["actor"] for e in audited("sso_account_linked")] == ["wang.fang"]
    r = Browser(app).post("/login", {"username": "wang.fang", "password": "pw-wang.fang"})
    assert r.status_code == 401                             # its old password no longer works
    other = Account("other-sub", "wang.fang", groups=["claims"])      # someone else with that name later
    browser = Browser(app)
    assert "本系统已有名为 wang.fang 的账号" in refused(browser, sso_login(browser, idp, other))[0]


@pytest.mark.parametrize("tampering", ["another key", "another issuer", "another audience", "another nonce"])
def test_the_id_token_is_verified(app, idp, tampering):
    """Each of these ID tokens is refused; with no checks each would log the user in. Authlib checks the
    audience only when told (app/web/sso/provider.claims_options): without it, the token for another client
    that names us as its authorized party (azp) is taken."""
    if tampering == "another key":
        idp.signing_key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "alg": "RS256"})
    else:
        idp.id_token_overrides = {"another issuer": {"iss": "https://evil.example"},
                                  "another audience": {"aud": ["other-app"], "azp": idp.client.client_id},
                                  "another nonce": {"nonce": "a-nonce-of-another-login"}}[tampering]
    browser = Browser(app)
    assert refused(browser, sso_login(browser, idp, WANG)) == [UNVERIFIED]
    assert user("wang.fang") is None and audited("login_sso") == []


def test_the_provider_denied_unreachable_or_not_our_issuer(app, idp):
    browser = Browser(app)
    r = sso_login(browser, idp, None)                            # nobody approved: access_denied
    assert refused(browser, r) == ["登录已在公司统一身份认证服务处取消或被拒绝，您尚未登录。"]

    idp.discovery_overrides = {"issuer": "https://evil.example"}
    app.extensions.pop("sso_client")                             # its discovery document was cached
    r = browser.get("/login/sso")
    assert refused(browser, r) == ["本系统的统一身份登录配置有误，请联系系统管理员。"]

    down = Provider().start()                # down between the start and the callback, then at the start
    app.config.update(down.app_config(OIDC_GROUP_ROLES=GROUP_ROLES))
    down.account = WANG
    r = browser.get("/login/sso")
    approved = requests.get(r.headers["Location"], allow_redirects=False, timeout=5).headers["Location"]
    down.stop()
    unreachable = ["暂时无法连接公司统一身份认证服务，请几分钟后再试，或联系系统管理员。"]
    back = urlsplit(approved)
    assert refused(browser, browser.get(f"{back.path}?{back.query}")) == unreachable
    app.extensions.pop("sso_client")                             # its discovery document was cached
    assert refused(browser, browser.get("/login/sso")) == unreachable


# ---- logout at the provider (RP-initiated logout) ----------------------------------------------------
STILL_SIGNED_IN = "您在公司统一身份认证服务可能仍处于登录状态。在公用电脑上，请也在那里退出登录。"


def to_provider_logout(r) -> str:
    """The provider's logout address of /logout/sso's page (a refresh to it, and a link)."""
    assert r.status_code == 200, r.headers
    link = re.search(r'href="([^"]+)" data-testid="sso-logout-continue"', r.get_data(as_text=True)).group(1)
    assert f"<meta http-equiv=\"refresh\" content=\"0; url='{link}'\">" in r.get_data(as_text=True)
    return html.unescape(link)


def logged_out(browser, r) -> list:
    """The messages of the login page `r` leads to, and that nobody is logged in any more."""
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login", r.headers
    shown = flashes(browser.get("/login"))
    assert browser.get("/").status_code == 302
    return shown


def test_logging_out_of_a_single_sign_on_session_logs_out_at_the_provider_too(app, idp):
    browser = Browser(app)
    sso_login(browser, idp, WANG)
    r = browser.post("/logout", page="/")
    assert r.status_code == 302 and r.headers["Location"] == "/logout/sso"
    address = to_provider_logout(browser.get("/logout/sso"))
    to = urlsplit(address)
    assert f"{to.scheme}://{to.netloc}{to.path}" == f"{idp.issuer}/logout"
    asked = {key: values[0] for key, values in parse_qs(to.query).items()}
    assert asked.pop("state") and asked.pop("tenant") == "main"        # the endpoint's own query is kept
    hint = jwt.decode(asked.pop("id_token_hint"), idp.key).claims        # the login's ID token
    assert (hint["sub"], hint["aud"]) == (WANG.sub, ["complaints-app"])
    assert asked == {"client_id": "complaints-app", "post_logout_redirect_uri": "http://localhost/login",
                     "ui_locales": "zh-Hans-CN"}
    back = requests.get(address, allow_redirects=False, timeout=5)     # the provider ends its session
    assert back.status_code == 302 and back.headers["Location"].startswith("http://localhost/login?state=")
    assert len(idp.logout_requests) == 1
    assert flashes(browser.get("/login")) == ["您已退出登录。"]
    assert browser.get("/").status_code == 302                   # logged out here
    assert browser.get("/logout/sso").headers["Location"] == "/login"      # once: a second visit goes nowhere
    assert len(idp.logout_requests) == 1


def test_an_id_token_just_small_enough_is_kept_and_the_cookie_stays_within_what_browsers_keep(app, idp):
    browser = Browser(app)
    idp.id_token_overrides = {"padding": "x" * 880}
    r = sso_login(browser, idp, WANG)
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("session="))
    with browser.client.session_transaction() as session:
        assert 1900 < len(session["sso_id_token"]) <= 2000
    assert len(cookie) < 3000                           # browsers keep 4,096 bytes: room for a few messages


def test_an_id_token_too_big_for_the_cookie_is_not_kept_and_the_logout_goes_without_its_hint(app, idp):
    browser = Browser(app)
    idp.id_token_overrides = {"padding": "x" * 2500}
    sso_login(browser, idp, WANG)
    with browser.client.session_transaction() as session:
        assert session["login_method"] == "sso" and "sso_id_token" not in session
    r = browser.get(browser.post("/logout", page="/").headers["Location"])
    asked = parse_qs(urlsplit(to_provider_logout(r)).query)
    assert "id_token_hint" not in asked and asked["client_id"] == ["complaints-app"]


def test_the_provider_is_left_alone_unless_the_session_was_a_single_sign_on_one(app, idp, people):
    browser = Browser(app)
    browser.login("customer_service")
    assert logged_out(browser, browser.post("/logout", page="/")) == ["您已退出登录。"]
    stranger = Browser(app)                               # a bare link does not log anyone out at the provider
    assert stranger.get("/logout/sso").headers["Location"] == "/login"
    assert idp.logout_requests == []

    app.config["OIDC_LOGOUT_AT_PROVIDER"] = False         # turned off: logging out ends the session here only
    sso_login(browser, idp, WANG)
    r = browser.post("/logout", page="/")
    assert logged_out(browser, browser.get(r.headers["Location"])) == ["您已退出登录。"]
    assert idp.logout_requests == []


def test_a_provider_without_logout_or_out_of_reach_leaves_the_user_logged_out_here_and_told(app, idp):
    browser = Browser(app)
    idp.discovery_overrides = {"end_session_endpoint": None}
    sso_login(browser, idp, WANG)
    r = browser.post("/logout", page="/")
    assert logged_out(browser, browser.get(r.headers["Location"])) == ["您已退出登录。", STILL_SIGNED_IN]

    idp.discovery_overrides = {}
    app.extensions.pop("sso_client")                    # its discovery document, with no logout, was cached
    sso_login(browser, idp, WANG)
    browser.get("/language/en")
    app.config["OIDC_TIMEOUT_SECONDS"] = 0.5
    down = Provider()                                   # a provider that is not listening any more
    app.config.update(down.start().app_config(OIDC_GROUP_ROLES=GROUP_ROLES, OIDC_TIMEOUT_SECONDS=0.5))
    down.stop()
    r = browser.post("/logout", page="/")
    assert logged_out(browser, browser.get(r.headers["Location"])) == [
        "You have been logged out.", "You may still be signed in at the company sign-in service. On a shared "
        "computer, log out there too."]
    assert idp.logout_requests == []


def test_sso_off_shows_no_button(app):
    browser = Browser(app)
    assert 'data-testid="sso-login"' not in browser.get("/login").text
    assert refused(browser, browser.get("/login/sso")) == ["本系统未启用统一身份登录，请使用用户名和密码登录。"]
    assert refused(browser, browser.get("/login/sso/callback?code=x&state=y")) == [
        "本系统未启用统一身份登录，请使用用户名和密码登录。"]


def test_the_settings(app):
    roles = app.config["ROLES"]
    assert sso.parse_group_roles("a=management, b=training,a=compliance", roles) == {
        "a": ("compliance", "management"), "b": ("training",)}
    assert sso.parse_group_roles('{"CN=Claims,OU=Staff": ["claims_specialist"], "x": "training"}', roles) == {
        "CN=Claims,OU=Staff": ("claims_specialist",), "x": ("training",)}
    for bad in ("a=superuser", "a", "{not json", "", '{"a": 3}'):
        with pytest.raises(sso.ConfigError):
            sso.parse_group_roles(bad, roles)
    base = {"OIDC_ISSUER": "https://sso.insurer.example/realms/staff", "OIDC_CLIENT_ID": "complaints",
            "OIDC_CLIENT_SECRET": "s", "OIDC_GROUP_ROLES": "a=training", "ROLES": roles}
    assert sso.settings(base).discovery_url == "https://sso.insurer.example/realms/staff/.well-known/openid-configuration"
    assert sso.settings({**base, "OIDC_ISSUER": ""}) is None
    for wrong in ({"OIDC_CLIENT_SECRET": ""}, {"OIDC_ISSUER": "http://sso.insurer.example"}, {"OIDC_SCOPES": "profile"}):
        with pytest.raises(sso.ConfigError):
            sso.settings({**base, **wrong})
    with pytest.raises(sso.ConfigError, match="OIDC_CLIENT_SECRET"):          # the app does not start with them
        create_app(TestConfig, SQLALCHEMY_DATABASE_URI="sqlite://",
                   **{**{k: v for k, v in base.items() if k != "ROLES"}, "OIDC_CLIENT_SECRET": None})


def test_the_last_administrator_keeps_the_role_the_provider_took_away(app, idp):
    """The installation keeps an active administrator (app/accounts.py): a sole admin who left the group
    keeps the role, audited; once another admin exists, the provider's groups decide again."""
    boss = Account("sub-boss", "boss", "主管", groups=["managers", "it-admins"])
    app.config["OIDC_GROUP_ROLES"] = GROUP_ROLES + ",it-admins=admin"
    sso_login(Browser(app), idp, boss)
    assert user("boss").roles == {"admin", "management"}
    sso_login(Browser(app), idp, Account("sub-boss", "boss", "主管", groups=["managers"]))
    assert user("boss").roles == {"admin", "management"} and len(audited("sso_admin_kept")) == 1
    make_user("second.admin", "admin")
    sso_login(Browser(app), idp, Account("sub-boss", "boss", "主管", groups=["managers"]))
    assert user("boss").roles == {"management"}

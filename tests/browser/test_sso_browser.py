"""Single sign-on in a real browser (chromium): the trip to the test provider (tests/oidc_provider.py, on
127.0.0.1) and back logs the user in, and logging out takes the browser through the provider's logout and back
to the login page, under the app's Content-Security-Policy (whose form-action also governs where a form's
redirects may lead). The session cookie stays within what a browser keeps."""
import pytest
from playwright.sync_api import Page, expect

from tests.oidc_provider import Account, Provider
from tests.test_sso import GROUP_ROLES

# SQLite only: the protocol and the session are the same on every backend (tests/test_sso.py).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

WANG = Account("8f3c-wang", "wang.fang", "王芳", "wang.fang@insurer.example", ["cs-team"])


@pytest.fixture
def provider(app, live_server):
    started = Provider(redirect_uris=(f"{live_server}/login/sso/callback",),
                       post_logout_redirect_uris=(f"{live_server}/login",)).start()
    started.account = WANG
    app.config.update(started.app_config(OIDC_GROUP_ROLES=GROUP_ROLES))
    yield started
    started.stop()


def test_login_and_logout_through_the_provider(app, provider, live_server, page: Page):
    blocked = []
    page.on("console", lambda m: "Content Security Policy" in m.text and blocked.append(m.text))
    page.goto("/login")
    page.get_by_test_id("sso-login").click()
    expect(page.get_by_test_id("current-user")).to_contain_text("王芳")
    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert len(cookie["value"]) < 3000                 # with the ID token kept for the logout's hint

    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("flash")).to_have_text("您已退出登录。")      # back from the provider
    assert page.url.startswith(f"{live_server}/login?state=")
    [asked] = provider.logout_requests
    assert asked["id_token_hint"] and asked["client_id"] == "complaints-app"
    assert blocked == []
    page.goto("/")
    expect(page.get_by_test_id("submit-login")).to_be_visible()          # logged out here

"""Browser tests: Playwright drives Debian's chromium (/usr/bin/chromium, installed by
scripts/ensure-browser.sh; never a browser downloaded by `playwright install`) against the test
`app` served on 127.0.0.1 by werkzeug in a thread, on every database backend of the `app` fixture.

Without /usr/bin/chromium the tests are skipped, except where REQUIRE_ALL_BACKENDS=1 (CI): there a
skipped browser test would hide a broken UI, so it fails instead."""
import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.config import ROOT
from app.extensions import db

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REQUIRE_ALL = os.environ.get("REQUIRE_ALL_BACKENDS") == "1"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}




@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch options, pointed at Debian's chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (as root) to install Debian's chromium"
        if REQUIRE_ALL:
            pytest.fail(message + " (REQUIRE_ALL_BACKENDS=1: browser tests may not be skipped)")
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture
def live_server(app):
    """The test's app on 127.0.0.1 (a free port), served by threads that push their own app contexts
    and so use their own database sessions. The test thread's session is closed first so that it
    holds no transaction or lock the server's requests would wait for."""
    db.session.commit()
    db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def base_url(live_server):
    """Lets a page do page.goto("/login")."""
    return live_server


@pytest.fixture
def browser_context_args(base_url):
    """Every browser context (one per user): the live server as base URL, a 1280-wide window,
    Beijing time and a Chinese browser, as the handlers have."""
    return {"base_url": base_url, "viewport": VIEWPORT, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


@pytest.fixture
def screenshots(app, request):
    """shot(page, name): a full-page PNG in test-artifacts/screenshots/<backend>/; with `height`,
    only the top of the page (the window's width, that many pixels)."""
    backend = app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0].split("+", 1)[0]
    folder = SCREENSHOTS / backend
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name, height=None):
        path = folder / f"{name}.png"
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height} if height else None
        page.screenshot(path=str(path), full_page=True, clip=clip)
        return path
    return shot

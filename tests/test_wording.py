"""Wording slips of issue 12 (item 6/8): who acted when no person did is named, not shown as a code; the
start-up log names the version in force when processes/ holds an older one; a refusal a page shows is a sentence
in its language, never the API's English message."""
import logging
import re

from flask_babel import force_locale

from app import create_app, customer_requests
from app.cli import deploy_on_start
from app.config import ROOT, TestConfig
from app.errors import AppError
from app.web.common import display_names
from app.web.ui import error_message
from tests.test_migration import deploy_changed, safe_change


def test_machine_actors_are_named_in_the_page_language(app, people):
    with app.test_request_context():
        assert display_names({"setup", "system", "cli", "customer_service", ""}) == {
            "setup": "安装（make run）", "system": "系统", "cli": "命令行",
            "customer_service": people["customer_service"].user.display_name}


def test_the_start_log_names_the_version_in_force(app, tmp_path, caplog):
    assert deploy_changed(tmp_path, safe_change) == 2      # version 2, as if uploaded on the procedure page
    started = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                         DEPLOY_ON_START=True)              # processes/ of the repository: version 1's content
    with caplog.at_level(logging.INFO, logger=started.logger.name):
        deploy_on_start(started)
    assert "complaint_handling: version 2 in force (deployed later than processes/, which holds version 1" in caplog.text
    assert "complaint_review: version 1 in force, unchanged" in caplog.text


# The modules whose refusals a handler's page shows as a flash message (tasks, case actions, withdrawals, reviews).
REFUSING = ("app/engine/runtime.py", "app/case_events.py", "app/complaints.py", "app/customer_requests.py")


def test_every_refusal_a_page_shows_is_a_sentence_in_the_page_language(app):
    """ui.error_message turns each error code these modules raise (by name, `code="…"`, and the ones they build:
    `task_{state}`, `review_{state}`) into a translated sentence; the error's own message is API English, which a
    Chinese page must not show."""
    codes = {code for path in REFUSING
             for code in re.findall(r'code="([a-z_]+)"', (ROOT / path).read_text(encoding="utf-8"))}
    codes |= {"forbidden", "conflict", "not_found"}             # the generic ones, raised without a code of their own
    codes |= {"task_completed", "task_cancelled"}               # built at run time: task_{state} (not open)
    codes |= {f"review_{state or 'undecided'}" for state in customer_requests.REVIEW_REFUSALS}     # review_{state}
    assert {"not_now", "role_required", "wrong_role", "not_waiting"} <= codes
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        for code in sorted(codes - {"rejected_by_procedure"}):   # invalid input: shown on its form's fields
            err = AppError("the API's English message", code=code)
            said = str(error_message(err))
            assert said != err.message and re.search(r"[\u4e00-\u9fff]", said), (code, said)

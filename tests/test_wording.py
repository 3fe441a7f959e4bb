"""Wording slips of issue 12 (item 6/8): who acted when no person did is named, not shown as a code; the
start-up log names the version in force when processes/ holds an older one."""
import logging

from app import create_app
from app.cli import deploy_on_start
from app.config import TestConfig
from app.web.common import display_names
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

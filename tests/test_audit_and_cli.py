"""The user / token / scheduler commands an operator runs (the audit chains: test_audit_chains.py)."""
import pytest
from sqlalchemy import delete, select, text

from app.extensions import db
from app.models import AuditEvent, User
from tests.flow import Desk


def test_users_tokens_and_demo_users_from_the_cli(app, client):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["users", "create", "li.si", "--role", "claims_specialist", "--name", "李四"])
    assert created.exit_code == 0 and "password:" in created.output
    user = db.session.execute(select(User).where(User.username == "li.si")).scalar_one()
    assert user.roles == {"claims_specialist"} and user.password_hash.startswith("scrypt")
    password = created.output.rsplit("password: ", 1)[1].strip()
    assert user.check_password(password)
    assert runner.invoke(args=["users", "create", "x", "--role", "wizard"]).exit_code != 0

    token = runner.invoke(args=["users", "token", "li.si"]).output.strip()
    r = client.get("/api/v1/tasks?queue=available", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json["total"] == 0

    demo = runner.invoke(args=["users", "demo"])
    assert demo.exit_code == 0 and demo.output.count("password:") == len(app.config["ROLES"])
    again = runner.invoke(args=["users", "demo"])
    assert "exist already" in again.output
    # Made as `users create` makes a user: active, audited, and able to log in with the printed password.
    audited = db.session.execute(select(AuditEvent.data).where(AuditEvent.action == "user_created",
                                                               AuditEvent.actor == "cli")).scalars().all()
    assert {d["username"] for d in audited} == {"li.si"} | {f"demo_{role}" for role in app.config["ROLES"]}
    line = next(line for line in demo.output.splitlines() if line.startswith("demo_claims_specialist "))
    demo_user = db.session.execute(select(User).where(User.username == "demo_claims_specialist")).scalar_one()
    assert demo_user.active and demo_user.check_password(line.rsplit("password: ", 1)[1].strip())


def test_scheduler_once_command_fires_due_timers(app, client, people):
    import time_machine
    from datetime import datetime, timedelta, timezone
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
    with time_machine.travel(t0, tick=False) as clock:
        desk = Desk(client, people)
        number = desk.register(received_at=t0.isoformat())
        clock.shift(timedelta(hours=24, seconds=1))
        result = app.test_cli_runner().invoke(args=["scheduler", "once"])
        assert "fired timers on 1 instance(s)" in result.output
        assert "initial_review_overdue" in desk.open_tasks(number)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_numbers_out_of_range_are_refused_by_name_and_a_token_is_audited(app, backend, people):
    runner = app.test_cli_runner()
    for args, option in ((["users", "token", "management", "--days", "0"], "'--days'"),
                         (["users", "token", "management", "--days", "99999999999"], "'--days'"),
                         (["jobs", "cancel", "99999999999999999999999"], "'JOB_ID'"),
                         (["jobs", "run-once", "--seconds", "nan"], "'--seconds'"),
                         (["jobs", "run-once", "--seconds", "-5"], "'--seconds'"),
                         (["outbox", "run", "--interval", "nan"], "'--interval'"),
                         (["evidence", "orphans", "--older-than-hours", "nan"], "'--older-than-hours'")):
        refused = runner.invoke(args=args)
        assert refused.exit_code == 2 and f"Invalid value for {option}" in refused.output, (args, refused.output)
    issued = runner.invoke(args=["users", "token", "management", "--days", "7", "--by", "ops"])
    assert issued.exit_code == 0
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "api_token_issued")).scalar_one()
    assert event.actor == "ops" and event.data == {"username": "management", "days": 7}
    assert issued.output.strip() not in str(event.data)                          # the token itself is never kept
    assert runner.invoke(args=["users", "disable", "management"]).exit_code == 0
    refused = runner.invoke(args=["users", "token", "management"])
    assert refused.exit_code == 1 and "disabled" in refused.output
    for args, said in ((["users", "reset-password", "customer_service", "--base-url", "https://c.example"],
                        "give --link too"),
                       (["users", "reset-password", "customer_service", "--link", "--base-url", "not a url"],
                        "an address such as https://")):
        refused = runner.invoke(args=args)
        assert refused.exit_code == 2 and said in refused.output, refused.output
    refused = runner.invoke(args=["users", "second-factor-reset", "management"])
    assert refused.exit_code == 1 and "has no second factor" in refused.output
    assert not db.session.execute(select(AuditEvent).where(AuditEvent.action == "second_factor_reset")).first()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_users_are_refused_outside_development(app, backend, monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    app.config["TESTING"] = False
    refused = app.test_cli_runner().invoke(args=["users", "demo"])
    assert refused.exit_code == 1 and "APP_ENV=development" in refused.output
    assert db.session.execute(select(User).where(User.username.like("demo_%"))).first() is None
    monkeypatch.setenv("APP_ENV", "development")
    assert app.test_cli_runner().invoke(args=["users", "demo"]).exit_code == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)      # no database question; each run hashes with scrypt
def test_demo_users_get_passwords_within_the_policy(app, backend):
    """The demo passwords are as long as the policy asks, and never longer than it allows (128)."""
    for least in (8, 100, 128):
        app.config["PASSWORD_MIN_LENGTH"] = least
        db.session.execute(delete(User).where(User.username.like("demo_%")))
        db.session.commit()
        demo = app.test_cli_runner().invoke(args=["users", "demo"])
        assert demo.exit_code == 0, demo.output
        lengths = {len(line.rsplit("password: ", 1)[1].strip()) for line in demo.output.splitlines()}
        assert lengths == {max(least, 16)}, (least, lengths)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_downgrade_asks_first_and_a_no_changes_nothing(app, backend):
    """Flask-Migrate's `flask db downgrade` drops tables and data; no rollback needs it (README, Upgrades)."""
    before = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    db.session.rollback()
    refused = app.test_cli_runner().invoke(args=["db", "downgrade"], input="n\n")
    assert refused.exit_code == 1 and "drops the tables and columns" in refused.output and "Aborted" in refused.output
    assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == before
    assert "--yes" in app.test_cli_runner().invoke(args=["db", "downgrade", "--help"]).output

"""Operations: /healthz, /readyz, /metrics (Prometheus), JSON log lines and the request id."""
import json
import logging
import re
from datetime import timedelta

import pytest
from flask import Flask
import time_machine
from prometheus_client import REGISTRY
from sqlalchemy import delete, event

from app import evidence, logs, scheduler
from app.extensions import db
from app.models import ProcessVersion
from app.timeutil import utcnow
from tests.flow import Desk

sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- health and readiness ----------------------------------------------------------------------------
@sqlite
def test_healthz_answers_without_login(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_readyz_on_a_ready_app_and_with_a_scheduler_beating(app, client):
    """On both backends: ready; with a scheduler expected, ready once it has beaten (the heartbeat row written
    once, then moved, never a second row)."""
    r = client.get("/readyz")
    assert r.status_code == 200, r.json
    assert r.json == {"status": "ok", "failed": [], "checks": {"database": "ok", "migrations": "ok",
                                                               "processes": "ok", "scheduler": "not expected",
                                                               "evidence": "ok"}}
    app.config["SCHEDULER_EXPECTED"] = True
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["failed"] == ["scheduler"]
    assert r.json["checks"]["scheduler"] == "no heartbeat"
    assert scheduler.beat(app, force=True) and not scheduler.beat(app)      # at most once a minute
    assert scheduler.beat(app, force=True)                                    # the row moves, no second row
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["checks"]["scheduler"] == "ok", r.json


@sqlite
def test_readyz_names_the_complaint_process_not_deployed(app, client):
    db.session.execute(delete(ProcessVersion))
    db.session.commit()
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json["failed"] == ["processes"] and r.json["checks"]["processes"] == "complaint process not deployed"


@sqlite
def test_readyz_names_a_stale_scheduler_heartbeat(app, client):
    app.config.update(SCHEDULER_EXPECTED=True, SCHEDULER_HEARTBEAT_MAX_SECONDS=120)
    scheduler.beat(app, force=True)
    with time_machine.travel(utcnow() + timedelta(seconds=119), tick=False):
        assert client.get("/readyz").status_code == 200
    with time_machine.travel(utcnow() + timedelta(seconds=121), tick=False):
        r = client.get("/readyz")
    assert r.status_code == 503 and r.json["failed"] == ["scheduler"]
    assert r.json["checks"]["scheduler"] == "heartbeat stale"


@sqlite
def test_readyz_names_an_evidence_store_that_cannot_write(app, client, tmp_path):
    (tmp_path / "a-file").write_text("")
    app.config["EVIDENCE_DIR"] = str(tmp_path / "a-file")
    evidence.init_app(app)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["failed"] == ["evidence"] and r.json["checks"]["evidence"] == "unavailable"
    app.config["EVIDENCE_DIR"] = str(tmp_path / "new" / "evidence")      # not there yet: made, as an upload would
    evidence.init_app(app)
    assert client.get("/readyz").status_code == 200 and (tmp_path / "new" / "evidence").is_dir()


@sqlite
def test_readyz_names_pending_migrations(app, client):
    app.extensions["readiness_heads"] = frozenset({"9999"})     # as if a newer release's migrations were here
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["failed"] == ["migrations"]
    assert "9999" not in r.text and "0025" not in r.text                     # no revisions shown


# ---- metrics -------------------------------------------------------------------------------------------
@sqlite
def test_metrics_from_localhost_count_requests_by_endpoint_and_open_tasks(app, client, desk):
    number = desk.register()
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain")
    text = r.text
    assert re.search(r'complaints_http_requests_total\{endpoint="health\.healthz",method="GET",status="200"\} '
                     r'[1-9]', text)
    assert number not in text                                       # endpoints, never URLs
    open_tasks = re.search(r'complaints_open_tasks\{role="(\w+)"\} (\S+)', text)
    assert open_tasks and float(open_tasks.group(2)) == 1.0
    for name in ("complaints_timers_due", "complaints_outbox_backlog", "complaints_outbox_failed",
                 "complaints_http_request_duration_seconds_bucket", "complaints_metrics_database_up 1.0"):
        assert name in text


@sqlite
def test_metrics_refused_to_other_addresses_and_through_an_untrusted_proxy(app, client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.9"}).status_code == 403
    assert client.get("/metrics", headers={"X-Real-IP": "10.0.0.9"}).status_code == 403      # a local proxy
    app.config["METRICS_ALLOWED_IPS"] = "127.0.0.1, 10.0.0.0/8"
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


@sqlite
def test_a_completion_and_a_fired_timer_are_counted(app, desk):
    number = desk.register()
    before = sample("complaints_task_completions_total", by="staff")
    desk.complete(number, "initial_review")
    assert sample("complaints_task_completions_total", by="staff") == before + 1
    fired = sample("complaints_timers_fired_total")
    with time_machine.travel(utcnow() + timedelta(days=60), tick=False):
        changed = scheduler.fire_due_timers(app)
    assert changed >= 1 and sample("complaints_timers_fired_total") == fired + changed


# ---- logs and the request id ---------------------------------------------------------------------------
@sqlite
def test_a_request_log_line_is_json_without_query_string_or_personal_data(app, client, desk, people, caplog):
    number = desk.register()
    with caplog.at_level(logging.INFO, logger="app.requests"):
        r = client.get(f"/api/v1/complaints/{number}?q=张三13800138000", headers=people["compliance"].headers)
    assert r.status_code == 200
    line = logs.JsonFormatter().format([rec for rec in caplog.records if rec.name == "app.requests"][-1])
    entry = json.loads(line)
    assert "\n" not in line and entry["request_id"] == r.headers["X-Request-ID"]
    assert entry["endpoint"].startswith("api.") and entry["message"] == f"GET {entry['endpoint']} 200"
    assert entry["status"] == 200 and entry["method"] == "GET" and entry["user"] == "compliance"
    assert entry["complaint"] == number and entry["duration_ms"] >= 0 and entry["level"] == "INFO"
    assert entry["time"].endswith("+00:00") and entry["logger"] == "app.requests"
    assert "13800138000" not in line and "q=" not in line and "张三" not in line


@sqlite
def test_the_engine_logs_its_problems_only_unless_asked_for_more(app, desk, caplog):
    """SpiffWorkflow writes a line at INFO for every task's change of state (some 30 per change): by default
    (SPIFF_LOG_LEVEL=WARNING) none reaches the log, though the app logs at INFO; SPIFF_LOG_LEVEL=INFO lets them."""
    with caplog.at_level(logging.INFO):
        desk.complete(desk.register(), "initial_review")
    assert [r.name for r in caplog.records if r.name.startswith("spiff")] == []
    assert any(r.name == "app.requests" for r in caplog.records)
    asking = Flask(__name__)
    asking.config["SPIFF_LOG_LEVEL"] = "INFO"
    try:
        logs.init_app(asking)
        with caplog.at_level(logging.INFO):
            desk.complete(desk.register(), "initial_review")
        assert any(r.name == "spiff.task" and r.getMessage().startswith("State changed") for r in caplog.records)
    finally:
        logging.getLogger("spiff").setLevel(app.config["SPIFF_LOG_LEVEL"])


def test_the_log_line_of_an_audited_read_names_its_user_without_loading_them_again(app, client, desk, people, caplog):
    """A full view of personal data commits its audit row, which expires the user object: the request's log line
    still names the user, and nothing is read after that commit (it had cost a statement and a transaction)."""
    number = desk.register()
    after_commit = []
    committed = []

    def seen(conn, cursor, statement, params, context, executemany):
        if committed:
            after_commit.append(statement)
    def commit(conn):
        committed.append(True)
    event.listen(db.engine, "before_cursor_execute", seen)
    event.listen(db.engine, "commit", commit)
    try:
        with caplog.at_level(logging.INFO, logger="app.requests"):
            r = client.get(f"/api/v1/complaints/{number}", headers=people["customer_service"].headers)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
        event.remove(db.engine, "commit", commit)
    assert r.status_code == 200 and r.json["complaint"]["personal_data"] == "full" and committed
    assert after_commit == []
    line = [rec for rec in caplog.records if rec.name == "app.requests"][-1]
    assert json.loads(logs.JsonFormatter().format(line))["user"] == "customer_service"


@sqlite
def test_request_id_is_echoed_when_safe_and_generated_otherwise(client):
    assert client.get("/healthz", headers={"X-Request-ID": "lb-42.a_b"}).headers["X-Request-ID"] == "lb-42.a_b"
    for unsafe in ("has space", "x" * 65, "semi;colon"):
        generated = client.get("/healthz", headers={"X-Request-ID": unsafe}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
    first, second = (client.get("/healthz").headers["X-Request-ID"] for _ in range(2))
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@sqlite
def test_api_error_bodies_carry_the_request_id(client, people):
    r = client.get("/api/v1/complaints/TS-NOPE", headers={**people["compliance"].headers, "X-Request-ID": "req-1"})
    assert r.status_code == 404 and r.json["error"]["request_id"] == "req-1" == r.headers["X-Request-ID"]
    r = client.get("/api/v1/complaints")                               # no token: 401 in the same shape
    assert r.status_code == 401 and r.json["error"]["request_id"] == r.headers["X-Request-ID"]


@sqlite
def test_json_format_installs_one_handler_however_many_apps(app):
    root = logging.getLogger()
    try:
        logs._configure_root("json")
        logs._configure_root("json")
        ours = [h for h in root.handlers if getattr(h, "complaints_json", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, logs.JsonFormatter)
        record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "plain %s", ("message",), None)
        entry = json.loads(ours[0].formatter.format(record))
        assert entry["message"] == "plain message" and entry["level"] == "WARNING" and "request_id" not in entry
    finally:
        for handler in [h for h in root.handlers if getattr(h, "complaints_json", False)]:
            root.removeHandler(handler)

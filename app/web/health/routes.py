"""/healthz, /readyz and /metrics. Their answers name checks and counts, never a person, a complaint,
a version or a revision: they are open without login (/metrics to METRICS_ALLOWED_IPS only)."""
from flask import Response, current_app, jsonify, request
from sqlalchemy import select, text

from ... import metrics
from ...extensions import db
from ...permissions import public
from . import bp


@bp.get("/healthz")
@public
def healthz():
    """The process is up and answers; no database access (a liveness probe must not fail with the database)."""
    return jsonify(status="ok")


@bp.get("/readyz")
@public
def readyz():
    """200 when every check passes, else 503; the body names each check and what it found."""
    found = readiness(current_app)
    failed = sorted(name for name, (ok, _) in found.items() if not ok)
    body = {"status": "unavailable" if failed else "ok", "failed": failed,
            "checks": {name: state for name, (_, state) in found.items()}}
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    return response


@bp.get("/metrics")
@public
def scrape():
    if not metrics.allowed(current_app, request.remote_addr):
        return Response("forbidden\n", status=403, mimetype="text/plain")
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def readiness(app) -> dict:
    """{check: (ok, state)} for database, migrations, processes, scheduler and the evidence store."""
    session = db.session
    try:
        session.execute(text("SELECT 1"))
    except Exception:      # noqa: BLE001  (whatever the driver raised: not ready)
        session.rollback()
        app.logger.warning("readiness: the database did not answer", exc_info=True)
        return {"database": (False, "unreachable"), "migrations": (False, "not checked"),
                "processes": (False, "not checked"), "scheduler": (False, "not checked"),
                "evidence": (False, "not checked")}
    found = {"database": (True, "ok")}
    for name, check in (("migrations", _migrations), ("processes", _processes), ("scheduler", _scheduler),
                        ("evidence", _evidence)):
        try:
            found[name] = check(app, session)
        except Exception:      # noqa: BLE001  (e.g. a table a pending migration creates: not ready)
            app.logger.warning("readiness: the %s check failed", name, exc_info=True)
            found[name] = (False, "error")
        session.rollback()          # reads only: end each check's transaction (a failed one too)
    return found


def _migrations(app, session):
    """The database's alembic revision(s) equal the migrations' head(s) (an upgrade is not pending)."""
    heads = app.extensions.get("readiness_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        from ...config import ROOT
        directory = ROOT / app.extensions["migrate"].directory      # as `flask db` finds it (absolute stays)
        heads = app.extensions["readiness_heads"] = frozenset(ScriptDirectory(str(directory)).get_heads())
    current = frozenset(session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return (True, "ok") if current == heads else (False, "not at head")


def _processes(app, session):
    from ...models import ProcessVersion
    deployed = session.execute(select(ProcessVersion.id).where(
        ProcessVersion.process_id == app.config["COMPLAINT_PROCESS"]).limit(1)).first()
    return (True, "ok") if deployed else (False, "complaint process not deployed")


def _scheduler(app, session):
    if not app.config.get("SCHEDULER_EXPECTED", True):
        return True, "not expected"          # a web-only setup or a test: no scheduler runs beside it
    from ... import scheduler
    age = scheduler.heartbeat_age(session)
    if age is None:
        return False, "no heartbeat"
    return (True, "ok") if scheduler.is_alive(age, app.config) else (False, "heartbeat stale")


def _evidence(app, session):
    """The evidence store takes a file now: its folder is writable, or its bucket answers."""
    from ...evidence.store import store_of
    return (True, "ok") if store_of(app).ready() else (False, "unavailable")

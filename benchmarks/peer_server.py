"""The app as gunicorn serves it (create_app + deploy_on_start, like wsgi.py), wrapped for the benchmark
only: benchmarks/peer.py starts it as

    gunicorn --workers 1 --pythonpath benchmarks peer_server:app

and reads what the worker did from paths that exist only here, answered before the Flask app sees them:

    GET  /__bench__/counters        {"pid", "requests", "statements": {"SELECT": n, ...}, "commits",
                                     "rollbacks", "checkouts", "rss_kib", "peak_rss_kib"} since the worker started
    POST /__bench__/profile/start   cProfile every following request of this worker
    POST /__bench__/profile/stop    stop, and write the stats to $PEER_PROFILE_PATH (pstats format)

Statements are counted per cursor execution (an executemany is one), by their first word (SELECT,
INSERT, UPDATE, DELETE, SAVEPOINT, RELEASE, ...); commits and rollbacks are the SQLAlchemy
transaction events; checkouts are connections taken from the pool (each one pings the database first:
pool_pre_ping). Nothing in app/ knows about this module."""
from __future__ import annotations

import cProfile
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from app import create_app  # noqa: E402
from app.cli import deploy_on_start  # noqa: E402
from app.extensions import db  # noqa: E402

PREFIX = "/__bench__/"


def verb(statement: str) -> str:
    """The statement's first word, upper case ("SELECT", "INSERT", ...)."""
    words = statement.lstrip(" \t\r\n(").split(None, 1)
    return words[0].upper() if words else "?"


class SqlCounter:
    """Counts what one engine sends to the database."""

    def __init__(self):
        self.statements = Counter()
        self.commits = self.rollbacks = self.checkouts = 0

    def attach(self, engine):
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        event.listen(engine.pool, "checkout", self._checkout)

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        self.statements[verb(statement)] += 1

    def _commit(self, conn):
        self.commits += 1

    def _rollback(self, conn):
        self.rollbacks += 1

    def _checkout(self, dbapi_connection, record, proxy):
        self.checkouts += 1

    def snapshot(self) -> dict:
        return {"statements": dict(self.statements), "commits": self.commits, "rollbacks": self.rollbacks,
                "checkouts": self.checkouts}


def memory_kib() -> dict:
    """This process's resident set now and at its peak, from /proc/self/status."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return {"rss_kib": found.get("VmRSS"), "peak_rss_kib": found.get("VmHWM")}


class BenchMiddleware:
    """Answers /__bench__/... itself and passes every other request to the app (profiled when asked)."""

    def __init__(self, app, counter: SqlCounter, profile_path: str | None):
        self.app = app
        self.counter = counter
        self.profile_path = profile_path
        self.profiler: cProfile.Profile | None = None
        self.requests = 0

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return self._bench(path[len(PREFIX):], environ.get("REQUEST_METHOD"), start_response)
        self.requests += 1
        if self.profiler is None:
            return self.app(environ, start_response)
        return self._profiled(environ, start_response)

    def _profiled(self, environ, start_response):
        self.profiler.enable()
        try:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            self.profiler.disable()

    def _bench(self, name, method, start_response):
        if name == "counters" and method == "GET":
            return self._json(start_response, {"pid": os.getpid(), "requests": self.requests,
                                               **self.counter.snapshot(), **memory_kib()})
        if name == "profile/start" and method == "POST":
            self.profiler = cProfile.Profile()
            return self._json(start_response, {"profiling": True})
        if name == "profile/stop" and method == "POST" and self.profiler is not None:
            profiler, self.profiler = self.profiler, None
            if not self.profile_path:
                return self._json(start_response, {"error": "PEER_PROFILE_PATH is not set"}, "409 Conflict")
            profiler.dump_stats(self.profile_path)
            return self._json(start_response, {"profiling": False, "path": self.profile_path})
        return self._json(start_response, {"error": f"no benchmark path {name!r}"}, "404 Not Found")

    @staticmethod
    def _json(start_response, payload, status="200 OK"):
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def build():
    flask_app = create_app()
    deploy_on_start(flask_app)               # as wsgi.py; its statements are not counted
    counter = SqlCounter()
    with flask_app.app_context():
        counter.attach(db.engine)
    return BenchMiddleware(flask_app, counter, os.environ.get("PEER_PROFILE_PATH"))


app = build()

"""Logs an operator can search: with LOG_FORMAT=json (the default outside development and the tests) one
JSON object per line — time (UTC, ISO 8601), level, logger, message, and within a request its request_id,
user, endpoint, method, status, duration_ms and the complaint number its URL names. One line per request
(logger "app.requests") names the Flask endpoint, never the URL: no query string, form body, link token
or other personal data reaches a log from here.

The request id is the incoming X-Request-ID when it is a safe token (at most 64 of [A-Za-z0-9._-], so a
proxy's id threads through), else a new uuid4 hex; it is returned in X-Request-ID and in every JSON API
error body (app/api/errors.py), so a user's report of an error finds its log lines."""
import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from flask import g, has_request_context, request

SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
HEADER = "X-Request-ID"
ENVIRON_ID, ENVIRON_STARTED = "complaints.request_id", "complaints.started"
ENVIRON_USER = "complaints.username"
request_log = logging.getLogger("app.requests")
# What a record may carry beside its message (passed as `extra=`), in the order written.
FIELDS = ("request_id", "user", "endpoint", "method", "status", "duration_ms", "complaint")


def request_id() -> str | None:
    """This request's id (chosen on first use), None outside a request."""
    if not has_request_context():
        return None
    # Kept on the request's environ, not g: g belongs to the app context, which may outlive one request.
    chosen = request.environ.get(ENVIRON_ID)
    if chosen is None:
        incoming = request.headers.get(HEADER, "")
        chosen = request.environ[ENVIRON_ID] = incoming if SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
    return chosen


def started():
    """perf_counter() when this request's first hook ran, None if it never did."""
    return request.environ.get(ENVIRON_STARTED)


def note_user(username):
    """The user this request authenticated (the API's token user), for its log line: kept as a name, since reading
    the user object after a commit expired it would be a query."""
    request.environ[ENVIRON_USER] = username


def _username():
    """The logged-in user if this request already loaded one: Flask-Login's web user (which keeps its name), or
    the one `note_user` kept. Never a query from a log call."""
    return getattr(g.get("_login_user"), "username", None) or request.environ.get(ENVIRON_USER)


def _complaint():
    number = (request.view_args or {}).get("number")
    return str(number) if number is not None else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the request's id, user and complaint number filled in within a request."""

    def format(self, record):
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if has_request_context():
            entry.update(request_id=request_id(), user=_username(), endpoint=request.endpoint,
                         method=request.method, complaint=_complaint())
        for name in FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def init_app(app):
    """The log format (LOG_FORMAT), SpiffWorkflow's level (SPIFF_LOG_LEVEL), the request id and the one line per
    request."""
    _configure_root(app.config.get("LOG_FORMAT", "text"))
    logging.getLogger("spiff").setLevel(app.config.get("SPIFF_LOG_LEVEL", "WARNING"))

    def start():
        request.environ[ENVIRON_STARTED] = time.perf_counter()
        request_id()
    app.before_request_funcs.setdefault(None, []).insert(0, start)    # before the input guard may answer

    @app.after_request
    def finish(response):
        response.headers[HEADER] = request_id()
        began = started()
        duration_ms = round((time.perf_counter() - began) * 1000, 1) if began is not None else None
        request_log.info("%s %s %s", request.method, request.endpoint or "-", response.status_code,
                         extra={"request_id": request_id(), "user": _username(), "endpoint": request.endpoint,
                                "method": request.method, "status": response.status_code,
                                "duration_ms": duration_ms, "complaint": _complaint()})
        return response


def _configure_root(fmt):
    """json: one handler of ours on the root logger (once, however many apps a process creates); text: as before."""
    root = logging.getLogger()
    if fmt == "json":
        if not any(getattr(h, "complaints_json", False) for h in root.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            handler.complaints_json = True
            root.addHandler(handler)
        root.setLevel(logging.INFO)
    else:
        logging.basicConfig(level=logging.INFO)

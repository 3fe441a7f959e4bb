"""create_app(): configuration, extensions, the engine runtime, blueprints and CLI."""
from functools import partial
from urllib.parse import urlsplit

from flask import Flask, request

from .config import DEV_PUBLIC_BASE_URL, Config, SettingMissing, development
from . import db_connections
from .extensions import db, migrate


def create_app(config_object=Config, **overrides) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config_object)
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):
        raise SettingMissing("SECRET_KEY is not set: export it in the environment (see README)")
    _public_base_url(app)
    db_connections.engine_options(app)

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"))
    db_connections.init_app(app)
    from . import input_guard
    input_guard.init_app(app)     # first of all hooks: hostile URLs and forms never reach a view

    from .avoidance import excluded_usernames, facts_of
    from .complaints import make_record_sync
    from .engine.runtime import Runtime
    from .models import Complaint
    roles = app.config["ROLES"]
    runtime = Runtime(db.session,
                      lane_roles={spec["lane"]: code for code, spec in roles.items() if spec.get("lane")},
                      supervisor_roles={code for code, spec in roles.items() if spec.get("supervisor")})
    runtime.record = (Complaint, Complaint.number)     # read with each change's lock for the syncs below
    runtime.record_syncs.append(make_record_sync(app.config["RECORD_FIELDS"], app.config["SIDE_RECORD_FIELDS"],
                                                   app.config["DEADLINE_FIELDS"]))
    from .outbox.queue import make_queue_sync
    runtime.record_syncs.append(make_queue_sync(app.config))     # customer messages: rendered, one delivery per channel
    from . import quarterly
    quarterly.init_app(runtime)                                  # the quarterly review's effects (C-5.4)
    from . import evidence
    from .evidence.fields import check_form as check_evidence_fields
    evidence.init_app(app)                                       # where evidence files are kept
    from . import passwords
    passwords.check_settings(app.config)                          # the password policy's settings
    runtime.form_checks.append(check_evidence_fields)             # a form's file fields name files of the case
    runtime.exclusions = partial(excluded_usernames, independent=frozenset(app.config["INDEPENDENT_PROCESSES"]))
    runtime.exclusion_facts = facts_of                            # the lock's row holds them (runtime.record)
    app.extensions["runtime"] = runtime

    from .api import bp as api_bp
    app.register_blueprint(api_bp)
    _json_errors_under_api(app)

    # The web UI: Flask-Login, CSRF on every form (not the API: it uses Bearer tokens), Flask-Babel.
    from .web import init_app as init_web
    init_web(app, exempt=[api_bp])
    from .portal import access as portal_access, bp as portal_bp   # the customers' own pages: their own cookie
    app.register_blueprint(portal_bp)
    app.session_interface = portal_access.StaffSessionOnly()         # the staff session: never written by /my/

    from .security import init_app as init_security
    init_security(app)

    from .cli import register_cli
    register_cli(app)
    from . import logs, metrics
    logs.init_app(app)            # LOG_FORMAT, the request id, one log line per request
    metrics.init_app(app)         # Prometheus counters of requests, completions and timers fired (/metrics)
    return app


def _public_base_url(app):
    """Customers' links are built on PUBLIC_BASE_URL with no request to ask, so a wrong one sends every
    customer a dead link: outside development and tests it must be set, and anywhere it must be an
    absolute http(s) address. On a developer's machine it defaults to the local server."""
    url = app.config.get("PUBLIC_BASE_URL")
    if not url:
        if not (app.testing or development()):
            raise SettingMissing("PUBLIC_BASE_URL is not set: export the address customers reach the app at, "
                                 "e.g. https://complaints.example.com (APP_ENV=development on a developer's "
                                 "machine uses http://127.0.0.1:5000; see README)")
        url = app.config["PUBLIC_BASE_URL"] = DEV_PUBLIC_BASE_URL
    if not absolute_http(url):
        raise SettingMissing(f"PUBLIC_BASE_URL must be an absolute http(s) address such as "
                             f"https://complaints.example.com, not {url!r}")


def absolute_http(url: str) -> bool:
    """http(s), a host, and nothing after the path (links are the path plus /my/<token>, or a reset link's):
    PUBLIC_BASE_URL, and `flask users reset-password --base-url`."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.query or parts.fragment)
    except ValueError:            # e.g. an unclosed [IPv6 address
        return False


def known_lanes(app) -> set:
    return {spec["lane"] for spec in app.config["ROLES"].values() if spec.get("lane")}


def _json_errors_under_api(app):
    from werkzeug.exceptions import HTTPException

    from .api.errors import error_response, http_error as api_http_error

    @app.errorhandler(HTTPException)
    def http_error(err):
        if request.path.startswith("/api/"):
            return api_http_error(err)
        from .web.errorpages import unmatched      # 404/405 pages in the user's language, the portal's under /my/
        return unmatched(err)

    @app.errorhandler(Exception)
    def unexpected_error(err):
        # The change was rolled back by the runtime; say so in the API's own shape.
        db.session.rollback()
        app.logger.exception("unhandled error on %s", request.path)
        if request.path.startswith("/api/"):
            return error_response(500, "internal_error", "an unexpected error occurred; nothing was saved")
        return "Internal Server Error", 500

"""The OpenAPI document (GET /api/v1/openapi.json) and the API reference page that shows it
(GET /api/v1/docs: Swagger UI from app/static/vendor/swagger-ui, vendored by `make vendor`). Any
logged-in user may read both: with a Bearer token, or (for the page, which fetches the document from
the browser) with a web session."""
from functools import wraps

from flask import current_app, jsonify, render_template, request
from flask_login import current_user, login_required

from ..permissions import any_role
from . import bp
from .auth import current_api_user
from .openapi import build


def token_or_session(view):
    """A Bearer token if one is sent (401 if it is not valid), else a logged-in web session (else 401)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if "Authorization" in request.headers or not current_user.is_authenticated:
            current_api_user()
        return view(*args, **kwargs)
    return wrapper


@bp.get("/openapi.json")
@any_role
@token_or_session
def openapi_document():
    document = current_app.extensions.get("openapi")
    if document is None:          # built once per app: the routes and schemas do not change while it runs
        document = current_app.extensions["openapi"] = build(current_app)
    return jsonify(document)


@bp.get("/docs")
@any_role
@login_required
def reference_page():
    return render_template("api/reference.html")

"""Every API error has one shape: {"error": {"code", "message", "fields", "request_id"}}; request_id is the
request's X-Request-ID (app/logs.py), which finds the request's log lines."""
from flask import jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ..errors import AppError, InvalidData
from . import bp


def error_response(status, code, message, fields=None):
    from ..logs import request_id
    response = jsonify({"error": {"code": code, "message": message, "fields": fields or {},
                                  "request_id": request_id()}})
    response.status_code = status
    return response


@bp.errorhandler(AppError)
def app_error(err: AppError):
    return error_response(err.status, err.code, err.message, err.fields)


@bp.errorhandler(HTTPException)
def http_error(err: HTTPException):
    """werkzeug's HTTP errors in the API's shape (also for a path under /api/ no route matches: app/__init__.py)."""
    if err.code == 413:               # a body over the limit, as input_guard answers a form's
        from ..input_guard import too_large
        return too_large()
    return error_response(err.code, err.name.lower().replace(" ", "_"), err.description)


def body():
    """The JSON request body as a dict, held to app.input_guard's rules (400 for malformed JSON,
    NaN/Infinity or deep nesting; 422 naming the field for NUL or lone-surrogate text)."""
    from flask import request

    from ..input_guard import parse_json
    if not request.is_json:
        raise AppError("the request body must be JSON (Content-Type: application/json)", code="malformed_body")
    data = parse_json(request.get_data(cache=True))
    if not isinstance(data, dict):
        raise AppError("the request body must be a JSON object", code="malformed_body")
    return data


def form_data() -> dict:
    """`data` of a `{"data": {...form fields...}}` body (a task's or an action's form)."""
    data = body().get("data")
    if not isinstance(data, dict):
        raise AppError('the body must be {"data": {...form fields...}}', fields={"data": "must be an object"},
                       code="malformed_body")
    return data


def load(schema, what="the request"):
    """The JSON body (see body()) loaded by the marshmallow `schema`: 422 naming each field that is wrong."""
    try:
        return schema.load(body())
    except ValidationError as err:
        raise InvalidData(f"{what} is not valid", fields=field_messages(err.messages)) from None


def field_messages(found, prefix="") -> dict:
    """marshmallow's nested messages ({"task_ids": {0: ["…"]}}) as {"task_ids.0": "…"}: strings only."""
    flat = {}
    for key, value in (found.items() if isinstance(found, dict) else [("_", found)]):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(field_messages(value, name + "."))
        else:
            flat[name] = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return flat

"""Request-level guards: hostile bytes in the URL, the query string, a JSON body or a posted form are
answered with a 4xx before any view, query or workflow sees them (a 500 is always a bug).

- Path: undecodable %-escapes (e.g. %ED%A0%80, a UTF-8-encoded lone surrogate), U+FFFD (what the
  WSGI layer makes of them) or NUL -> 404: no such resource can exist.
- Query string: the same -> 400 (werkzeug would keep the escape as literal text, or pass NUL on).
- JSON bodies (`parse_json`, used by app.api.errors.body): not UTF-8, NaN/Infinity (also 1e999,
  which Python reads as inf), integers too long to convert, or nesting deeper than MAX_DEPTH -> 400;
  a NUL/lone-surrogate string anywhere -> 422 naming the field.
- Form posts: a body over the limit of its address (MAX_CONTENT_LENGTH; EVIDENCE_MAX_BYTES + a margin where files
  are taken) -> 413 on every page; NUL or a lone surrogate in a field -> 422 on a plain error page, except on the
  pages that report it beside the field themselves (FIELD_CHECKED_ENDPOINTS).
Under /api/ the answers have the API's error shape, under /my/ they are the customer's own page in their language."""
import json
from urllib.parse import unquote_to_bytes

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from .errors import AppError, InvalidData
from .input_rules import BAD_TEXT, bad_text, depth, find_problems

MAX_DEPTH = 32
UPLOAD_FORM_MARGIN = 1024 * 1024   # an upload page reads its file(s) up to EVIDENCE_MAX_BYTES plus its other fields
MAX_INT = 2 ** 31 - 1          # the largest id any INTEGER column (SQLite and PostgreSQL) holds
# Pages whose forms validate every posted text field themselves and answer 422 beside the field:
# the task form (app.forms.field_errors) and the intake form (complaints.ComplaintIn).
FIELD_CHECKED_ENDPOINTS = {"tasks.task", "complaints.register"}


class MalformedBody(AppError):
    code = "malformed_body"


# ---- JSON bodies ------------------------------------------------------------------------------------------
def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text):
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large")
    return number


def parse_json(raw: bytes):
    """The JSON value of a request body, held to the rules above."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("the request body is not UTF-8 text")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise MalformedBody(f"the JSON nests deeper than {MAX_DEPTH} levels")
    except ValueError as exc:        # JSONDecodeError, NaN/Infinity, too many digits for an int
        raise MalformedBody(f"the request body is not valid JSON: {exc}")
    if depth(value) > MAX_DEPTH:
        raise MalformedBody(f"the JSON nests deeper than {MAX_DEPTH} levels")
    problems = find_problems(value)
    if problems:
        raise InvalidData("text fields may not contain NUL characters or unpaired surrogates", fields=problems)
    return value


# ---- URL and form -----------------------------------------------------------------------------------------
def path_is_clean(environ) -> bool:
    """PATH_INFO holds the %-decoded bytes as latin-1 (PEP 3333): they must be UTF-8 without NUL."""
    try:
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return "\x00" not in path and "\ufffd" not in path


def query_is_clean(raw: bytes) -> bool:
    for part in raw.split(b"&"):
        try:
            text = unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return False
        if "\x00" in text:
            return False
    return True


def form_problems(form) -> dict:
    """Bad text in a form's names or values (a multipart part whose name werkzeug cannot read has none: it
    is skipped, as werkzeug gives it to no view)."""
    return {name: BAD_TEXT for name, value in form.items(multi=True)
            if (isinstance(name, str) and bad_text(name)) or (isinstance(value, str) and bad_text(value))}


def guard_request():
    if not path_is_clean(request.environ):
        abort(404)
    if not query_is_clean(request.query_string):
        return _refuse(400, "bad_query", "the query string holds NUL characters or bytes that are not UTF-8",
                       "bad_address")
    if getattr(current_app.view_functions.get(request.endpoint), "accepts_uploads", False):
        request.max_content_length = current_app.config["EVIDENCE_MAX_BYTES"] + UPLOAD_FORM_MARGIN
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = request.form                  # read here: a body over the limit is refused on every page
        except RequestEntityTooLarge:
            return too_large()
        problems = form_problems(form) if request.endpoint not in FIELD_CHECKED_ENDPOINTS else None
        if problems:
            return _refuse(422, "invalid_data", "text fields may not contain NUL characters or unpaired "
                           "surrogates", "bad_text", problems)
    return None


def too_large():
    """The answer to a request body over the limit of its address (also for one a view read itself)."""
    return _refuse(413, "too_large", "the request body is larger than this address accepts", "too_large")


def _refuse(status, code, message, reason, fields=None):
    """The API's error shape under /api/, the customer's own page in their language under /my/, else the staff's
    error page; `reason` says which text the pages show (bad_address, bad_text, too_large)."""
    if request.path.startswith("/api/"):
        from .api.errors import error_response
        return error_response(status, code, message, fields)
    from .portal.routes import is_portal_path, problem_outside
    if is_portal_path(request.path):
        return problem_outside(reason, status)
    titles = {"bad_address": _("Characters not allowed"), "bad_text": _("Characters not allowed"),
              "too_large": _("Too large")}
    return render_template("web/error.html", code=status, title=titles[reason], message=_page_message(reason)), status


def _page_message(reason) -> str:
    if reason == "bad_address":
        return _("The address holds characters that are not allowed.")
    if reason == "bad_text":
        return _("The form holds characters that are not allowed. Nothing was saved: go back and correct it.")
    if getattr(current_app.view_functions.get(request.endpoint), "accepts_uploads", False):
        return _("What you sent is too large: at most %(size)s per upload. Nothing was saved.",
                 size=size_text(current_app.config["EVIDENCE_MAX_BYTES"]))
    limit = request.max_content_length or current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is None:
        return _("What you sent is too large. Nothing was saved.")
    return _("What you sent is too large: at most %(size)s at once. Nothing was saved.", size=size_text(limit))


def size_text(size: int) -> str:
    """A size as a person reads it: 5 MB, 1.5 MB, 500 KB, 200 B."""
    for unit, name in ((1024 * 1024, "MB"), (1024, "KB")):
        if size >= unit:
            return f"{size / unit:.1f}".removesuffix(".0") + f" {name}"
    return f"{size} B"


class BoundedIntegerConverter(IntegerConverter):
    """`<int:...>` in every route, bounded to what an INTEGER column holds: a larger id is simply not
    found (404), instead of an overflow in the database driver (500)."""

    def __init__(self, map, fixed_digits=0, min=0, max=MAX_INT):   # noqa: A002 (werkzeug's names)
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max)


def init_app(app):
    """Register the guard first, so it runs before CSRF checks, logins and the language switch; and
    the bounded `int` converter before any blueprint adds its routes."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(guard_request)


def accepts_uploads(view):
    """Mark a view that takes evidence files: its requests may be as large as EVIDENCE_MAX_BYTES (plus the
    form's other fields) instead of MAX_CONTENT_LENGTH (place it below the route's login decorator)."""
    view.accepts_uploads = True
    return view

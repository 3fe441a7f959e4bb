"""The language switch: a link in the top bar, or `?lang=` on any page (not the API). Beside it the
other public bit of every page's frame: /favicon.ico, which browsers ask for where a page names no icon
(the portal, the API reference)."""
from flask import current_app, redirect, request, session

from ...permissions import public
from ...security import cacheable
from ..common import safe_next
from . import bp


@bp.get("/language/<code>")
@public
def switch(code):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")))


@bp.get("/favicon.ico")
@public
@cacheable
def favicon():
    response = current_app.send_static_file("favicon.svg")
    response.cache_control.max_age = 86400
    return response


@bp.before_app_request
def language_from_query():
    """`?lang=en` on any page switches the language for the rest of the session."""
    lang = request.args.get("lang")
    if lang and lang in current_app.config["LANGUAGES"] and not request.path.startswith("/api/"):
        session["lang"] = lang

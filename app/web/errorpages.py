"""The web UI's error pages — 403, 404, and a form whose CSRF token is missing or expired — and
blueprint(), which makes a feature's blueprint that shows them. They are set on each web blueprint,
not on the app, so that the JSON API keeps its own error shape and the customer portal its own pages."""
from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError


def blueprint(name: str, import_name: str) -> Blueprint:
    """A feature's blueprint: its templates in the package's templates/<name>/, and the error pages."""
    bp = Blueprint(name, import_name, template_folder="templates")
    bp.register_error_handler(403, forbidden)
    bp.register_error_handler(404, not_found)
    bp.register_error_handler(CSRFError, csrf_error)
    return bp


def forbidden(err):
    return render_template("web/error.html", code=403, title=_("Not allowed"),
                           message=_description(err) or _("Your role does not allow this page or action.")), 403


def not_found(err):
    return render_template("web/error.html", code=404, title=_("Not found"),
                           message=_description(err) or _("This page does not exist.")), 404


def csrf_error(err):
    return render_template("web/error.html", code=400, title=_("The form has expired"),
                           message=_("The form was missing its security token or it has expired (for example "
                                     "after logging out in another tab). Nothing was saved: go back, reload "
                                     "the page and submit again.")), 400


def _description(err):
    """abort(code, description=...) texts are already translated; werkzeug's defaults are not shown."""
    default = type(err).description
    return err.description if err.description and err.description != default else None

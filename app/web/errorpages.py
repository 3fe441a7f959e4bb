"""The web UI's error pages — 403, 404, and a form whose CSRF token is missing or expired — and
blueprint(), which makes a feature's blueprint that shows them. They are set on each web blueprint,
not on the app, so that the JSON API keeps its own error shape and the customer portal its own pages.
unmatched() answers what no blueprint does (an address no route matches, a method a route does not take):
the app's handler (app/__init__.py) calls it for every path outside /api/, and it answers /my/ with the
portal's own page, the rest with these pages — in the user's language, never werkzeug's English."""
from flask import Blueprint, render_template, request
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


def method_not_allowed(err):
    page = render_template("web/error.html", code=405, title=_("This page does not take this request"),
                           message=_("This address does not work this way (for example, a form sent to a "
                                     "page that only shows, or a page opened that only takes a form). Go "
                                     "back and use the page's links and buttons."))
    return page, 405, {"Allow": ", ".join(sorted(err.valid_methods or ()))}


def unmatched(err):
    """An HTTP error that no blueprint answered: 404, 405 and 413 as pages, the portal's under /my/; the
    rest (e.g. a 400 of input_guard, with its own text) as it was raised."""
    if err.code == 413:                # a body a view read itself (input_guard refuses the forms' first)
        from ..input_guard import too_large
        return too_large()
    if err.code not in (404, 405):
        return err
    # Under /my/ the portal's page for a link that does not work, in the customer's language (imported inside the
    # call: the portal imports the web package, not the other way round).
    from ..portal.routes import is_portal_path, problem_outside
    if is_portal_path(request.path):
        return problem_outside("unknown_link", 404)
    return not_found(err) if err.code == 404 else method_not_allowed(err)


def csrf_error(err):
    return render_template("web/error.html", code=400, title=_("The form has expired"),
                           message=_("The form was missing its security token or it has expired (for example "
                                     "after logging out in another tab). Nothing was saved: go back, reload "
                                     "the page and submit again.")), 400


def _description(err):
    """abort(code, description=...) texts are already translated; werkzeug's defaults are not shown."""
    default = type(err).description
    return err.description if err.description and err.description != default else None

"""The handlers' task-list web UI: server-rendered pages on the same runtime verbs as the JSON API.
auth.py logs people in and out; routes.py holds the pages; formrender.py turns a task's JSON Schema
into form fields and posted strings back into typed data; ui.py has the display helpers."""
from flask import Blueprint, current_app, request, session
from flask_babel import Babel, lazy_gettext as _l
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("web", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def select_locale():
    languages = current_app.config["LANGUAGES"]
    lang = session.get("lang")
    return lang if lang in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app, exempt=()):
    """Wire the UI into the app: CSRF on every form (blueprints in `exempt`, e.g. the Bearer-token
    API, excepted), Flask-Login, Flask-Babel and the blueprint itself."""
    csrf.init_app(app)
    for blueprint in exempt:
        csrf.exempt(blueprint)
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    login_manager.login_message = _l("Please log in to continue.")
    login_manager.login_message_category = "info"
    babel.init_app(app, locale_selector=select_locale)
    from . import auth, case, procedure, routes, ui  # noqa: F401  (routes register on import)
    ui.init_app(app)
    app.register_blueprint(bp)


@bp.before_app_request
def language_from_query():
    """`?lang=en` on any page switches the language for the rest of the session."""
    lang = request.args.get("lang")
    if lang and lang in current_app.config["LANGUAGES"] and not request.path.startswith("/api/"):
        session["lang"] = lang

"""The handlers' web UI: server-rendered pages on the same runtime verbs as the JSON API, one blueprint
per feature, each a folder with its routes and templates/<name>/ — auth (log in and out, the one-time
code), sso (single sign-on), account (one's password and second factor, reset links), admin (users and
roles), jobs (one's background jobs: progress, results, downloads), tasks (my
work, a task), complaints (register, search, a complaint, its case file), evidence (files and notes
of a case), notifications (what a handler is told, the digest), procedure (diagram, versions,
traceability, changes), analysis (the analysis page, its drill-down, exports and stored reports) and
language (the switch). Beside them, importing none of them: common.py (route
helpers), errorpages.py (the error pages and the blueprint factory), timeline.py (audit events as shown),
ui.py (display helpers), formrender.py (JSON Schema forms) and diagram.py (BPMN XML for the pages); the
shared templates (base, macros, form, diagram, error) are in app/templates/web/."""
from flask import current_app, session
from flask_babel import Babel, lazy_gettext as _l
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def select_locale():
    languages = current_app.config["LANGUAGES"]
    lang = session.get("lang")
    return lang if lang in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app, exempt=()):
    """Wire the UI into the app: CSRF on every form (blueprints in `exempt`, e.g. the Bearer-token
    API, excepted), Flask-Login, Flask-Babel, the display helpers and the blueprints."""
    csrf.init_app(app)
    for blueprint in exempt:
        csrf.exempt(blueprint)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to continue.")
    login_manager.login_message_category = "info"
    babel.init_app(app, locale_selector=select_locale)
    from . import (account, admin, analysis, auth, complaints, evidence, formrender_codes, health, jobs, language,
                   notifications, procedure, sso, tasks, team, ui)
    ui.init_app(app)
    app.add_template_global(formrender_codes.label, "vocab_label")     # coded values' labels in every page
    for feature in (auth, sso, account, admin, tasks, notifications, team, complaints, evidence, procedure, analysis,
                    jobs, language, health):
        app.register_blueprint(feature.bp)

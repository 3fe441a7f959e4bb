"""A logged-in session, however the user proved who they are (a password, a second factor, the insurer's
single sign-on): the user object Flask-Login keeps, and the start and end of a session."""
from flask import current_app, g, session
from flask_login import UserMixin, login_user, logout_user

from ..models import User


class LoginUser(UserMixin):
    """The logged-in user as Flask-Login wants it; `.user` is the model the runtime verbs take."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self):
        return str(self.user.id)

    @property
    def is_active(self):
        return bool(self.user.active)

    def __getattr__(self, name):           # username, display_name, roles, ... for templates
        return getattr(self.user, name)


def fresh_session():
    """A new session that keeps only the language (no session fixation); the CSRF token that
    Flask-WTF cached for this request belonged to the old one."""
    lang = session.get("lang")
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    if lang:
        session["lang"] = lang


def start(user: User, **marks):
    """Log `user` in on a new session; `marks` are kept in it (e.g. how they logged in)."""
    fresh_session()
    session.permanent = True
    session.update(marks)
    login_user(LoginUser(user))


def end():
    logout_user()
    fresh_session()

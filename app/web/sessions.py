"""A logged-in session, however the user proved who they are (a password, a second factor, the insurer's
single sign-on): the user object Flask-Login keeps, and the start and end of a session."""
from datetime import datetime, timedelta

from flask import current_app, g, session
from flask_login import UserMixin, login_user, logout_user

from ..accounts import session_mark
from ..extensions import db
from ..models import User
from ..timeutil import utcnow


class LoginUser(UserMixin):
    """The logged-in user as Flask-Login wants it; `.user` is the model the runtime verbs take."""

    def __init__(self, user: User):
        self.user = user
        self.username = user.username     # kept: a commit expires `user`, and the logs must not load it again

    def get_id(self):
        """The user's id and a mark of their password: a new password ends the other sessions."""
        return f"{self.user.id}:{session_mark(self.user)}"

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


def user_of(session_id: str):
    """The active user a session's id names, if their password is still the one it was started with."""
    number, _, mark = (session_id or "").partition(":")
    user = db.session.get(User, int(number)) if number.isdigit() and len(number) < 19 else None
    if user is None or not user.active or mark != session_mark(user):
        return None
    return LoginUser(user)


# Set by the logout (auth.logout) when the session had begun with single sign-on, to the login's ID token if
# it was kept (else True): the sso blueprint's /logout/sso then sends the browser on to the provider's logout
# (only right after it, never by a bare link).
ENDED_SSO = "ended_sso"
# A single sign-on session's ID token (set by the sso blueprint at the login when short enough to keep).
SSO_ID_TOKEN = "sso_id_token"


def end() -> dict:
    """Log out; returns what the ended session held (e.g. its login_method)."""
    ended = dict(session)
    logout_user()
    fresh_session()
    return ended


# A password login waiting for its second factor: the user's id and password mark, and when and where to.
HELD = "held_login"
HOLD_FOR = timedelta(minutes=5)


def hold(user: User, target: str):
    """Start a fresh, not yet logged-in session that waits for `user`'s one-time code."""
    fresh_session()
    session[HELD] = {"user": user.id, "mark": session_mark(user), "at": utcnow().isoformat(), "next": target}


def held():
    """(user, target) of the login waiting for its code, or (None, None) when none or it waited too long."""
    waiting = session.get(HELD)
    if not isinstance(waiting, dict):
        return None, None
    try:
        fresh = datetime.fromisoformat(waiting["at"]) + HOLD_FOR > utcnow()
        user = db.session.get(User, int(waiting["user"]))
    except (KeyError, TypeError, ValueError):
        return None, None
    if not fresh or user is None or not user.active or session_mark(user) != waiting.get("mark"):
        return None, None
    return user, waiting.get("next")


def release():
    session.pop(HELD, None)

"""Log in and out. Passwords are checked with User.check_password; after LOGIN_MAX_ATTEMPTS wrong
passwords in a row the account is locked for LOGIN_LOCK_MINUTES (audited)."""
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy import select, update

from .. import audit
from ..extensions import db
from ..models import User
from ..timeutil import utcnow
from . import bp, login_manager
from .ui import fmt_datetime


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


@login_manager.user_loader
def load_user(user_id):
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return LoginUser(user) if user is not None and user.active else None


def safe_next(target, default=None):
    """Only a path on this site: never redirect to another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return default or url_for("web.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("web.home"))
    error, status = None, 200
    username = (request.form.get("username") or "").strip()
    if request.method == "POST":
        error, status = _attempt(username, request.form.get("password") or "")
        if error is None:
            return redirect(safe_next(request.args.get("next")))
    return render_template("web/login.html", error=error, username=username,
                           max_attempts=current_app.config["LOGIN_MAX_ATTEMPTS"],
                           lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"]), status


def _fresh_session():
    """A new session that keeps only the language (no session fixation); the CSRF token that
    Flask-WTF cached for this request belonged to the old one."""
    lang = session.get("lang")
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    if lang:
        session["lang"] = lang


def _attempt(username, password):
    """(None, 200) and the user logged in, or (message, status)."""
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none() \
        if username else None
    now = utcnow()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return _locked_message(user), 429
    if user is not None and user.active and password and user.check_password(password):
        user.failed_logins, user.locked_until = 0, None
        db.session.commit()
        _fresh_session()
        session.permanent = True
        login_user(LoginUser(user))
        return None, 200
    if user is None:
        return _("Wrong username or password."), 401
    # Counted in SQL so two simultaneous wrong guesses both count.
    failures = db.session.execute(update(User).where(User.id == user.id)
                                  .values(failed_logins=User.failed_logins + 1)
                                  .returning(User.failed_logins)).scalar_one()
    if failures >= current_app.config["LOGIN_MAX_ATTEMPTS"]:
        until = now + timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])
        db.session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=until))
        audit.record(db.session, user.username, "account_locked",
                     data={"until": until.isoformat(), "failed_attempts": failures})
        db.session.commit()
        db.session.refresh(user)
        return _locked_message(user), 429
    db.session.commit()
    return _("Wrong username or password."), 401


def _locked_message(user):
    return _("Too many failed attempts: this account is locked until %(time)s. Try again then, or ask an "
             "administrator to unlock it.", time=fmt_datetime(user.locked_until))


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    _fresh_session()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("web.login"))

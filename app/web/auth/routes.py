"""Log in and out. Passwords are checked with User.check_password. Failed logins are limited per
address and per submitted username (app/login_limits.py): after LOGIN_MAX_ATTEMPTS wrong passwords
the username is locked for LOGIN_LOCK_MINUTES (for an existing account: User.locked_until, audited,
and its API tokens refused meanwhile). Unknown usernames take the same path, including a password
hash check, and get the same answers at the same attempt, so the login never tells who has an account."""
import secrets
from functools import cache

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ... import audit, login_limits
from ...extensions import db
from ...models import User
from ...permissions import any_role, public
from ...timeutil import utcnow
from .. import login_manager, sessions
from ..common import safe_next
from ..ui import fmt_datetime
from . import bp


@login_manager.user_loader
def load_user(user_id):
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return sessions.LoginUser(user) if user is not None and user.active else None


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("tasks.home"))
    error, status = None, 200
    username = (request.form.get("username") or "").strip()
    if request.method == "POST":
        error, status = _attempt(username, request.form.get("password") or "")
        if error is None:
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", error=error, username=username,
                           max_attempts=current_app.config["LOGIN_MAX_ATTEMPTS"],
                           lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"]), status


def _attempt(username, password):
    """(None, 200) and the user logged in, or (message, status)."""
    limits = login_limits.Limits.from_config(current_app.config)
    address, now = request.remote_addr, utcnow()
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none() \
        if username else None
    refused = login_limits.refusal(db.session, limits, address, username, now) or _account_lock(user, now)
    if refused is not None:                  # even the right password is refused meanwhile
        return _refusal_message(refused), 429
    if _password_matches(user, password) and user.active:
        login_limits.record_success(db.session, username)
        user.failed_logins, user.locked_until = 0, None
        db.session.commit()
        sessions.start(user)
        return None, 200
    refusals = login_limits.record_failure(db.session, limits, address, username, now)
    if user is not None:
        _note_failure(user, refusals)
    db.session.commit()
    if refusals:
        return _refusal_message(refusals[0]), 429
    return _("Wrong username or password."), 401


@cache
def _dummy_hash() -> str:
    """A hash made the way real passwords are, checked for unknown usernames so that they take as long."""
    return generate_password_hash(secrets.token_hex(16))


def _password_matches(user, password) -> bool:
    stored = user.password_hash if user is not None else _dummy_hash()
    return check_password_hash(stored, password) and user is not None and bool(password)


def _account_lock(user, now):
    """The lock on the account row: set with the username's lock in login_attempt (same end), it also
    holds if those rows were cleared or the row was locked by hand."""
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return login_limits.Refusal("user", user.locked_until)
    return None


def _note_failure(user, refusals):
    """Keep the account's own record: its failure count, and the lock (audited) when one was set."""
    lock = next((r for r in refusals if r.reason == "user"), None)
    if lock is None:
        db.session.execute(update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1))
        return
    db.session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=lock.until))
    audit.record(db.session, user.username, "account_locked",
                 data={"until": lock.until.isoformat(),
                       "failed_attempts": current_app.config["LOGIN_MAX_ATTEMPTS"]})


def _refusal_message(refusal):
    if refusal.reason == "ip":
        return _("Too many failed logins from your network. Try again after %(time)s.",
                 time=fmt_datetime(refusal.until))
    return _("Too many failed attempts: this account is locked until %(time)s. Try again then, or ask an "
             "administrator to unlock it.", time=fmt_datetime(refusal.until))


@bp.post("/logout")
@any_role
@login_required
def logout():
    sessions.end()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))

"""Log in and out. Passwords are checked with User.check_password. Failed logins are limited per
address and per submitted username (app/login_limits.py): after LOGIN_MAX_ATTEMPTS wrong passwords
the username is locked for LOGIN_LOCK_MINUTES (for an existing account: User.locked_until, audited,
and its API tokens refused meanwhile). Unknown usernames take the same path, including a password
hash check, and get the same answers at the same attempt, so the login never tells who has an account."""
from functools import cache

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.security import check_password_hash

from ... import accounts, login_limits, second_factor as second_factor_codes, sso
from ...extensions import db
from ...permissions import any_role, public
from ...timeutil import utcnow
from .. import login_manager, sessions
from ..common import safe_next
from ..ui import fmt_datetime
from . import bp


@login_manager.user_loader
def load_user(session_id):
    return sessions.user_of(session_id)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("tasks.home"))
    error, status = None, 200
    username = (request.form.get("username") or "").strip()
    if request.method == "POST":
        target = safe_next(request.args.get("next"))
        error, status = _attempt(username, request.form.get("password") or "", target)
        if error is None:
            return redirect(target if current_user.is_authenticated else url_for("auth.second_factor"))
    return _login_page(error, status, username)


def _login_page(error, status, username):
    return render_template("auth/login.html", error=error, username=username,
                           max_attempts=current_app.config["LOGIN_MAX_ATTEMPTS"],
                           lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"]), status


def _attempt(username, password, target):
    """(None, 200) and the user logged in (or, with a second factor, waiting for its code), or
    (message, status)."""
    limits = login_limits.Limits.from_config(current_app.config)
    address, now = request.remote_addr, utcnow()
    user = accounts.by_username(db.session, username) if username else None
    refused = login_limits.refusal(db.session, limits, address, username, now) or _account_lock(user, now)
    if refused is not None:                  # even the right password is refused meanwhile
        return _refusal_message(refused), 429
    if _password_matches(user, password) and user.active:
        if user.totp_secret:                 # the failure count stands until the code is right too
            sessions.hold(user, target)
            return None, 200
        _succeed(user, login_method="password")
        return None, 200
    return _fail(limits, address, username, user, now) or (_("Wrong username or password."), 401)


def _succeed(user, **marks):
    accounts.clear_lock(db.session, user)
    db.session.commit()
    sessions.start(user, **marks)


def _fail(limits, address, username, user, now):
    """Count a failed attempt; (message, 429) when it set a lock."""
    refusals = accounts.count_failed_login(db.session, limits, address, username, user, now)
    db.session.commit()
    return (_refusal_message(refusals[0]), 429) if refusals else None


@bp.route("/login/code", methods=["GET", "POST"])
@public
def second_factor():
    """The second step of a password login with a second factor: the code from the authenticator app.
    Wrong codes count as failed logins (the same lock); after HOLD_FOR the password is asked again."""
    user, target = sessions.held()
    if user is None:
        sessions.release()
        flash(_("Log in again: the code was not given within five minutes."), "info")
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("auth/second_factor.html", error=None)
    limits, now = login_limits.Limits.from_config(current_app.config), utcnow()
    refused = login_limits.refusal(db.session, limits, request.remote_addr, user.username, now) \
        or _account_lock(user, now)
    if refused is None and second_factor_codes.use_code(db.session, user, request.form.get("code") or "", now):
        _succeed(user, login_method="password+code")
        return redirect(target or url_for("tasks.home"))
    locked = (_refusal_message(refused), 429) if refused else _fail(limits, request.remote_addr, user.username,
                                                                    user, now)
    if locked:                               # the password is asked again once the lock ends
        sessions.release()
        flash(locked[0], "error")
        return redirect(url_for("auth.login"))
    return render_template("auth/second_factor.html",
                           error=_("Wrong or already used code. Type the code your authenticator app shows now.")), 401


@cache
def _dummy_hash() -> str:
    """A hash made the way real passwords are, checked for unknown usernames so that they take as long."""
    return sso.unusable_password_hash()


def _password_matches(user, password) -> bool:
    stored = user.password_hash if user is not None else _dummy_hash()
    return check_password_hash(stored, password) and user is not None and bool(password)


def _account_lock(user, now):
    """The lock on the account row: set with the username's lock in login_attempt (same end), it also
    holds if those rows were cleared or the row was locked by hand."""
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return login_limits.Refusal("user", user.locked_until)
    return None


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
    ended = sessions.end()
    flash(_("You have been logged out."), "info")
    if ended.get("login_method") == "sso":         # on to the provider's logout, with the login's ID token
        session[sessions.ENDED_SSO] = ended.get(sessions.SSO_ID_TOKEN) or True
        return redirect(url_for("sso.logout"))
    return redirect(url_for("auth.login"))

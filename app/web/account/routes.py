"""One's own account, the reset link's page, and the gate before every other page."""
import secrets

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ... import accounts, audit, login_limits, second_factor as codes
from ...extensions import db
from ...jobs.kinds import starter_roles
from ...passwords import Policy
from ...permissions import public
from ...timeutil import utcnow
from .. import sessions
from ..account_messages import account_message
from ..common import roles_required
from ..ui import has_any, me
from . import bp

SETUP_NONCE = "totp_setup_nonce"          # the session keeps a nonce; the secret is derived (second_factor.py)
# What a user who must first change their password or set up a second factor may still open.
OPEN_MEANWHILE = {"account.page", "account.password", "account.second_factor", "account.second_factor_off",
                  "account.reset", "auth.logout", "auth.login", "static", "language.switch", "language.favicon"}


def _policy() -> Policy:
    return Policy.from_config(current_app.config)


def role_requires_code(user) -> bool:
    return has_any(user, current_app.config["TOTP_REQUIRED_ROLES"])


def needs_second_factor(user) -> bool:
    """A password login of a user whose role requires a second factor, before they set one up."""
    return role_requires_code(user) and not user.totp_secret and session.get("login_method") != "sso"


@bp.before_app_request
def first_things_first():
    if request.blueprint in ("api", "portal", "health") or request.endpoint in OPEN_MEANWHILE \
            or not current_user.is_authenticated:     # (the API's user is its token's: no session user loaded)
        return None
    user = me()
    if user.must_change_password:
        flash(_("Choose a new password before you go on."), "info")
        return redirect(url_for("account.page"))
    if needs_second_factor(user):
        flash(_("Your role requires a second factor: set it up before you go on."), "info")
        return redirect(url_for("account.second_factor"))
    return None


@bp.get("/account")
@roles_required()
def page():
    user = me()
    return render_template("account/page.html", user=user, min_length=_policy().min_length,
                           starts_jobs=has_any(user, starter_roles()),
                           required=role_requires_code(user))


@bp.post("/account/password")
@roles_required()
def password():
    user = me()
    new = request.form.get("new_password") or ""
    if new != (request.form.get("repeat") or ""):
        flash(_("The two new passwords differ. Nothing was changed."), "error")
        return redirect(url_for("account.page"))
    try:
        accounts.change_password(db.session, _policy(), user, request.form.get("current_password") or "", new)
    except accounts.AccountError as err:
        db.session.rollback()
        if err.code == "wrong_password":     # guesses here count towards the login's lock, as at the login
            accounts.count_failed_login(db.session, login_limits.Limits.from_config(current_app.config),
                                        request.remote_addr, user.username, user, utcnow())
            db.session.commit()
        flash(account_message(err) + " " + _("Nothing was changed."), "error")
        return redirect(url_for("account.page"))
    db.session.commit()
    sessions.start(user, login_method=session.get("login_method", "password"))     # the old mark ended
    flash(_("Your password is changed. Your other sessions have ended."), "success")
    return redirect(url_for("account.page"))


@bp.route("/account/second-factor", methods=["GET", "POST"])
@roles_required()
def second_factor():
    """Set up a second factor: a new secret shown as a QR code, taken once a code from it proves the app has
    it. One that is on is replaced only by turning it off first (with one of its codes): a session left open
    must not let someone swap in their own phone."""
    user = me()
    if user.totp_secret:
        flash(_("Your second factor is on. To move it to another phone, turn it off with a code from the old "
                "one first."), "info")
        return redirect(url_for("account.page"))
    nonce = session.get(SETUP_NONCE) or session.setdefault(SETUP_NONCE, secrets.token_urlsafe(16))
    secret = codes.setup_secret(current_app.config["SECRET_KEY"], user.id, nonce)
    error = None
    if request.method == "POST":
        if codes.enable(user, secret, request.form.get("code") or "", utcnow()):
            audit.record(db.session, user.username, "second_factor_enabled", data={"username": user.username})
            db.session.commit()
            session.pop(SETUP_NONCE, None)
            flash(_("The second factor is on: you will be asked for a code at each password login."), "success")
            return redirect(url_for("account.page"))
        error = _("That is not the code the app shows for this account now. Check the phone's clock and try "
                  "again.")
    uri = codes.setup_uri(secret, user.username, current_app.config["TOTP_ISSUER"])
    return render_template("account/second_factor.html", qr=codes.qr_svg(uri), secret=secret, error=error), \
        422 if error else 200


@bp.post("/account/second-factor/off")
@roles_required()
def second_factor_off():
    user = me()
    if role_requires_code(user):
        flash(_("Your role requires a second factor: it cannot be turned off."), "error")
    elif not codes.use_code(db.session, user, request.form.get("code") or "", utcnow()):
        flash(_("Wrong or already used code. Nothing was changed."), "error")
    else:
        codes.disable(user)
        audit.record(db.session, user.username, "second_factor_disabled", data={"username": user.username})
        db.session.commit()
        flash(_("The second factor is off."), "success")
    return redirect(url_for("account.page"))


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public
def reset(token):
    """The page a one-time link opens: set a new password, then log in with it."""
    try:
        user = accounts.link_user(db.session, token)
    except accounts.AccountError as err:
        return render_template("web/error.html", code=404, title=_("Link not valid"),
                               message=account_message(err)), 404
    error = None
    if request.method == "POST":
        new = request.form.get("new_password") or ""
        error = _("The two new passwords differ.") if new != (request.form.get("repeat") or "") \
            else _redeem(token, new)
        if error is None:
            sessions.end()
            flash(_("Your new password is set. Log in with it."), "success")
            return redirect(url_for("auth.login"))
    return render_template("account/reset.html", user=user, error=error, min_length=_policy().min_length), \
        422 if error else 200


def _redeem(token, new):
    """None once the password is set, else why not."""
    try:
        accounts.redeem_link(db.session, _policy(), token, new)
    except accounts.AccountError as err:
        db.session.rollback()
        return account_message(err)
    db.session.commit()
    return None

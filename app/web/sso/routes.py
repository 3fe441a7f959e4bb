"""/login/sso sends the browser to the provider (state, nonce and a PKCE challenge kept in the session by
Authlib); /login/sso/callback exchanges the code, verifies the ID token (signature with the provider's
published keys, issuer, audience, nonce, expiry), reads the userinfo endpoint if the provider has one, and
logs the user in with login_method="sso" (no second factor here: the provider asks for its own). Whatever
goes wrong ends on the login page with a message in the user's language, and nobody logged in.

/logout/sso comes right after such a session's logout here (auth.logout) and sends the browser on to the
provider's end-session endpoint (by a page that refreshes to it: the browser would hold a redirect to the CSP's
form-action), which ends the user's session there too and sends them back to the login
page. A provider without one, or one that cannot be reached, leaves the user logged out here with a word
that the provider's session is still open."""
import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext as _
from flask_login import current_user
from joserfc.errors import JoseError

from ... import sso
from ...extensions import db
from ...permissions import public
from .. import sessions
from ..common import safe_next
from . import bp, provider

NEXT = "sso_next"              # session: where to go after the login
# The login's ID token is kept in the session (sessions.SSO_ID_TOKEN) as the hint of the logout, only when
# short enough for the session cookie (4 KB in all; a token with many claims can take 3). Without it the
# provider may ask the user to confirm the logout, and some providers (e.g. Okta) refuse one without the hint.
ID_TOKEN_MAX = 2000
# What a provider that is down, slow or answering nonsense raises through Authlib and requests.
UNREACHABLE = (requests.RequestException, ValueError, KeyError, RuntimeError)


@bp.app_context_processor
def login_button():
    return {"sso_button": button_label}


def button_label():
    """The login page's SSO button text, or None when single sign-on is off."""
    config = sso.settings(current_app.config)
    return (config.button_label or _("Sign in with company SSO")) if config else None


@bp.get("/login/sso")
@public
def start():
    if current_user.is_authenticated:
        return redirect(url_for("tasks.home"))
    config = sso.settings(current_app.config)
    if config is None:
        return _back(_("Single sign-on is not set up here: log in with your username and password."))
    try:
        remote = provider.client(config)
        _drop_half_done()                  # one sign-in at a time: the cookie does not grow with each click
        session[NEXT] = safe_next(request.args.get("next"))
        return remote.authorize_redirect(config.redirect_uri or url_for("sso.callback", _external=True),
                                         ui_locales=str(get_locale() or "").replace("_", "-"))
    except provider.IssuerMismatch as err:
        return _misconfigured(err)
    except UNREACHABLE as err:
        return _unreachable(err)


@bp.get("/login/sso/callback")
@public
def callback():
    config = sso.settings(current_app.config)
    if config is None:
        return _back(_("Single sign-on is not set up here: log in with your username and password."))
    target = session.get(NEXT)
    try:
        claims, userinfo, id_token = _verified_login(config)
    except MismatchingStateError:
        return _back(_("This sign-in has expired or was already used. Start again with the company SSO button."))
    except OAuthError as err:
        current_app.logger.warning("single sign-on: the provider answered %s", (err.error or "?")[:64])
        if err.error == "access_denied":
            return _back(_("The sign-in was cancelled or refused at the company sign-in service, so you are not "
                           "logged in."))
        return _back(_("The company sign-in service did not complete the sign-in (%(error)s). Start again.",
                       error=(err.error or "?")[:64]))
    except (JoseError, MissingIdToken) as err:
        current_app.logger.warning("single sign-on: an ID token was refused (%s)", type(err).__name__)
        return _back(_("The answer of the company sign-in service could not be verified, so nobody was logged "
                       "in. Ask an administrator if this happens again."))
    except provider.IssuerMismatch as err:
        return _misconfigured(err)
    except UNREACHABLE as err:
        return _unreachable(err)
    try:
        user = sso.sign_in(db.session, config, claims, userinfo)
    except sso.Refused as refusal:
        return _back(_refusal_message(refusal))
    kept = {sessions.SSO_ID_TOKEN: id_token} if len(id_token) <= ID_TOKEN_MAX else {}
    sessions.start(user, login_method="sso", **kept)
    return redirect(target or url_for("tasks.home"))


@bp.get("/logout/sso")
@public
def logout():
    ended = session.pop(sessions.ENDED_SSO, None)
    if not ended or current_user.is_authenticated:
        return redirect(url_for("auth.login"))         # only right after a single sign-on session's logout
    config = sso.settings(current_app.config)
    if config is None or not config.logout_at_provider:
        return redirect(url_for("auth.login"))
    back_to = config.post_logout_redirect_uri or url_for("auth.login", _external=True)
    try:
        to = provider.logout_url(config, back_to, str(get_locale() or "").replace("_", "-"),
                                 ended if isinstance(ended, str) else None)
    except (provider.IssuerMismatch, *UNREACHABLE) as err:
        current_app.logger.warning("single sign-on: the provider's logout cannot be reached (%s)", type(err).__name__)
        to = None
    if to is None:
        flash(_("You may still be signed in at the company sign-in service. On a shared computer, log out there "
                "too."), "info")
        return redirect(url_for("auth.login"))
    return render_template("sso/leaving.html", to=to)      # not a redirect: see the template


class MissingIdToken(Exception):
    """The token endpoint answered without an ID token (the scope had openid: the provider must send one)."""


def _verified_login(config):
    """(the ID token's verified claims, the userinfo endpoint's answer or None, the ID token itself)."""
    remote = provider.client(config)
    token = remote.authorize_access_token(claims_options=provider.claims_options(config))
    if not token.get("userinfo"):
        raise MissingIdToken()
    userinfo = remote.userinfo(token=token) if remote.server_metadata.get("userinfo_endpoint") else None
    return dict(token["userinfo"]), (dict(userinfo) if userinfo is not None else None), token["id_token"]


def _refusal_message(refusal):
    messages = {
        "no_username": _("The company sign-in service sent no usable username for you, so you cannot log in "
                         "here. Ask an administrator."),
        "no_role": _("Your company account is in no group that gives a role in this application, so you cannot "
                     "log in here. Ask an administrator to add you to the right group."),
        "inactive": _("Your account here is disabled. Ask an administrator."),
        "username_taken": _("An account named %(username)s exists here already and is not linked to the company "
                            "sign-in, so it cannot be used for you. Ask an administrator.",
                            username=refusal.username or ""),
        "subject_mismatch": _("The answer of the company sign-in service could not be verified, so nobody was "
                              "logged in. Ask an administrator if this happens again."),
    }
    return messages[refusal.reason]


def _unreachable(err):
    current_app.logger.warning("single sign-on: the provider cannot be reached (%s)", type(err).__name__)
    return _back(_("The company sign-in service cannot be reached just now. Try again in a few minutes, or ask "
                   "an administrator."))


def _misconfigured(err):
    current_app.logger.error("single sign-on: %s", err)
    return _back(_("Single sign-on is not set up correctly here. Ask an administrator."))


def _back(message):
    """To the login page with `message`, the session's half-done sign-ins dropped."""
    _drop_half_done()
    flash(message, "error")
    return redirect(url_for("auth.login"))


def _drop_half_done():
    for key in [key for key in session if key.startswith(f"_state_{provider.NAME}_") or key == NEXT]:
        session.pop(key)

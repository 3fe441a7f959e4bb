"""CSRF protection of the customer's pages, on the portal's own cookie instead of the staff session.

Flask-WTF keeps its secret in Flask's `session` cookie, the one staff log in with; using it here would
give every customer a staff-style session and let portal pages write into a logged-in handler's one.
So the blueprint is exempt from the global CSRFProtect and checked here instead: the token in a portal
form is an HMAC, with the app's secret, of a random nonce kept in the signed `portal` cookie (access.py).
A device without a portal cookie has no token, so every POST it makes is refused. A refusal raises
Flask-WTF's CSRFError, which the blueprint's handler turns into the 'form_expired' page."""
import hashlib
import hmac

from flask import current_app, g, request
from flask_wtf.csrf import CSRFError
from itsdangerous.encoding import want_bytes

from ..web import csrf as staff_csrf
from . import access, bp

FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

staff_csrf.exempt(bp)            # Flask-WTF's check would read (and its token write) the staff session


def token() -> str:
    """The token a portal form carries; "" for a device without a portal cookie."""
    nonce = access.nonce()
    if nonce is None:
        return ""
    return hmac.new(want_bytes(current_app.secret_key), f"portal-csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


@bp.before_request
def check_token():
    """Every request that may change something carries this device's token in its form."""
    if request.method in SAFE_METHODS:
        return
    expected, sent = token(), request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CSRFError("The portal form's token is missing or does not match this device.")


@bp.context_processor
def token_in_templates():
    """`csrf_token()` in the portal's templates is this token, not Flask-WTF's (which would write the session)."""
    return {"csrf_token": token}


@bp.after_request
def store_new_nonce(response):
    """A nonce made on this request for a cookie that had none goes into the cookie, so the form just
    shown can be sent; unless the response already writes or clears the cookie itself."""
    written = any(header.startswith(f"{access.COOKIE}=") for header in response.headers.getlist("Set-Cookie"))
    if "portal_nonce" in g and not written:
        access.set_cookie(response)
    return response

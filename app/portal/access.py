"""Who is looking at the portal, from its own cookie alone: never the staff session or Flask-Login.

The cookie `portal` (Path=/my, HttpOnly, SameSite=Lax, Secure like the session cookie) holds a value
signed with the app's secret (itsdangerous): the id of the link the customer came by, the language
they chose and the nonce the portal's CSRF tokens are made from (csrf.py). The link is looked up again
on every request, so an expired link closes the page even while the cookie lasts. Bad links are counted
per client address in the database (login_limits' table), so that guessing tokens is refused on every
worker alike."""
import secrets
from datetime import timedelta
from typing import NamedTuple, Optional

from flask import current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import login_limits
from ..extensions import db
from ..models import Complaint, PortalLink
from ..timeutil import utcnow

COOKIE = "portal"
COOKIE_PATH = "/my"
SALT = "customer-portal"
LANGUAGES = {"zh": "zh_Hans_CN", "en": "en"}       # the complaint's language code -> Babel locale


class Visit(NamedTuple):
    """The customer's link and complaint, or why there are none: "ok", "none" (no cookie),
    "bad" (a cookie not signed by us, or too old) or "expired" (the link has expired)."""
    state: str
    link: Optional[PortalLink] = None
    complaint: Optional[Complaint] = None


def _serializer():
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def _cookie_seconds() -> int:
    return int(current_app.config.get("PORTAL_COOKIE_HOURS", 12)) * 3600


def cookie_value() -> Optional[dict]:
    """The signed cookie's content; {} when there is none, None when it is forged or too old."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        value = _serializer().loads(raw, max_age=_cookie_seconds())
    except BadSignature:              # also SignatureExpired
        return None
    return value if isinstance(value, dict) else None


def visit() -> Visit:
    """Once per request: the link of the cookie, looked up again."""
    if "portal_visit" not in g:
        g.portal_visit = _visit()
    return g.portal_visit


def _visit() -> Visit:
    value = cookie_value()
    if value is None:
        return Visit("bad")
    link_id = value.get("link")
    if not isinstance(link_id, int):
        return Visit("none")
    link = db.session.get(PortalLink, link_id)
    if link is None:
        return Visit("bad")
    complaint = db.session.get(Complaint, link.complaint_id)
    if link.expires_at <= utcnow():
        return Visit("expired", link, complaint)
    return Visit("ok", link, complaint)


def language(complaint: Optional[Complaint] = None) -> str:
    """"zh" or "en": the customer's choice on this device, else their complaint's language, else Chinese."""
    chosen = (cookie_value() or {}).get("lang")
    if chosen in LANGUAGES:
        return chosen
    complaint = complaint or visit().complaint
    if complaint is not None and complaint.language in LANGUAGES:
        return complaint.language
    return "zh"


def locale(complaint: Optional[Complaint] = None) -> str:
    return LANGUAGES[language(complaint)]


def nonce() -> Optional[str]:
    """This device's CSRF nonce: the cookie's; for a valid cookie written before nonces existed, one made
    now (kept for the request; csrf.py writes it into the cookie); None without a link in the cookie."""
    current = cookie_value() or {}
    if isinstance(current.get("nonce"), str):
        return current["nonce"]
    if current.get("link") is None:
        return None
    if "portal_nonce" not in g:
        g.portal_nonce = secrets.token_urlsafe(16)
    return g.portal_nonce


def set_cookie(response, link_id=None, lang=None):
    """(Re)write the cookie: the link (kept from the current cookie when not given), the language and the
    CSRF nonce, kept as long as the cookie is, so forms already on the customer's screen stay valid."""
    current = cookie_value() or {}
    value = {"link": link_id if link_id is not None else current.get("link"),
             "lang": lang or current.get("lang"),
             "nonce": nonce() or secrets.token_urlsafe(16)}
    response.set_cookie(COOKIE, _serializer().dumps({k: v for k, v in value.items() if v is not None}),
                        path=COOKIE_PATH, httponly=True, samesite="Lax",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def clear_cookie(response):
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Lax",
                           secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


class StaffSessionOnly(SecureCookieSessionInterface):
    """Flask's session cookie, the one staff log in with, except that no portal response writes it: the
    portal neither changes a staff session nor keeps it alive (a permanent session is otherwise re-sent
    with a new expiry on every request, /my/ included)."""

    def save_session(self, app, session, response):
        if request.blueprint == "portal":
            return None
        return super().save_session(app, session, response)


# ---- bad links, counted per client address ---------------------------------------------------------------
def _limit():
    config = current_app.config
    return (int(config.get("PORTAL_BAD_LINK_MAX", 20)),
            timedelta(minutes=int(config.get("PORTAL_BAD_LINK_WINDOW_MINUTES", 15))))


def _address_key() -> str:
    return f"portal:{request.remote_addr or 'unknown'}"[:login_limits.KEY_LENGTH]


def refused_until():
    """When this address may try links again, or None while it is under the limit."""
    most, window = _limit()
    return login_limits._over_limit(db.session, _address_key(), most, window, utcnow())


def count_bad_link():
    """One more bad link from this address (committed at once, even though nothing else changes)."""
    now = utcnow()
    login_limits._add(db.session, _address_key(), login_limits._bucket(now))
    db.session.commit()

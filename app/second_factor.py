"""The optional second factor (no Flask): a time-based one-time code (TOTP, RFC 6238) from an authenticator
app, with pyotp. A code is good within one 30-second step either side of now and only once: the step of the
last code used is kept on the user (`totp_last_counter`) and claimed by a conditional UPDATE, so a code seen
over a shoulder or replayed by two requests at once is refused. The secret is set on the user only once a code
from it was given, so a half-finished setup never locks anyone out."""
import base64
import hashlib
import hmac
from datetime import datetime
from io import BytesIO

import pyotp
import segno
from sqlalchemy import or_, update

from .models import User

WINDOW = 1                       # steps either side of now that a code may come from (clock drift)
DIGITS = 6


def new_secret() -> str:
    return pyotp.random_base32()


def setup_secret(key: str, user_id: int, nonce: str) -> str:
    """The secret a setup offers, derived from the app's key, the user and a nonce kept in their session: the
    session cookie (signed, not encrypted) carries only the nonce, so no copy of it reveals the secret."""
    digest = hmac.new(key.encode(), f"totp-setup:{user_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode()


def setup_uri(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as inline SVG markup (no script, no external image)."""
    out = BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, xmldecl=False, svgns=True, nl=False)
    return out.getvalue().decode()


def matching_step(secret: str, code: str, now: datetime):
    """The time step whose code is `code` (within WINDOW of now), or None."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def use_code(session, user: User, code: str, now: datetime) -> bool:
    """True, and the code's step claimed, when `code` is right for the user's secret and newer than the
    last code they used."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None:
        return False
    claimed = session.execute(
        update(User).where(User.id == user.id,
                           or_(User.totp_last_counter.is_(None), User.totp_last_counter < step))
        .values(totp_last_counter=step).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        return False
    user.totp_last_counter = step
    return True


def enable(user: User, secret: str, code: str, now: datetime) -> bool:
    """Set `secret` as the user's second factor when `code` is a code of it."""
    step = matching_step(secret, code, now)
    if step is None:
        return False
    user.totp_secret, user.totp_last_counter = secret, step
    return True


def disable(user: User) -> None:
    user.totp_secret, user.totp_last_counter = None, None

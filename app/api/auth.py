"""Bearer API tokens: a random token shown once, stored as its SHA-256. A token stops working when it
expires or is revoked, when its user is deactivated, and while its user's account is locked."""
import hashlib
import secrets
from datetime import timedelta
from functools import wraps

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from .. import logs
from ..errors import Forbidden, Unauthorized
from ..extensions import db
from ..models import ApiToken
from ..permissions import allow
from ..timeutil import utcnow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user, days: int, name="", commit=True) -> str:
    """A new API token of `user`, valid `days`; only its hash is stored. `commit=False`: the caller commits."""
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name,
                            expires_at=utcnow() + timedelta(days=days)))
    if commit:
        db.session.commit()
    return token


# The token and its user in one query, built once (it runs on every API request).
TOKEN_WITH_USER = select(ApiToken).options(joinedload(ApiToken.user)) \
    .where(ApiToken.token_hash == bindparam("token_hash"))


def current_api_user():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing Bearer token", code="token_missing")
    row = db.session.execute(TOKEN_WITH_USER, {"token_hash": hash_token(token.strip())}).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked token", code="token_invalid")
    if row.expires_at <= utcnow():
        raise Unauthorized("the token has expired", code="token_expired")
    if not row.user.active:
        raise Unauthorized("the user is deactivated", code="user_inactive")
    # Too many wrong passwords locked the account: its tokens wait for the lock to end as well.
    if row.user.locked_until is not None and row.user.locked_until > utcnow():
        raise Unauthorized(f"the account is locked until {row.user.locked_until.isoformat()}",
                           code="account_locked")
    return row.user


def require(*roles):
    """Authenticate the caller; with roles, require at least one of them."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            g.user = current_api_user()
            logs.note_user(g.user.username)
            if roles and not (g.user.roles & set(roles)):
                raise Forbidden(f"requires one of the roles: {', '.join(roles)}", code="wrong_role")
            return view(*args, **kwargs)
        return allow(wrapper, roles)
    return decorator

"""Links to a customer's own complaint page. Each message carries one: a token derived from the
message's key with the link secret (secret(); so a retried send carries the same link without the
token ever being stored), of which only the SHA-256 is kept, with an expiry."""
import hashlib
import hmac
from datetime import timedelta
from typing import Optional

from sqlalchemy import select

from .models import Complaint, OutboxMessage, PortalLink
from .timeutil import utcnow

# What a rendered message holds where its link goes; the sender puts the real link in.
LINK_MARK = "{{portal_link}}"


def secret(config) -> str:
    """The key link tokens are made with: PORTAL_LINK_SECRET, so that SECRET_KEY (the session key) can be
    rotated without killing every link customers hold; SECRET_KEY when it is unset, as links were made
    before the setting existed."""
    return config.get("PORTAL_LINK_SECRET") or config["SECRET_KEY"]


def token_for(secret: str, key: str) -> str:
    """The link token of the message with idempotency key `key` (48 hex digits: 192 bits)."""
    digest = hmac.new(secret.encode(), f"portal-link:{key}".encode(), hashlib.sha256).hexdigest()
    return digest[:48]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record(session, secret: str, complaint: Complaint, message: OutboxMessage, days: int) -> PortalLink:
    """Store the hash of `message`'s link (its key must be set), valid for `days`."""
    link = PortalLink(token_hash=token_hash(token_for(secret, message.key)), complaint=complaint,
                      message=message, expires_at=utcnow() + timedelta(days=days))
    session.add(link)
    return link


def url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/my/{token}"


def find(session, token: str) -> tuple[Optional[PortalLink], str]:
    """(link, "ok") for a valid token; (None, "unknown") or (link, "expired") otherwise."""
    if not token or len(token) > 128:
        return None, "unknown"
    link = session.execute(select(PortalLink).where(PortalLink.token_hash == token_hash(token))).scalar_one_or_none()
    if link is None:
        return None, "unknown"
    if link.expires_at <= utcnow():
        return link, "expired"
    return link, "ok"

"""Login rate limits kept in the `login_attempt` table, so every gunicorn worker and every host shares
one count (an in-memory limiter lets each worker count on its own).

Failures are counted per key (`ip:<address>`, `user:<submitted username>`) in one-minute buckets: an
UPSERT adds one to the current bucket, and the count over a window is the sum of its buckets, which
avoids the 2 × limit burst a single fixed window allows across its boundary. A username lock is a row
`lock:<username>` whose window_start is the moment it was locked. Nothing here knows whether a username
exists, so known and unknown names are limited, locked and answered alike."""
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import delete, select

from .extensions import upsert_insert
from .models import LoginAttempt

KEY_LENGTH = 200


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused and until when: `reason` is "ip" (too many failures from the address)
    or "user" (the username is locked)."""
    reason: str
    until: datetime


@dataclass(frozen=True)
class Limits:
    max_attempts: int
    attempt_window: timedelta
    lock: timedelta
    ip_max_attempts: int
    ip_window: timedelta

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(config["LOGIN_MAX_ATTEMPTS"], timedelta(minutes=config["LOGIN_ATTEMPT_WINDOW_MINUTES"]),
                   timedelta(minutes=config["LOGIN_LOCK_MINUTES"]), config["LOGIN_IP_MAX_ATTEMPTS"],
                   timedelta(minutes=config["LOGIN_IP_WINDOW_MINUTES"]))

    @property
    def longest(self) -> timedelta:
        return max(self.attempt_window, self.lock, self.ip_window)


def _key(kind: str, value: str) -> str:
    # Usernames compare case-insensitively here, so "Alice" and "ALICE" share one count.
    return f"{kind}:{value.lower()}"[:KEY_LENGTH]


def ip_key(address) -> str:
    return _key("ip", address or "unknown")


def user_key(username: str) -> str:
    return _key("user", username)


def lock_key(username: str) -> str:
    return _key("lock", username)


def refusal(session, limits: Limits, address, username, now) -> Optional[Refusal]:
    """A refusal if the address is over its limit or the username is locked, before any password check."""
    until = _over_limit(session, ip_key(address), limits.ip_max_attempts, limits.ip_window, now)
    if until is not None:
        return Refusal("ip", until)
    locked_at = session.execute(select(LoginAttempt.window_start)
                                .where(LoginAttempt.key == lock_key(username),
                                       LoginAttempt.window_start > now - limits.lock)
                                .order_by(LoginAttempt.window_start.desc()).limit(1)).scalar()
    return Refusal("user", locked_at + limits.lock) if locked_at is not None else None


def record_failure(session, limits: Limits, address, username, now) -> list[Refusal]:
    """Count one failed login. Returns the refusals it brought about, the address's first: the
    username reaching its limit is locked here (and its failure count starts again). The caller commits."""
    bucket = _bucket(now)
    for key in (ip_key(address), user_key(username)):
        _add(session, key, bucket)
    found = []
    until = _over_limit(session, ip_key(address), limits.ip_max_attempts, limits.ip_window, now)
    if until is not None:
        found.append(Refusal("ip", until))
    if _count(session, user_key(username), now - limits.attempt_window) >= limits.max_attempts:
        session.execute(delete(LoginAttempt).where(LoginAttempt.key == user_key(username)))
        _add(session, lock_key(username), now)
        found.append(Refusal("user", now + limits.lock))
    return found


def record_success(session, username) -> None:
    """A correct password ends the run of failures for the username (not for the address)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.key.in_([user_key(username), lock_key(username)])))


def purge(session, limits: Limits, now) -> int:
    """Forget every bucket and lock older than the longest window; returns how many rows went."""
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.window_start < now - limits.longest))
    session.commit()
    return result.rowcount


def _bucket(now: datetime) -> datetime:
    """The start of the one-minute bucket `now` falls in."""
    return now.replace(second=0, microsecond=0)


def _add(session, key, window_start) -> None:
    """One more in (key, window_start), atomically: concurrent requests on any worker all count."""
    statement = upsert_insert(session.get_bind())(LoginAttempt).values(key=key, window_start=window_start, n=1)
    session.execute(statement.on_conflict_do_update(index_elements=["key", "window_start"],
                                                    set_={"n": LoginAttempt.n + 1}))


def _count(session, key, since) -> int:
    return sum(n for _start, n in _buckets(session, key, since))


def _buckets(session, key, since):
    return session.execute(select(LoginAttempt.window_start, LoginAttempt.n)
                           .where(LoginAttempt.key == key, LoginAttempt.window_start > since)
                           .order_by(LoginAttempt.window_start)).all()


def _over_limit(session, key, limit, window, now) -> Optional[datetime]:
    """None while the key's failures in the window stay under `limit`; else when enough of the
    oldest buckets will have aged out to bring it back under."""
    rows = _buckets(session, key, now - window)
    total = sum(n for _start, n in rows)
    if total < limit:
        return None
    for start, n in rows:
        total -= n
        if total < limit:
            return start + window
    return now + window          # limit <= 0: always refused

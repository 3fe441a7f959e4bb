"""One clock and one set of conversions: UTC in storage, Asia/Shanghai for business days."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    # datetime.now() is what time-machine moves in tests, like SpiffWorkflow's own timer clock.
    return datetime.now(timezone.utc)


def business_today() -> date:
    """Today's date in Asia/Shanghai."""
    return business_now().date()


def business_now() -> datetime:
    """Now in Asia/Shanghai: for what a person reads as a local time, e.g. in a file name."""
    return utcnow().astimezone(BUSINESS_TZ)


def parse_iso(value) -> datetime:
    """An aware datetime from an ISO string or datetime; naive input is refused, never guessed."""
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return dt.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and always returns them aware (SQLite forgets the zone)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

"""Periods of the analysis: business dates in Asia/Shanghai, both ends included, turned into UTC instants
for the indexed time columns; quarters ("2026Q4"); the periods to compare with (the quarter before a
quarter, else the period of the same length before it; and the same dates a year earlier); and the
buckets of the trend (weeks, or months for a long period)."""
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from ..timeutil import BUSINESS_TZ

MAX_DAYS = 3 * 366 + 1          # a period of more than three years is refused
WEEKLY_UP_TO_DAYS = 120         # up to about a third of a year the trend is per week, beyond it per month
QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*$")


class PeriodError(ValueError):
    """A period that cannot be analysed. `code` says why (for a translated message), `params` the values."""

    def __init__(self, code: str, message: str, **params):
        super().__init__(message)
        self.code, self.params = code, params


@dataclass(frozen=True)
class Period:
    start: date
    end: date                   # inclusive
    label: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def instants(self) -> tuple[datetime, datetime]:
        """[from, to) in UTC: midnight in Shanghai of the first day, and of the day after the last."""
        return business_midnight(self.start), business_midnight(self.end + timedelta(days=1))

    def previous(self) -> "Period":
        """The quarter before a whole quarter; for any other period, the one of the same length that ends the
        day before it starts."""
        if self.is_quarter():
            return quarter_of(self.start - timedelta(days=1))
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def is_quarter(self) -> bool:
        whole = quarter_of(self.start)
        return (whole.start, whole.end) == (self.start, self.end)

    def year_ago(self) -> "Period":
        return Period(shift_years(self.start, -1), shift_years(self.end, -1))

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label, "days": self.days}


def business_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ).astimezone(timezone.utc)


def business_date(instant: datetime) -> date:
    return instant.astimezone(BUSINESS_TZ).date()


def shift_years(day: date, years: int) -> date:
    """The same date `years` later (29 February becomes the 28th in a year without it)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def quarter(text: str) -> Period:
    """"2026Q4" (or "2026-Q4", "2026q4") as its period, 1 October to 31 December 2026."""
    found = QUARTER.match(text or "")
    if not found:
        raise PeriodError("bad_quarter", f"{text!r} is not a quarter: write it as 2026Q4", value=text)
    year, number = int(found.group(1)), int(found.group(2))
    if year < 1900:
        raise PeriodError("bad_quarter", f"{text!r} is not a quarter: write it as 2026Q4", value=text)
    start = date(year, 3 * number - 2, 1)
    end = (date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)) - timedelta(days=1)
    return Period(start, end, f"{year}Q{number}")


def quarter_of(day: date) -> Period:
    return quarter(f"{day.year}Q{(day.month - 1) // 3 + 1}")


def previous_quarter(day: date) -> Period:
    """The last whole quarter before the one `day` is in (what a review at the start of a quarter looks at)."""
    return quarter_of(quarter_of(day).start - timedelta(days=1))


def period(start: date, end: date, label: str = "") -> Period:
    """A checked period: start on or before end, at most MAX_DAYS long."""
    if not isinstance(start, date) or not isinstance(end, date):
        raise PeriodError("missing_dates", "a period needs a first and a last day")
    if start > end:
        raise PeriodError("reversed", f"the period starts ({start}) after it ends ({end})", start=start, end=end)
    found = Period(start, end, label or default_label(start, end))
    if found.days > MAX_DAYS:
        raise PeriodError("too_long", f"the period is {found.days} days long; at most {MAX_DAYS} days "
                          f"(three years) are analysed at once", days=found.days, limit=MAX_DAYS)
    return found


def default_label(start: date, end: date) -> str:
    """"2026Q4" for a whole quarter, else "2026-10-01..2026-11-15"."""
    if Period(start, end).is_quarter():
        return quarter_of(start).label
    return f"{start.isoformat()}..{end.isoformat()}"


def parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise PeriodError("bad_date", f"{field}: {text!r} is not a date (YYYY-MM-DD)", field=field, value=text) from None


@dataclass(frozen=True)
class Bucket:
    start: date
    end: date                   # inclusive

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def bucket_kind(p: Period) -> str:
    return "week" if p.days <= WEEKLY_UP_TO_DAYS else "month"


def buckets(p: Period) -> list[Bucket]:
    """The trend's buckets: seven days from the period's first day on, or calendar months; the last one
    ends with the period."""
    out, start = [], p.start
    while start <= p.end:
        if bucket_kind(p) == "week":
            after = start + timedelta(days=7)
        else:
            after = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        end = min(after - timedelta(days=1), p.end)
        out.append(Bucket(start, end))
        start = end + timedelta(days=1)
    return out

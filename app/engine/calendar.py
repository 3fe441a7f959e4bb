"""Mainland-China working-day calendar for due dates and timers.

Business time is Asia/Shanghai.  A working day is Mon-Fri, minus statutory
public holidays, plus make-up working days (调休: weekend days declared to be
working days).  Official data comes from the ``holidays`` package; admins can
override single dates (the State Council publishes each year's schedule only
in Oct-Nov of the previous year, so overrides bridge the gap until the package
is upgraded).

Years after the last officially published one are never guessed silently: the
``holidays`` package *does* compute rule-based lunar holidays for such years,
without make-up days, so we ignore its answer there.  Instead callers either
get ``CalendarNotPublished`` (strict) or a provisional answer (Mon-Fri minus
the fixed-date holidays) that is flagged and logged, so it can be recomputed
once the data is published.

All per-year data is computed once per ``WorkCalendar`` and cached; the hot
path (``add_working_days``) is a couple of bisects on per-year tuples.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "CalendarNotPublished",
    "DueTime",
    "WorkCalendar",
    "default_calendar",
]

log = logging.getLogger(__name__)

# Statutory holidays whose Gregorian date never moves; the only ones we dare to
# assume for a year whose official schedule is not out yet.  (Lunar holidays
# and the 调休 make-up days are decided by the State Council each year.)
_FIXED_HOLIDAYS = ((1, 1), (5, 1), (10, 1), (10, 2), (10, 3))

_END_OF_DAY = time(23, 59, 59)


class CalendarNotPublished(Exception):
    """The official holiday schedule for this year is not available (strict mode)."""

    def __init__(self, year: int, last_official_year: int):
        super().__init__(
            f"no official China holiday schedule for {year} "
            f"(data covers up to {last_official_year}); upgrade the 'holidays' "
            f"package or add admin overrides"
        )
        self.year = year
        self.last_official_year = last_official_year


@dataclass(frozen=True)
class DueTime:
    """A computed deadline.

    ``provisional`` is True when the result depends on a day in a year without
    official data (and not pinned by an admin override): the deadline may move
    once the schedule is published, so it should be recomputed then.
    """

    at: datetime  # aware, UTC
    provisional: bool


@dataclass(frozen=True)
class _Year:
    working: tuple[int, ...]  # sorted ordinals of working days in the year
    working_set: frozenset[int]
    provisional: bool  # computed without official data


class WorkCalendar:
    """China working-day arithmetic in a business time zone (default Asia/Shanghai)."""

    def __init__(
        self,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        tz: str | ZoneInfo = "Asia/Shanghai",
    ):
        """``extra_holidays``/``extra_workdays`` are admin overrides; they win over
        the package data and count as authoritative even in unpublished years."""
        self._extra_holidays = frozenset(_plain_date(d) for d in extra_holidays)
        self._extra_workdays = frozenset(_plain_date(d) for d in extra_workdays)
        both = self._extra_holidays & self._extra_workdays
        if both:
            raise ValueError(
                f"dates both in extra_holidays and extra_workdays: {sorted(both)}"
            )
        # Sorted ordinals of all overridden dates, to tell quickly whether a
        # span of an unpublished year is fully pinned by the admin.
        self._override_ordinals = tuple(
            sorted(d.toordinal() for d in self._extra_holidays | self._extra_workdays)
        )
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)

        # Populate every year the package supports: make-up days for a January
        # holiday can fall in the previous December and are only registered
        # when the later year is populated.  Populating the whole range (~50 ms,
        # once) also means we never depend on "today" (tests travel in time).
        probe = holidays.country_holidays("CN")
        self._cn = holidays.country_holidays(
            "CN", years=range(probe.start_year, probe.end_year + 1)
        )
        # Official schedules always come with make-up working days; the
        # package only has those for years the State Council has published.
        self._last_official_year = max(d.year for d in self._cn.weekend_workdays)

        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()

    @property
    def last_official_year(self) -> int:
        """Last year with official (published) holiday data in the package."""
        return self._last_official_year

    # -- per-day ---------------------------------------------------------

    def is_working_day(self, d: date, strict: bool = False) -> bool:
        """Whether ``d`` (a local calendar date) is a working day.

        For a year after ``last_official_year`` (and no override for ``d``):
        ``strict=True`` raises CalendarNotPublished; otherwise the answer is
        provisional (Mon-Fri minus fixed-date holidays) and a warning is
        logged once per year.
        """
        d = _plain_date(d)
        if d in self._extra_workdays:
            return True
        if d in self._extra_holidays:
            return False
        if strict and d.year > self._last_official_year:
            raise CalendarNotPublished(d.year, self._last_official_year)
        return d.toordinal() in self._year(d.year).working_set

    # -- datetime arithmetic --------------------------------------------

    def end_of_day(self, d: date) -> datetime:
        """23:59:59 local time on ``d``, as an aware UTC datetime (deadlines are
        "by the end of that working day")."""
        d = _plain_date(d)
        return datetime.combine(d, _END_OF_DAY, self.tz).astimezone(timezone.utc)

    def add_working_days(self, start: datetime, n: int) -> DueTime:
        """Deadline "n working days from start": the end of the n-th working day
        after start's local day (the start day itself never counts, however
        early it is).  ``n == 0`` gives the end of start's own local day."""
        first = self._local_date(start)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {n!r}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return DueTime(self.end_of_day(first), False)

        start_ord = first.toordinal()
        year = first.year
        remaining = n
        days = self._year(year).working
        idx = bisect_right(days, start_ord)
        while len(days) - idx < remaining:
            remaining -= len(days) - idx
            year += 1
            days = self._year(year).working
            idx = 0
        due_ord = days[idx + remaining - 1]
        due = date.fromordinal(due_ord)
        return DueTime(self.end_of_day(due), self._span_provisional(start_ord + 1, due_ord))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days strictly after start's local day up to and including
        end's local day (0 if end's day is not after start's) - for "time left"
        displays, consistent with add_working_days."""
        a = self._local_date(start).toordinal()
        b = self._local_date(end).toordinal()
        if b <= a:
            return 0
        ya, yb = date.fromordinal(a).year, date.fromordinal(b).year
        count = 0
        for year in range(ya, yb + 1):
            days = self._year(year).working
            lo = bisect_right(days, a) if year == ya else 0
            hi = bisect_right(days, b) if year == yb else len(days)
            count += hi - lo
        return count

    # -- internals -------------------------------------------------------

    def _local_date(self, moment: datetime) -> date:
        if not isinstance(moment, datetime):
            raise TypeError(f"expected a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"naive datetime {moment!r}: a time zone is required")
        return moment.astimezone(self.tz).date()

    def _year(self, year: int) -> _Year:
        data = self._years.get(year)
        if data is None:
            with self._lock:
                data = self._years.get(year)
                if data is None:
                    data = self._years[year] = self._build_year(year)
        return data

    def _build_year(self, year: int) -> _Year:
        provisional = year > self._last_official_year
        if provisional:
            log.warning(
                "China holiday schedule for %d is not published (data up to %d): "
                "using provisional working days (Mon-Fri minus fixed-date "
                "holidays); due dates in %d are provisional",
                year, self._last_official_year, year,
            )
            fixed = {date(year, m, d) for m, d in _FIXED_HOLIDAYS}

            def base(d: date) -> bool:
                return d.weekday() < 5 and d not in fixed
        else:
            base = self._cn.is_working_day

        working = []
        for ordinal in range(date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal() + 1):
            d = date.fromordinal(ordinal)
            if d in self._extra_workdays or (d not in self._extra_holidays and base(d)):
                working.append(ordinal)
        return _Year(tuple(working), frozenset(working), provisional)

    def _span_provisional(self, first_ord: int, last_ord: int) -> bool:
        """True if some day in [first, last] lies in an unpublished year and is
        not pinned by an admin override (its status is only a guess)."""
        last_year = date.fromordinal(last_ord).year
        if last_year <= self._last_official_year:
            return False
        first_year = max(date.fromordinal(first_ord).year, self._last_official_year + 1)
        for year in range(first_year, last_year + 1):
            lo = max(first_ord, date(year, 1, 1).toordinal())
            hi = min(last_ord, date(year, 12, 31).toordinal())
            pinned = bisect_right(self._override_ordinals, hi) - bisect_left(
                self._override_ordinals, lo
            )
            if pinned < hi - lo + 1:
                return True
        return False


def _plain_date(d: date) -> date:
    # A datetime is a date subclass; accepting one would silently use its own
    # zone's calendar day instead of the business zone's.
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}")
    return d


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """Process-wide calendar without overrides (building one costs ~50 ms)."""
    return WorkCalendar()

"""Mainland-China working-day calendar for due dates and timers.

Business time is Asia/Shanghai.  A working day is Mon-Fri, minus statutory
public holidays, plus make-up working days (调休: weekend days declared to be
working days).  Official data comes from the ``holidays`` package; admins can
override single dates (the State Council publishes each year's schedule only
in Oct-Nov of the previous year, so overrides bridge the gap until the package
is upgraded).

Years after the last officially published one are never guessed silently.
Callers either get ``CalendarNotPublished`` (strict) or a provisional answer
that is flagged and logged, so it can be recomputed once the data is
published.  The provisional answer is Mon-Fri minus every statutory holiday in
force (since 2025: New Year's Day, Spring Festival Eve and the first three days
of the lunar year, Qingming, May 1-2, Dragon Boat, Mid-Autumn, October 1-3),
whose dates the ``holidays`` package computes for any year, lunar ones included.
What only the State Council's schedule says stays unknown: the make-up working
days (调休) and the extra days off that go with them, and where a holiday on a
weekend is made up; the package's guesses at those ("observed" days) are not
used.

Two kinds of deadline: ``add_working_days`` counts working days (the
procedure's "3 working days"); ``add_period_days`` counts a period of calendar
days as the Civil Code does (arts. 201, 203: the first day is not counted, a
last day that is a rest day moves to the next working day).

All per-year data is computed once per ``WorkCalendar`` and cached; the hot
path (``add_working_days``) is a couple of bisects on per-year tuples.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
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
        provisional (Mon-Fri minus the statutory holidays) and a warning is
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
        _check_count(n)
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

    def add_period_days(self, start: datetime, n: int) -> DueTime:
        """Deadline of a period of ``n`` days from ``start``, counted as the Civil
        Code counts periods: start's local day is not counted (art. 201), so the
        last day is that day + n calendar days; a last day that is a rest day (a
        weekend day that is not a make-up working day, or a public holiday) moves
        to the next working day (art. 203).  The period ends at the end of that
        day, the moment ``end_of_day`` gives.  ``n == 0`` makes start's own day
        the last day, moved the same way.

        Provisional when the last day, or a day it moved across, lies in an
        unpublished year and is not pinned by an override: only those days'
        status decides the result (the days before the last day count whatever
        they are)."""
        _check_count(n)
        last = (self._local_date(start) + timedelta(days=n)).toordinal()
        end = self._working_on_or_after(last)
        return DueTime(self.end_of_day(date.fromordinal(end)), self._span_provisional(last, end))

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

    def _working_on_or_after(self, ordinal: int) -> int:
        """Ordinal of the first working day on or after ``ordinal``."""
        year = date.fromordinal(ordinal).year
        days = self._year(year).working
        idx = bisect_left(days, ordinal)
        while idx == len(days):    # none left this year (overrides may empty a year)
            year += 1
            days, idx = self._year(year).working, 0
        return days[idx]

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
                "using provisional working days (Mon-Fri minus the statutory "
                "holidays; make-up days unknown); due dates in %d are provisional",
                year, self._last_official_year, year,
            )
            statutory = _statutory_holidays(year)

            def base(d: date) -> bool:
                return d.weekday() < 5 and d not in statutory
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


def _statutory_holidays(year: int) -> frozenset[date]:
    """The statutory holidays of ``year`` by the rules in force, without the
    package's "observed" days: those are its guess at how the State Council will
    make up a holiday falling on a weekend, which only the schedule decides.  A
    statutory holiday is always a day off, so these are the days we can be sure
    of before the schedule is out."""
    rules = holidays.country_holidays("CN", years=year, observed=False, expand=False)
    return frozenset(d for d in rules if d.year == year)


def _check_count(n: int) -> None:
    """A count of days must be a plain int >= 0 (True or 2.0 would be a slip, not a count)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")


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

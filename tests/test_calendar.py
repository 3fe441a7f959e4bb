"""Tests for app.engine.calendar against the real `holidays` package data."""

import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from app.engine.calendar import (
    CalendarNotPublished,
    DueTime,
    WorkCalendar,
    default_calendar,
)

CST = timezone(timedelta(hours=8))
UTC = timezone.utc


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(*args):
    return datetime(*args, tzinfo=CST)


def eod(y, m, d):
    """End of a local (Asia/Shanghai) day, in UTC."""
    return utc(y, m, d, 15, 59, 59)


@pytest.fixture(scope="module")
def cal():
    return default_calendar()


def days(start, end):
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


# -- which days are working days -----------------------------------------


def test_last_official_year_is_from_package(cal):
    assert cal.last_official_year >= 2026


def test_national_day_2025(cal):
    for d in days(date(2025, 10, 1), date(2025, 10, 8)):
        assert not cal.is_working_day(d), d
    assert cal.is_working_day(date(2025, 9, 28))  # Sunday, make-up day
    assert cal.is_working_day(date(2025, 10, 11))  # Saturday, make-up day
    assert cal.is_working_day(date(2025, 10, 9))
    assert not cal.is_working_day(date(2025, 10, 12))  # ordinary Sunday


def test_spring_festival_2026(cal):
    for d in days(date(2026, 2, 15), date(2026, 2, 23)):
        assert not cal.is_working_day(d), d
    assert cal.is_working_day(date(2026, 2, 14))  # Saturday, make-up day
    assert cal.is_working_day(date(2026, 2, 28))  # Saturday, make-up day
    assert cal.is_working_day(date(2026, 2, 24))


def test_is_working_day_rejects_datetime(cal):
    with pytest.raises(TypeError):
        cal.is_working_day(utc(2025, 10, 9, 12))


# -- add_working_days -------------------------------------------------------


def test_across_national_day_2025(cal):
    # Sun 9-28 counts (make-up), 9-29, 9-30, then 10-9, 10-10.
    due = cal.add_working_days(local(2025, 9, 26, 10, 0), 5)
    assert due == DueTime(at=eod(2025, 10, 10), provisional=False)
    assert due.at.isoformat() == "2025-10-10T15:59:59+00:00"
    assert due.at.tzinfo is UTC


def test_across_spring_festival_2026(cal):
    # From Thu 2026-02-12: Fri 13, Sat 14 (make-up), then 24, 25, 26.
    due = cal.add_working_days(local(2026, 2, 12, 9, 0), 5)
    assert due == DueTime(eod(2026, 2, 26), False)
    # Make-up Saturday 2-28 counts: Fri 27 -> Sat 28.
    assert cal.add_working_days(local(2026, 2, 27, 9, 0), 1).at == eod(2026, 2, 28)


def test_start_day_never_counts(cal):
    # Monday morning: the Monday itself is not counted.
    assert cal.add_working_days(local(2025, 3, 3, 0, 0, 1), 1).at == eod(2025, 3, 4)


def test_start_friday_evening_saturday_and_holiday(cal):
    assert cal.add_working_days(local(2025, 3, 7, 22, 0), 1).at == eod(2025, 3, 10)
    assert cal.add_working_days(local(2025, 3, 8, 10, 0), 1).at == eod(2025, 3, 10)
    assert cal.add_working_days(local(2025, 3, 8, 10, 0), 2).at == eod(2025, 3, 11)
    # On a holiday (National Day 2025-10-03): next working day is 10-09.
    assert cal.add_working_days(local(2025, 10, 3, 10, 0), 1).at == eod(2025, 10, 9)
    assert cal.add_working_days(local(2025, 10, 3, 10, 0), 3).at == eod(2025, 10, 11)


def test_late_local_time_is_still_that_day(cal):
    start = utc(2025, 3, 3, 15, 45)  # 23:45 Mon 2025-03-03 local
    assert cal.add_working_days(start, 1).at == eod(2025, 3, 4)


def test_utc_start_already_next_local_day(cal):
    start = utc(2025, 3, 2, 17, 0)  # 01:00 Mon 2025-03-03 local; UTC says Sunday
    assert cal.add_working_days(start, 1).at == eod(2025, 3, 4)


def test_n_zero_and_negative(cal):
    assert cal.add_working_days(utc(2025, 3, 2, 17, 0), 0) == DueTime(eod(2025, 3, 3), False)
    # n == 0 on a holiday is still the end of that day.
    assert cal.add_working_days(local(2025, 10, 1, 8, 0), 0).at == eod(2025, 10, 1)
    with pytest.raises(ValueError):
        cal.add_working_days(utc(2025, 3, 3), -1)


def test_naive_datetime_rejected(cal):
    with pytest.raises(ValueError):
        cal.add_working_days(datetime(2025, 3, 3, 10, 0), 1)
    with pytest.raises(ValueError):
        cal.working_days_between(datetime(2025, 3, 3), utc(2025, 3, 10))
    with pytest.raises(ValueError):
        cal.working_days_between(utc(2025, 3, 3), datetime(2025, 3, 10))


def test_across_year_boundary(cal):
    # Wed 2025-12-31 -> Jan 1 is a holiday, 2026-01-02 (Fri) too, Sun 01-04 is a make-up day.
    assert cal.add_working_days(local(2025, 12, 31, 9, 0), 1).at == eod(2026, 1, 4)
    assert cal.add_working_days(local(2025, 12, 1, 9, 0), 30).provisional is False


def test_end_of_day(cal):
    assert cal.end_of_day(date(2025, 10, 10)) == utc(2025, 10, 10, 15, 59, 59)


# -- working_days_between ---------------------------------------------------


def test_working_days_between(cal):
    start = local(2025, 9, 26, 10, 0)
    assert cal.working_days_between(start, local(2025, 10, 10, 9, 0)) == 5
    assert cal.working_days_between(start, local(2025, 10, 12, 9, 0)) == 6
    assert cal.working_days_between(start, start) == 0
    assert cal.working_days_between(start, local(2025, 9, 20)) == 0
    assert cal.working_days_between(start, local(2025, 9, 26, 23, 59)) == 0
    # Across a year boundary and consistent with add_working_days.
    s = local(2025, 11, 20, 12, 0)
    for n in (1, 7, 30, 60):
        due = cal.add_working_days(s, n)
        assert cal.working_days_between(s, due.at) == n


# -- admin overrides --------------------------------------------------------


def test_extra_holiday_pushes_due_date():
    c = WorkCalendar(extra_holidays={date(2025, 3, 4)})
    assert not c.is_working_day(date(2025, 3, 4))
    assert c.add_working_days(local(2025, 3, 3, 10, 0), 1).at == eod(2025, 3, 5)


def test_extra_workday_pulls_due_date():
    c = WorkCalendar(extra_workdays={date(2025, 3, 8)})  # a Saturday
    assert c.is_working_day(date(2025, 3, 8))
    assert c.add_working_days(local(2025, 3, 7, 10, 0), 1).at == eod(2025, 3, 8)


def test_override_conflict_rejected():
    with pytest.raises(ValueError):
        WorkCalendar(extra_holidays={date(2025, 3, 4)}, extra_workdays={date(2025, 3, 4)})


# -- unpublished years ------------------------------------------------------


def test_unpublished_year_strict_raises(cal):
    y = cal.last_official_year + 1
    with pytest.raises(CalendarNotPublished):
        cal.is_working_day(date(y, 3, 3), strict=True)
    # Published years never raise in strict mode.
    assert cal.is_working_day(date(2025, 10, 11), strict=True)


def test_unpublished_year_provisional(caplog):
    c = WorkCalendar()
    y = c.last_official_year + 1
    with caplog.at_level(logging.WARNING, logger="app.engine.calendar"):
        # Statutory holidays only; the package's guesses at make-up days off are not used.
        c.add_working_days(local(2025, 9, 26, 10), 5)  # published: no warning
        assert not c.is_working_day(date(y, 1, 1))
        assert not c.is_working_day(date(y, 10, 2))
        monday = date(y, 3, 1) + timedelta(days=(7 - date(y, 3, 1).weekday()) % 7)
        due = c.add_working_days(local(monday.year, monday.month, monday.day, 9), 1)
        c.add_working_days(local(monday.year, monday.month, monday.day, 9), 10)
    assert due == DueTime(eod(y, monday.month, monday.day + 1), True)
    warnings = [r for r in caplog.records if r.name == "app.engine.calendar" and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per year
    assert str(y) in warnings[0].getMessage()


def test_unpublished_year_falls_back_to_every_statutory_holiday():
    c = WorkCalendar()
    assert c.last_official_year < 2029
    # The statutory holidays of 2029 by the rules in force since 2025, worked out by hand (Spring
    # Festival is Tue 2029-02-13): the weekdays among them are New Year's Day Mon 01-01, Spring
    # Festival Eve Mon 02-12 and Tue-Thu 02-13..15, Qingming Wed 04-04, Labour Day Tue 05-01 and
    # Wed 05-02, National Day Mon-Wed 10-01..03 (Dragon Boat 06-16 and Mid-Autumn 09-22 are Saturdays).
    off = {date(2029, 1, 1), date(2029, 2, 12), date(2029, 2, 13), date(2029, 2, 14), date(2029, 2, 15),
           date(2029, 4, 4), date(2029, 5, 1), date(2029, 5, 2), date(2029, 10, 1), date(2029, 10, 2),
           date(2029, 10, 3)}
    # Every other Mon-Fri is provisionally a working day: make-up days are unknown.
    for d in days(date(2029, 1, 1), date(2029, 12, 31)):
        assert c.is_working_day(d) is (d.weekday() < 5 and d not in off), d


def test_unpublished_year_keeps_may_2_and_spring_festival_eve_but_not_observed_guesses():
    c = WorkCalendar()
    assert c.last_official_year < 2030
    assert not c.is_working_day(date(2030, 5, 2))       # Thu, Labour Day's second day (since 2025)
    assert not c.is_working_day(date(2030, 2, 4))       # Mon, Spring Festival day 2
    assert not c.is_working_day(date(2030, 2, 5))       # Tue, day 3
    assert not c.is_working_day(date(2028, 1, 25))      # Tue, Spring Festival Eve 2028
    # The eve and the first day of 2030 fall on Sat 02-02 / Sun 02-03; the package's guesses at the
    # days off that make up for them (Wed 02-06, Thu 02-07 "observed") are the State Council's call.
    assert c.is_working_day(date(2030, 2, 6)) and c.is_working_day(date(2030, 2, 7))
    # Provisional due dates skip them: Fri 2030-04-26 + 3 working days = Mon 29, Tue 30, Fri 05-03.
    assert c.add_working_days(local(2030, 4, 26, 10), 3) == DueTime(eod(2030, 5, 3), True)


def test_crossing_into_unpublished_year_is_provisional(cal):
    last = cal.last_official_year
    assert cal.add_working_days(local(last, 12, 1, 9), 3).provisional is False
    assert cal.add_working_days(local(last, 12, 20, 9), 20).provisional is True


def test_extra_workday_in_unpublished_year_is_not_provisional():
    probe = WorkCalendar()
    y = probe.last_official_year + 1
    # Start on Dec 31 of the last published year; the only counted day is an
    # admin-declared working day in the unpublished year.
    c = WorkCalendar(extra_workdays={date(y, 1, 1)})
    assert c.is_working_day(date(y, 1, 1), strict=True)  # pinned: no raise
    due = c.add_working_days(local(y - 1, 12, 31, 9), 1)
    assert due == DueTime(eod(y, 1, 1), False)
    # Counting one day further relies on unpublished data again.
    assert c.add_working_days(local(y - 1, 12, 31, 9), 2).provisional is True


# -- cross-check against chinesecalendar --------------------------------------


def test_matches_chinesecalendar(cal):
    import chinese_calendar  # test-only dependency; must be installed

    compared = []
    for year in range(2020, cal.last_official_year + 1):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:  # beyond chinesecalendar's data
            continue
        for d in days(date(year, 1, 1), date(year, 12, 31)):
            assert cal.is_working_day(d) == chinese_calendar.is_workday(d), d
        compared.append(year)
    assert set(range(2020, 2027)) <= set(compared)


# -- default calendar --------------------------------------------------------------------


def test_default_calendar_cached():
    assert default_calendar() is default_calendar()

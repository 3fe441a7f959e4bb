"""days_after(ts, n): a period of n days counted as the Civil Code counts it (CC-201, CC-203), on the
real mainland-China calendar of the `holidays` package. Every expected end below is worked out by hand
from the published schedule, in the comment beside it; the end of a day is 23:59:59 Asia/Shanghai
(15:59:59 UTC), the same moment working_days_after uses."""
from datetime import date, datetime, timedelta, timezone

import pytest

from app.engine import guards
from app.engine.calendar import DueTime, WorkCalendar, default_calendar
from app.engine.scripting import HELPER_NAMES, MAX_PERIOD_DAYS, make_script_engine

SH = timezone(timedelta(hours=8))
UTC = timezone.utc


def end_of(y, m, d):
    """24:00 (23:59:59) of a Shanghai day, in UTC."""
    return datetime(y, m, d, 15, 59, 59, tzinfo=UTC)


@pytest.fixture(scope="module")
def cal():
    return default_calendar()


def helper(effects=None):
    """days_after as the script engine offers it to a diagram."""
    return make_script_engine([] if effects is None else effects).environment.globals["days_after"]


def test_fifteen_days_before_spring_festival_2026_end_on_the_make_up_saturday(cal):
    # Received Fri 2026-02-13. 2026 schedule (holidays 0.109): Spring Festival off Sun 02-15 .. Mon 02-23
    # (eve Mon 02-16, days off to 02-23), make-up working days Sat 02-14 and Sat 02-28.
    # The 13th is not counted; day 1 is 02-14, day 15 is 02-28 - a Saturday, but a make-up working
    # day, so the period does not roll: it ends 2026-02-28 24:00.
    assert not cal.is_working_day(date(2026, 2, 23)) and cal.is_working_day(date(2026, 2, 28))
    due = cal.add_period_days(datetime(2026, 2, 13, 10, 0, tzinfo=SH), 15)
    assert due == DueTime(end_of(2026, 2, 28), False)
    assert helper()("2026-02-13T10:00:00+08:00", 15) == "2026-02-28T15:59:59+00:00"


def test_the_regulation_example_rolls_out_of_spring_festival_2025(cal):
    # regulation.md: received 2025-01-20, 15 days -> 2025-02-04, the last day of the Spring Festival
    # holiday (01-28 .. 02-04) -> the period ends 2025-02-05 24:00.
    assert cal.add_period_days(datetime(2025, 1, 20, 9, 0, tzinfo=SH), 15) == DueTime(end_of(2025, 2, 5), False)


def test_a_last_day_on_a_weekend_moves_to_monday(cal):
    # Fri 2025-03-07 + 8 days = Sat 03-15 -> Mon 03-17 (an ordinary working day).
    assert cal.add_period_days(datetime(2025, 3, 7, 15, 0, tzinfo=SH), 8).at == end_of(2025, 3, 17)
    # + 9 days = Sun 03-16 -> the same Monday.
    assert cal.add_period_days(datetime(2025, 3, 7, 15, 0, tzinfo=SH), 9).at == end_of(2025, 3, 17)
    # + 10 days = Mon 03-17 itself: no move.
    assert cal.add_period_days(datetime(2025, 3, 7, 15, 0, tzinfo=SH), 10).at == end_of(2025, 3, 17)


def test_a_last_day_on_a_make_up_saturday_does_not_move(cal):
    # Fri 2025-09-26 + 15 days = Sat 2025-10-11, a make-up working day after National Day 2025.
    assert cal.add_period_days(datetime(2025, 9, 26, 11, 0, tzinfo=SH), 15).at == end_of(2025, 10, 11)


def test_a_last_day_inside_national_day_moves_to_the_first_working_day_after(cal):
    # National Day 2025: off 10-01 .. 10-08. Sat 2025-09-20 + 12 days = Thu 10-02 -> Thu 10-09.
    assert cal.add_period_days(datetime(2025, 9, 20, 9, 0, tzinfo=SH), 12).at == end_of(2025, 10, 9)
    # National Day 2026: off 10-01 .. 10-07 (10-10 is a make-up Saturday).
    # Sun 2026-09-20 + 15 days = Mon 10-05 (a day off) -> Thu 10-08.
    assert cal.add_period_days(datetime(2026, 9, 20, 9, 0, tzinfo=SH), 15).at == end_of(2026, 10, 8)


def test_the_day_of_receipt_is_the_shanghai_day_not_the_utc_day(cal):
    # Both are 2025-03-03 in UTC, but 23:30 Mon 03-03 and 00:30 Tue 03-04 in Shanghai:
    late_monday = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)
    early_tuesday = datetime(2025, 3, 3, 16, 30, tzinfo=UTC)
    # Mon 03-03 + 3 = Thu 03-06; Tue 03-04 + 3 = Fri 03-07.
    assert cal.add_period_days(late_monday, 3).at == end_of(2025, 3, 6)
    assert cal.add_period_days(early_tuesday, 3).at == end_of(2025, 3, 7)
    assert helper()("2025-03-03T23:30:00+08:00", 3) == "2025-03-06T15:59:59+00:00"
    assert helper()("2025-03-04T00:30:00+08:00", 3) == "2025-03-07T15:59:59+00:00"


def test_zero_days_end_with_the_day_of_receipt_moved_like_any_last_day(cal):
    # n == 0: the day of receipt is the last day. Mon 2025-03-03 -> that day.
    assert cal.add_period_days(datetime(2025, 3, 3, 10, 0, tzinfo=SH), 0) == DueTime(end_of(2025, 3, 3), False)
    # Received on Sat 2025-03-08 -> a rest day -> Mon 03-10.
    assert cal.add_period_days(datetime(2025, 3, 8, 10, 0, tzinfo=SH), 0).at == end_of(2025, 3, 10)


def test_a_period_that_depends_on_an_unpublished_year_is_provisional(cal):
    assert cal.last_official_year == 2026     # the package data these dates were worked out with
    # Fri 2026-12-18 + 15 days = Sat 2027-01-02. 2027 is not published: provisionally Jan 1 is a
    # statutory holiday and the weekend is off -> Mon 2027-01-04, flagged.
    assert cal.add_period_days(datetime(2026, 12, 18, 9, 0, tzinfo=SH), 15) == DueTime(end_of(2027, 1, 4), True)
    # A period within 2026 is not, however close to the year's end: Thu 2026-12-10 + 21 = Thu 12-31.
    assert cal.add_period_days(datetime(2026, 12, 10, 9, 0, tzinfo=SH), 21) == DueTime(end_of(2026, 12, 31), False)


def test_admin_overrides_pin_the_days_that_decide(cal):
    # The same period with Jan 2-3 entered as days off and Jan 4 as a working day: every day whose
    # status decides the end is known, so the end is final.
    pinned = WorkCalendar(extra_holidays={date(2027, 1, 2), date(2027, 1, 3)}, extra_workdays={date(2027, 1, 4)})
    assert pinned.add_period_days(datetime(2026, 12, 18, 9, 0, tzinfo=SH), 15) == DueTime(end_of(2027, 1, 4), False)
    # Only Jan 2 pinned: whether Jan 3 is off is still a guess.
    partly = WorkCalendar(extra_holidays={date(2027, 1, 2)})
    assert partly.add_period_days(datetime(2026, 12, 18, 9, 0, tzinfo=SH), 15).provisional is True


def test_the_helper_reports_provisional_and_confirmed_due_times_through_effects():
    effects = []
    days_after = helper(effects)
    assert days_after("2026-12-18T09:00:00+08:00", 15) == "2027-01-04T15:59:59+00:00"
    assert days_after(datetime(2026, 2, 13, 10, 0, tzinfo=SH), 15) == "2026-02-28T15:59:59+00:00"
    assert effects == [{"kind": "provisional_due", "due_at": end_of(2027, 1, 4)},
                       {"kind": "confirmed_due", "due_at": end_of(2026, 2, 28)}]


def test_the_sandboxed_engine_offers_it_to_timers_and_scripts():
    assert "days_after" in HELPER_NAMES
    effects = []
    env = make_script_engine(effects).environment
    assert env.evaluate("days_after(received_at, 15)", {"received_at": "2026-02-13T02:00:00+00:00"}) \
        == "2026-02-28T15:59:59+00:00"
    context = {"received_at": "2025-01-20T09:00:00+08:00"}
    env.execute("decision_due = days_after(received_at, 15)", context)
    assert context["decision_due"] == "2025-02-05T15:59:59+00:00"


@pytest.mark.parametrize("ts, days, error, message", [
    ("2026-02-13T10:00:00+08:00", -1, ValueError, "days_after: the number of days must be 0 or more, got -1"),
    ("2026-02-13T10:00:00+08:00", 1.5, TypeError, "days_after: the number of days must be a whole number, got 1.5"),
    ("2026-02-13T10:00:00+08:00", True, TypeError, "days_after: the number of days must be a whole number"),
    ("2026-02-13T10:00:00+08:00", "15", TypeError, "days_after: the number of days must be a whole number"),
    ("2026-02-13T10:00:00+08:00", MAX_PERIOD_DAYS + 1, guards.NotAllowed,
     "days_after: 3,661 days is more than the limit 3,660"),
    ("2026-02-13T10:00:00", 15, ValueError, "days_after: '2026-02-13T10:00:00' is not an ISO time with a time zone"),
    ("yesterday", 15, ValueError, "days_after: 'yesterday' is not an ISO time"),
    (None, 15, ValueError, "days_after: None is not an ISO time"),
])
def test_a_bad_argument_is_refused_by_name(ts, days, error, message):
    with pytest.raises(error) as err:
        helper()(ts, days)
    assert str(err.value).startswith(message), str(err.value)


def test_the_limit_itself_is_allowed():
    # 2026-02-13 + 3,652 days (ten years with the leap days 2028-02-29 and 2032-02-29) = 2036-02-13;
    # + 8 more = Thu 2036-02-21, no statutory holiday (Spring Festival 2036 is in January). 2036 is
    # not published, so the end is provisional.
    effects = []
    assert helper(effects)("2026-02-13T10:00:00+08:00", MAX_PERIOD_DAYS) == "2036-02-21T15:59:59+00:00"
    assert effects[0]["kind"] == "provisional_due"


def test_the_calendar_method_refuses_bad_counts_and_naive_times(cal):
    with pytest.raises(ValueError):
        cal.add_period_days(datetime(2025, 3, 3, 10, 0, tzinfo=SH), -1)
    with pytest.raises(TypeError):
        cal.add_period_days(datetime(2025, 3, 3, 10, 0, tzinfo=SH), 2.0)
    with pytest.raises(ValueError):
        cal.add_period_days(datetime(2025, 3, 3, 10, 0), 1)

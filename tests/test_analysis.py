"""The analysis of a period (app.analysis, issue 11): counts and trends per coded dimension with labels (a
retired code still labelled, anything else "uncoded"), the top problems with their change and the noise
mark, an empty quarter, deadline compliance and the decision clock, outcomes and rounds, reviews, repeat
complainants, median and p90 handling time, the survey, the measures before and after, filters, bad
input, and reports attached to an instance — on complaints inserted as rows (the analysis reads rows
only), on SQLite and PostgreSQL."""
import uuid
from datetime import date, datetime, time, timedelta, timezone
from itertools import count

import pytest
from sqlalchemy import select, update

from app import analysis
from app.analysis import FilterError, PeriodError, UNCODED
from app.extensions import db
from app.models import (AnalysisReport, Complaint, Deadline, ImprovementMeasure, ProcessInstance, ProcessVersion,
                        SurveyResponse)
from app.timeutil import BUSINESS_TZ

Q3 = (date(2026, 7, 1), date(2026, 9, 30))
_numbers = count(1)


def at(day: date, hour=10, minute=0) -> datetime:
    """A business time (Asia/Shanghai) as the aware UTC datetime the columns hold."""
    return datetime.combine(day, time(hour, minute), tzinfo=BUSINESS_TZ).astimezone(timezone.utc)


def complaint(received: datetime, **columns) -> Complaint:
    n = next(_numbers)
    row = Complaint(number=f"TA-{n:06d}", channel="hotline", customer_name=f"客户{n}", phone=f"139{n:08d}",
                    category="claim_delay", product_line="health", description="seeded", received_at=received,
                    status="open", rounds=0)
    for name, value in columns.items():
        setattr(row, name, value)
    db.session.add(row)
    return row


def many(n, day: date, **columns) -> list[Complaint]:
    return [complaint(at(day, 9, i % 60), **columns) for i in range(n)]


def closed(received: datetime, hours: float, **columns) -> Complaint:
    return complaint(received, status="closed", closed_at=received + timedelta(hours=hours), **columns)


def run(start=Q3[0], end=Q3[1], **kwargs) -> dict:
    db.session.commit()
    return analysis.compute(db.session, start, end, **kwargs)


def item(data, dimension, code) -> dict:
    return next(i for i in data["dimensions"][dimension] if i["code"] == code)


def version_id() -> int:
    return db.session.execute(select(ProcessVersion.id).where(ProcessVersion.process_id == "complaint_handling")
                              .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one()


def instance_of(row: Complaint, process_id="complaint_handling") -> ProcessInstance:
    inst = ProcessInstance(version_id=version_id(), process_id=process_id, business_key=row.number,
                           status="running", workflow_json="{}")
    db.session.add(inst)
    db.session.flush()
    return inst


# ---- counts, trend, labels ---------------------------------------------------------------------------
def test_counts_per_dimension_trend_and_period_bounds_in_beijing_time(app):
    many(3, date(2026, 7, 2), channel="website", cause_code="process_backlog", responsible_party="company")
    many(2, date(2026, 8, 20), category="claim_amount", product_line="motor")
    complaint(datetime(2026, 6, 30, 16, 30, tzinfo=timezone.utc))          # 1 July 00:30 in Beijing: in
    complaint(at(date(2026, 9, 30), 23, 59), category="sales_misleading", channel="email")
    complaint(datetime(2026, 9, 30, 16, 0, tzinfo=timezone.utc))           # 1 October 00:00 in Beijing: out
    complaint(datetime(2026, 6, 30, 15, 59, tzinfo=timezone.utc))          # 30 June 23:59: out (previous)
    complaint(at(date(2026, 8, 1)), category="理赔慢", product_line=None)     # free text from before coded data
    data = run()
    assert data["totals"]["count"] == 8 and data["totals"]["previous"] == 1 and data["totals"]["year_ago"] == 0
    assert item(data, "category", "claim_delay")["count"] == 4
    assert item(data, "category", "claim_amount")["count"] == 2
    assert item(data, "category", "sales_misleading")["count"] == 1
    assert item(data, "category", UNCODED) == {**item(data, "category", UNCODED), "count": 1, "uncoded": True}
    assert item(data, "channel", "hotline")["count"] == 4 and item(data, "channel", "website")["count"] == 3
    assert item(data, "product_line", UNCODED)["count"] == 1 and item(data, "product_line", "motor")["count"] == 2
    assert item(data, "cause_code", "process_backlog")["count"] == 3 and item(data, "cause_code", UNCODED)["count"] == 5
    assert item(data, "responsible_party", "company")["count"] == 3
    delay = item(data, "category", "claim_delay")
    assert (delay["zh"], delay["en"], delay["retired"]) == ("理赔纠纷 › 理赔时效", "Claims disputes › Claim settlement too slow",
                                                            False)
    # 92 days: weekly buckets from 1 July; the first week holds the four of 1 and 2 July, the last the 30 September one.
    assert data["period"]["bucket"] == "week" and len(data["period"]["buckets"]) == 14
    assert data["totals"]["trend"][0] == 4 and data["totals"]["trend"][-1] == 1 and sum(data["totals"]["trend"]) == 8
    assert sum(delay["trend"]) == delay["count"]
    assert data["period"]["label"] == "2026Q3" and data["period"]["previous"]["start"] == "2026-04-01"


def test_a_long_period_is_counted_per_month_and_the_year_ago_period_may_overlap_it(app):
    many(2, date(2025, 3, 5))
    many(3, date(2026, 2, 10))
    data = run(date(2025, 1, 1), date(2026, 6, 30))
    assert data["period"]["bucket"] == "month" and len(data["totals"]["trend"]) == 18
    assert data["totals"]["count"] == 5 and data["totals"]["trend"][2] == 2 and data["totals"]["trend"][13] == 3
    assert data["totals"]["year_ago"] == 2              # 2024-01-01..2025-06-30 holds the March 2025 ones too


def test_a_retired_category_is_still_labelled(app):
    stored = db.session.execute(select(ProcessVersion.vocabularies).where(ProcessVersion.id == version_id())).scalar_one()
    terms = [{**t, "retired": "2026-08-01"} if t["code"] == "claim_delay" else t for t in stored["category"]["terms"]]
    db.session.execute(update(ProcessVersion).where(ProcessVersion.id == version_id()).values(
        vocabularies={**stored, "category": {**stored["category"], "terms": terms}}, content_hash="retired-delay"))
    many(2, date(2026, 7, 10))
    delay = item(run(), "category", "claim_delay")
    assert (delay["count"], delay["retired"], delay["zh"]) == (2, True, "理赔纠纷 › 理赔时效")
    assert analysis.compute(db.session, *Q3, filters={"category": "claim_delay"})["totals"]["count"] == 2


# ---- the high-frequency problems ----------------------------------------------------------------------
def test_the_top_problems_with_their_change_and_only_rises_beyond_noise_marked(app):
    many(10, date(2026, 5, 10), category="claim_delay")            # previous period (1 April .. 30 June)
    many(10, date(2026, 5, 11), category="claim_amount")
    many(30, date(2026, 7, 10), category="claim_delay")             # 10 -> 30: z = 20 / sqrt(10) = 6.3
    many(14, date(2026, 7, 11), category="claim_amount")            # 10 -> 14: z = 1.26, noise
    many(4, date(2026, 7, 12), category="service_attitude")         # 0 -> 4: too few to mean anything
    many(2, date(2026, 7, 13), category="理赔慢")                     # uncoded: names no problem
    top = run()["top"]["category"]
    assert [t["code"] for t in top] == ["claim_delay", "claim_amount", "service_attitude"]
    delay, amount, attitude = top
    assert delay["vs_previous"] == {"base": 10, "delta": 20, "pct": 200.0, "z": 6.32, "stands_out": True}
    assert delay["vs_year_ago"] is None and delay["stands_out"] is True        # no complaints a year ago: not compared
    assert amount["vs_previous"]["stands_out"] is False and amount["stands_out"] is False
    assert attitude["vs_previous"] == {"base": 0, "delta": 4, "pct": None, "z": 4.0, "stands_out": False}
    assert run()["noise_rule"] == {"test": "poisson_z", "z_at_least": 2.0, "count_at_least": 5, "top_n": 5}


def test_a_rise_against_the_same_quarter_last_year_is_marked_too(app):
    many(3, date(2025, 8, 1), category="claim_denial")
    many(9, date(2026, 5, 1), category="claim_denial")
    many(9, date(2026, 8, 1), category="claim_denial")
    denial = run()["top"]["category"][0]
    assert denial["vs_previous"]["stands_out"] is False and denial["vs_year_ago"]["stands_out"] is True
    assert denial["vs_year_ago"]["z"] == round(6 / 3 ** 0.5, 2) and denial["stands_out"] is True


# ---- an empty quarter ----------------------------------------------------------------------------------
def test_an_empty_quarter_is_all_zeros_and_no_division_by_zero(app):
    data = run()
    assert data["totals"] == {"count": 0, "previous": 0, "year_ago": 0, "trend": [0] * 14}
    assert data["top"] == {"category": [], "cause_code": []} and data["dimensions"]["category"] == []
    assert data["closed"]["closed"] == 0 and data["closed"]["rates"] == {"malicious": None, "not_accepted": None}
    assert data["handling"] == {"closed": 0, "mean_hours": None, "median_hours": None, "p90_hours": None, "exact": True}
    assert data["deadlines"] == {"steps": [], "decision_clock": {"due": 0, "met": 0, "missed": 0, "pending": 0,
                                                                 "rate": None}}
    assert data["repeat"] == {"complainants": 0, "repeat_complainants": 0, "their_complaints": 0, "share": None}
    assert data["satisfaction"]["responses"] == 0 and data["reviews"]["rate"] is None and data["measures"] == []


# ---- closed complaints: handling time, outcomes, rounds, survey --------------------------------------------
def test_median_and_p90_handling_time_of_the_complaints_closed_in_the_period(app):
    for hours in range(1, 11):                                  # 1 .. 10 hours
        closed(at(date(2026, 8, 3)), hours)
    closed(at(date(2026, 9, 30), 20), 24)                        # closed on 1 October: the next period's
    complaint(at(date(2026, 8, 3)))                              # still open
    found = run()["handling"]
    assert found == {"closed": 10, "mean_hours": 5.5, "median_hours": 5.5, "p90_hours": 9.1, "exact": True}


def test_outcomes_rounds_satisfaction_and_rates(app):
    day = at(date(2026, 8, 3))
    closed(day, 5, outcome="resolved", satisfied=True)
    closed(day, 5, outcome="resolved", satisfied=False, rounds=1)
    closed(day, 5, outcome="resolved", satisfied=True, rounds=4)
    closed(day, 5, outcome="malicious")
    survey_of = closed(day, 5, outcome="not_accepted")
    db.session.flush()
    db.session.add(SurveyResponse(complaint_id=survey_of.id, form="satisfaction_survey",
                                  answers={"overall": 4, "speed": 2, "communication": 5, "fairness": 3, "recommend": 4}))
    other = closed(day, 5, outcome="resolved", satisfied=True)
    db.session.flush()
    db.session.add(SurveyResponse(complaint_id=other.id, form="satisfaction_survey",
                                  answers={"overall": 2, "speed": 4, "communication": 5, "fairness": 3, "recommend": 2}))
    data = run()
    found = data["closed"]
    assert found["closed"] == 6 and found["outcomes"] == {"resolved": 4, "malicious": 1, "not_accepted": 1}
    assert found["rates"] == {"malicious": 16.7, "not_accepted": 16.7}
    assert found["rounds"] == {"0": 4, "1": 1, "2": 0, "3": 1} and found["reopened"] == 2
    assert found["satisfied"] == {"yes": 3, "no": 1, "unknown": 2}
    survey = data["satisfaction"]
    assert survey["responses"] == 2 and survey["overall"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    means = {q["key"]: q["mean"] for q in survey["questions"]}
    assert means == {"overall": 3.0, "speed": 3.0, "communication": 5.0, "fairness": 3.0, "recommend": 3.0}
    assert survey["questions"][0]["zh"] == "总体满意度" and survey["questions"][0]["en"] == "Overall satisfaction"


# ---- deadlines, decision clock, reviews, repeat complainants -----------------------------------------------
def deadline(inst, element_id, state, closed_at, name="初审时限"):
    db.session.add(Deadline(instance_id=inst.id, timer_task_id=str(uuid.uuid4()), element_id=element_id, name=name,
                            host_element_id="initial_review", due_at=closed_at, state=state, closed_at=closed_at))


def test_deadline_compliance_per_step_and_the_decision_clock(app):
    row = complaint(at(date(2026, 7, 5)))
    main = instance_of(row)
    review = instance_of(row, "complaint_review")
    for state in ("met", "met", "met", "missed"):
        deadline(main, "initial_review_deadline", state, at(date(2026, 7, 6)))
    deadline(review, "review_deadline", "missed", at(date(2026, 7, 20)), name="核查时限")
    deadline(main, "initial_review_deadline", "missed", at(date(2026, 10, 6)))      # the next period's
    deadline(main, "initial_review_deadline", "open", at(date(2026, 7, 6)))          # still open: not counted
    due = at(date(2026, 8, 1))
    complaint(at(date(2026, 7, 1)), decision_due_at=due, decided_at=due - timedelta(days=1))
    complaint(at(date(2026, 7, 1)), decision_due_at=due, decided_at=due + timedelta(days=1))
    complaint(at(date(2026, 7, 1)), decision_due_at=due)                               # not decided, overdue
    complaint(at(date(2026, 7, 1)), decision_due_at=datetime(2099, 1, 1, tzinfo=timezone.utc))   # not due in Q3
    data = run()
    steps = {s["element_id"]: s for s in data["deadlines"]["steps"]}
    assert steps["initial_review_deadline"] == {"element_id": "initial_review_deadline", "name": "初审时限",
                                                "host_element_id": "initial_review", "met": 3, "missed": 1,
                                                "rate": 75.0}
    assert (steps["review_deadline"]["missed"], steps["review_deadline"]["rate"]) == (1, 0.0)
    assert data["deadlines"]["decision_clock"] == {"due": 3, "met": 1, "missed": 2, "pending": 0, "rate": 33.3}
    assert data["reviews"] == {"received": 5, "reviewed": 1, "rate": 20.0}
    # A filter on the complaints keeps their deadlines only (through the instances' complaint number).
    assert run(filters={"channel": "website"})["deadlines"]["steps"] == []
    assert {s["element_id"] for s in run(filters={"channel": "hotline"})["deadlines"]["steps"]} == \
        {"initial_review_deadline", "review_deadline"}


def test_repeat_complainants_over_the_period_and_the_twelve_months_before_numbers_only(app):
    complaint(at(date(2025, 12, 1)), phone="13900000001")
    complaint(at(date(2026, 8, 1)), phone="13900000001")                # repeat: one before, one in
    many(2, date(2026, 8, 2), phone="13900000002")                       # repeat: two in the period
    complaint(at(date(2025, 6, 1)), phone="13900000003")                # 14 months before: too long ago
    complaint(at(date(2026, 8, 3)), phone="13900000003")
    complaint(at(date(2026, 8, 4)), phone="13900000004")
    found = run()["repeat"]
    assert found == {"complainants": 4, "repeat_complainants": 2, "their_complaints": 3, "share": 50.0}
    assert "139" not in repr(run())


# ---- improvement measures: before and after -----------------------------------------------------------------
def test_each_earlier_measure_shows_its_category_before_and_after(app, people):
    review = ProcessInstance(version_id=version_id(), process_id="quarterly_review", status="running",
                             workflow_json="{}")
    db.session.add(review)
    db.session.flush()
    many(20, date(2026, 5, 5), category="claim_delay")
    many(6, date(2026, 8, 5), category="claim_delay")
    db.session.add_all([
        ImprovementMeasure(review_instance_id=review.id, period_start=date(2026, 4, 1), period_end=date(2026, 6, 30),
                           title="理赔时效专项整改", category="claim_delay", due_on=date(2026, 8, 31), state="done",
                           owner_id=people["management"].user.id),
        ImprovementMeasure(review_instance_id=review.id, period_start=date(2026, 4, 1), period_end=date(2026, 6, 30),
                           title="没有负责人也没有类别的措施", due_on=date(2026, 8, 31)),
        ImprovementMeasure(review_instance_id=review.id, period_start=date(2026, 7, 1), period_end=date(2026, 9, 30),
                           title="本期的措施", category="claim_delay", due_on=date(2026, 12, 31))])
    found = run()["measures"]
    assert [m["title"] for m in found] == ["理赔时效专项整改", "没有负责人也没有类别的措施"]      # this period's own: not yet
    fixed, vague = found
    assert (fixed["before"], fixed["after"], fixed["before_days"], fixed["after_days"]) == (20, 6, 91, 92)
    assert fixed["change_per_day_pct"] == round(100 * (6 / 92 - 20 / 91) / (20 / 91), 1)
    assert fixed["category"]["code"] == "claim_delay" and fixed["state"] == "done"
    assert (vague["before"], vague["after"], vague["category"], vague["change_per_day_pct"]) == (None, None, None, None)


# ---- filters and bad input ------------------------------------------------------------------------------------
def test_filters_restrict_every_section_and_a_group_holds_its_sub_categories(app):
    many(3, date(2026, 7, 2), channel="website", category="claim_amount")
    many(2, date(2026, 7, 2), channel="hotline", category="claim_delay")
    many(4, date(2026, 7, 2), channel="hotline", category="service_attitude")
    assert run(filters={"channel": "website"})["totals"]["count"] == 3
    assert run(filters={"category": "claims"})["totals"]["count"] == 5
    assert run(filters={"category": ["claims"], "channel": "hotline"})["totals"]["count"] == 2
    assert run(filters={"category": UNCODED})["totals"]["count"] == 0
    assert run(filters={"channel": ""})["totals"]["count"] == 9
    assert run(filters={"channel": "website"})["filters"] == {"channel": ["website"]}


@pytest.mark.parametrize("filters, code", [({"colour": "red"}, "unknown_dimension"),
                                           ({"category": "made_up"}, "unknown_value"),
                                           ({"channel": "fax"}, "unknown_value")])
def test_a_bad_filter_is_a_clear_error(app, filters, code):
    with pytest.raises(FilterError) as raised:
        analysis.compute(db.session, *Q3, filters=filters)
    assert raised.value.code == code and str(raised.value)


@pytest.mark.parametrize("start, end, code", [(date(2026, 9, 30), date(2026, 7, 1), "reversed"),
                                              (date(2020, 1, 1), date(2026, 1, 1), "too_long")])
def test_a_bad_period_is_a_clear_error(app, start, end, code):
    with pytest.raises(PeriodError) as raised:
        analysis.compute(db.session, start, end)
    assert raised.value.code == code


def test_quarters():
    assert analysis.quarter("2026Q4") == analysis.Period(date(2026, 10, 1), date(2026, 12, 31), "2026Q4")
    assert analysis.quarter("2024-q1").end == date(2024, 3, 31)
    assert analysis.previous_quarter(date(2027, 1, 1)).label == "2026Q4"
    assert analysis.period(date(2026, 1, 1), date(2026, 3, 31)).label == "2026Q1"
    for bad in ("2026Q5", "Q4", "", "2026 Q0"):
        with pytest.raises(PeriodError):
            analysis.quarter(bad)


# ---- reports ---------------------------------------------------------------------------------------------------
def test_a_report_is_attached_to_an_instance_and_found_again(app):
    row = complaint(at(date(2026, 7, 5)))
    inst = instance_of(row, "quarterly_review")
    report = analysis.attach(db.session, inst.id, *Q3, "scheduler")
    db.session.commit()
    assert report.id and report.label == "2026Q3" and report.data["totals"]["count"] == 1
    again = analysis.attach(db.session, None, *Q3, "manager")
    db.session.commit()
    assert [r.id for r in analysis.reports_of(db.session, inst.id)] == [report.id]
    assert analysis.latest_of(db.session, inst.id).id == report.id and again.instance_id is None
    assert db.session.get(AnalysisReport, report.id).data == report.data

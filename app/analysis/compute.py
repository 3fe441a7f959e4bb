"""The analysis of a period, as one JSON-serialisable dict: what the analysis page shows and the quarterly
review stores. Each section is a few grouped counts over indexed columns of complaint, deadline,
survey_response and improvement_measure; no complaint is loaded one by one and no workflow is read.

Which complaints each section counts:
- volume, trend, dimensions, top problems, repeat complainants, reviews: received in the period;
- outcomes, dissatisfied rounds, handling time, satisfaction survey: closed in the period;
- deadline compliance per step: deadlines closed (met, or missed when their timer fired) in the period;
- the decision clock: complaints whose regulatory decision was due in the period."""
from datetime import date

from flask import current_app, has_app_context

from ..timeutil import utcnow
from . import deadlines, handling, measures, outcomes, problems, repeat, satisfaction, volume
from .dimensions import clean_filters, complaint_process, conditions, dimensions
from .periods import Period, bucket_kind, buckets, period

SCHEMA = 1                          # the shape of the dict, stored with each report
# The review (核查) of a decision is the process worked only by someone independent of the handling (config
# INDEPENDENT_PROCESSES): a complaint with an instance of it was reviewed.
DEFAULT_REVIEW_PROCESSES = ("complaint_review",)
TOP_DIMENSIONS = ("category", "cause_code")


def compute(session, start: date, end: date, *, filters: dict | None = None, label: str = "") -> dict:
    """The analysis of the business dates start..end (inclusive, Asia/Shanghai), restricted by `filters`
    ({dimension: code or [codes]}). Raises periods.PeriodError or dimensions.FilterError on bad input."""
    p = period(start, end, label)
    dims = dimensions(session)
    where = conditions(dims, filters)
    instants = p.instants()
    found = volume.counts(session, dims, p, where)
    tables = {name: volume.table(dims[name], counts) for name, counts in found.items()}
    totals = volume.totals(tables["category"], len(buckets(p)))
    process_id = complaint_process()
    return {
        "schema": SCHEMA, "generated_at": utcnow().isoformat(),
        "period": {**p.as_dict(), "previous": p.previous().as_dict(), "year_ago": p.year_ago().as_dict(),
                   "bucket": bucket_kind(p), "buckets": [b.as_dict() for b in buckets(p)]},
        "filters": clean_filters(filters),
        "totals": totals,
        "dimensions": tables,
        "top": {name: problems.top(tables[name], totals) for name in TOP_DIMENSIONS},
        "noise_rule": problems.rule(),
        "deadlines": {"steps": deadlines.steps(session, instants, where),
                      "decision_clock": deadlines.decision_clock(session, instants, where)},
        "closed": outcomes.closed(session, instants, where),
        "reviews": outcomes.reviewed(session, instants, where, _review_processes()),
        "repeat": repeat.repeat_complainants(session, p, instants, where),
        "handling": handling.handling_time(session, instants, where),
        "satisfaction": satisfaction.survey(session, instants, where, process_id),
        "measures": measures.before_and_after(session, p, {i["code"]: i["count"] for i in tables["category"]},
                                              dims["category"], where),
    }


def of_period(session, p: Period, filters=None) -> dict:
    return compute(session, p.start, p.end, filters=filters, label=p.label)


def _review_processes():
    if has_app_context():
        return current_app.config.get("INDEPENDENT_PROCESSES") or DEFAULT_REVIEW_PROCESSES
    return DEFAULT_REVIEW_PROCESSES

"""The improvement measures of earlier reviews (C-5.3, C-5.4) and whether they worked: for each measure
decided for a period that ended before this one starts, the complaints of its category received in its
review's period (before) and in this period (after), with the same filters, and the change per day (the
two periods need not be of the same length). One grouped count per distinct earlier period."""
from sqlalchemy import func, select

from ..models import Complaint, ImprovementMeasure
from .periods import Period

MAX_MEASURES = 200          # the newest ones, should a long history hold more


def earlier(session, p: Period) -> list:
    return session.execute(select(ImprovementMeasure).where(ImprovementMeasure.period_end < p.start)
                           .order_by(ImprovementMeasure.period_end.desc(), ImprovementMeasure.id)
                           .limit(MAX_MEASURES)).scalars().all()


def _counts_in(session, p: Period, categories: set, where: list) -> dict:
    start, end = p.instants()
    rows = session.execute(select(Complaint.category, func.count())
                           .where(Complaint.received_at >= start, Complaint.received_at < end,
                                  Complaint.category.in_(sorted(categories)), *where)
                           .group_by(Complaint.category)).all()
    return dict(rows)


def before_and_after(session, p: Period, now_counts: dict, dimension, where: list) -> list[dict]:
    """One entry per earlier measure; `now_counts` is {category: complaints in this period}."""
    found = earlier(session, p)
    periods = {(m.period_start, m.period_end) for m in found}
    before = {}
    for start, end in periods:
        wanted = {m.category for m in found if (m.period_start, m.period_end) == (start, end) and m.category}
        before[(start, end)] = _counts_in(session, Period(start, end), wanted, where) if wanted else {}
    return [_entry(m, before[(m.period_start, m.period_end)], now_counts, p, dimension) for m in found]


def _entry(m, before: dict, now_counts: dict, p: Period, dimension) -> dict:
    days_before = Period(m.period_start, m.period_end).days
    n_before = before.get(m.category, 0) if m.category else None
    n_after = now_counts.get(m.category, 0) if m.category else None
    change = None
    if m.category and n_before:
        change = round(100.0 * (n_after / p.days - n_before / days_before) / (n_before / days_before), 1)
    return {"id": m.id, "title": m.title, "state": m.state, "escalated": m.escalated,
            "due_on": m.due_on.isoformat(), "period_start": m.period_start.isoformat(),
            "period_end": m.period_end.isoformat(), "review_instance_id": m.review_instance_id,
            "category": dimension.item(dimension.key(m.category)) if m.category else None,
            "before": n_before, "before_days": days_before, "after": n_after, "after_days": p.days,
            "change_per_day_pct": change}

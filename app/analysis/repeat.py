"""Repeat complainants: of the people who complained in the period, how many had complained at least twice
in the period and the twelve months before it, and how many of the period's complaints they made. A person
is their phone number as registered (indexed); the output holds numbers only, never a number or a name.
One grouped pass over the complaints received from a year before the period's start to its end."""
from sqlalchemy import and_, case, func, select

from ..models import Complaint
from .periods import business_midnight, shift_years

MIN_COMPLAINTS = 2


def repeat_complainants(session, period, instants: tuple, where: list) -> dict:
    lookback = business_midnight(shift_years(period.start, -1))
    in_period = and_(Complaint.received_at >= instants[0], *where)
    per_phone = (select(func.count().label("all"), func.count(case((in_period, 1))).label("now"))
                 .where(Complaint.received_at >= lookback, Complaint.received_at < instants[1])
                 .group_by(Complaint.phone).subquery())
    repeats = per_phone.c.all >= MIN_COMPLAINTS
    complainants, n_repeat, their_complaints = session.execute(
        select(func.count(), func.count(case((repeats, 1))), func.coalesce(func.sum(case((repeats, per_phone.c.now))), 0))
        .where(per_phone.c.now > 0)).one()
    return {"complainants": complainants, "repeat_complainants": n_repeat, "their_complaints": int(their_complaints),
            "share": round(100.0 * n_repeat / complainants, 1) if complainants else None}

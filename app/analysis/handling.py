"""Handling time of the complaints closed in the period (closed_at - received_at, in hours): median and
90th percentile, computed by the database.

PostgreSQL: percentile_cont(0.5) and percentile_cont(0.9) in one aggregate. SQLite has no percentile
function: the count first, then for each percentile the two values around its position read with ORDER BY
... LIMIT 2 OFFSET k, interpolated as percentile_cont does — the same, exact figures, from at most two
rows per percentile (SQLite sorts the period's closed complaints to find them)."""
import math

from sqlalchemy import and_, extract, func, select

from ..models import Complaint

PERCENTILES = {"median_hours": 0.5, "p90_hours": 0.9}


def hours_between(dialect: str, start, end):
    """end - start in hours, computed by the database."""
    if dialect == "postgresql":
        return extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def handling_time(session, instants: tuple, where: list) -> dict:
    """{closed, mean_hours, median_hours, p90_hours, exact} of the complaints closed in [from, to)."""
    dialect = session.get_bind().dialect.name
    hours = hours_between(dialect, Complaint.received_at, Complaint.closed_at)
    closed = [Complaint.closed_at >= instants[0], Complaint.closed_at < instants[1], *where]
    if dialect == "postgresql":
        row = session.execute(select(func.count(), func.avg(hours),
                                     *(func.percentile_cont(p).within_group(hours) for p in PERCENTILES.values()))
                              .where(*closed)).one()
        n, mean, figures = row[0], row[1], dict(zip(PERCENTILES, row[2:]))
    else:
        n, mean = session.execute(select(func.count(), func.avg(hours)).where(*closed)).one()
        figures = {name: _sqlite_percentile(session, hours, and_(*closed), n, p) for name, p in PERCENTILES.items()}
    return {"closed": n, "mean_hours": _round(mean), **{k: _round(v) for k, v in figures.items()}, "exact": True}


def _sqlite_percentile(session, hours, condition, n: int, p: float):
    """percentile_cont(p) of `hours` over the n rows matching `condition`, from the two rows around it."""
    if not n:
        return None
    position = p * (n - 1)
    low = math.floor(position)
    values = session.execute(select(hours).where(condition).order_by(hours).limit(2).offset(low)).scalars().all()
    if len(values) == 1 or position == low:
        return values[0]
    return values[0] + (values[1] - values[0]) * (position - low)


def _round(value):
    return None if value is None else round(float(value), 1)

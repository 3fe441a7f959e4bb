"""How many complaints were received, per dimension value and per bucket of the trend, in the period and in
the two periods it is compared with: one grouped count per dimension and run of adjoining periods (the
quarter before and the quarter; a year earlier), each a range of the index on the received time that also
holds the dimensions (ix_complaint_analysis), so that PostgreSQL reads it alone. Periods that overlap (a
period of more than a year and the one a year earlier) are counted apart."""
from sqlalchemy import case, func, select

from ..models import Complaint
from .periods import Period, buckets

PREVIOUS, YEAR_AGO = "previous", "year_ago"


def slots(p: Period) -> list[tuple]:
    """(slot, from, to) in UTC: each bucket of the trend (slot = its index), then the comparison periods."""
    out = [(i, *Period(b.start, b.end).instants()) for i, b in enumerate(buckets(p))]
    return out + [(PREVIOUS, *p.previous().instants()), (YEAR_AGO, *p.year_ago().instants())]


def contiguous_runs(found: list[tuple]) -> list[list[tuple]]:
    """The slots in runs, each slot starting where the one before it ends (the period before and the
    period's buckets; a year earlier on its own): each run is one range of the received-time index, read
    from the index alone. Runs may overlap (a period of more than a year and a year earlier): each is
    counted by a statement of its own."""
    runs = []
    for slot in sorted(found, key=lambda s: s[1]):
        if runs and runs[-1][-1][2] == slot[1]:
            runs[-1].append(slot)
        else:
            runs.append([slot])
    return runs


def _count_by(session, column, run: list[tuple], where: list) -> list[tuple]:
    """(slot, value, count) of the rows whose received time falls in `run`."""
    received = Complaint.received_at
    in_run = [received >= run[0][1], received < run[-1][2], *where]
    if len(run) == 1:
        rows = session.execute(select(column, func.count()).where(*in_run).group_by(column)).all()
        return [(run[0][0], value, n) for value, n in rows]
    which = case(*((received < end, index) for index, (_slot, _start, end) in enumerate(run[:-1])), else_=len(run) - 1)
    rows = session.execute(select(which, column, func.count()).where(*in_run).group_by(which, column)).all()
    return [(run[index][0], value, n) for index, value, n in rows]


def _entries(dimension, found: list[tuple], n_buckets: int) -> dict:
    """{item key: {"trend": [per bucket], "count", "previous", "year_ago"}} from (slot, value, count) rows."""
    out = {}
    for slot, value, n in found:
        entry = out.setdefault(dimension.key(value), {"trend": [0] * n_buckets, "count": 0, PREVIOUS: 0, YEAR_AGO: 0})
        if isinstance(slot, int):
            entry["trend"][slot] += n
            entry["count"] += n
        else:
            entry[slot] += n
    return out


def counts(session, dims: dict, p: Period, where: list) -> dict:
    """{dimension: {item key: {"trend", "count", "previous", "year_ago"}}} for every dimension of `dims`."""
    runs = contiguous_runs(slots(p))
    n_buckets = len(buckets(p))
    return {name: _entries(dim, [row for run in runs for row in _count_by(session, dim.column, run, where)], n_buckets)
            for name, dim in dims.items()}


def table(dimension, found: dict) -> list[dict]:
    """The dimension's items, most complaints first (then by code), each labelled."""
    order = sorted(found, key=lambda key: (-found[key]["count"], -found[key][PREVIOUS], key))
    return [{**dimension.item(key), **found[key]} for key in order]


def totals(items: list[dict], n_buckets: int) -> dict:
    """The period's total, per bucket, and the comparison periods' totals, summed over one dimension's items
    (every complaint counts under one item of a dimension, uncoded included)."""
    return {"count": sum(i["count"] for i in items), PREVIOUS: sum(i[PREVIOUS] for i in items),
            YEAR_AGO: sum(i[YEAR_AGO] for i in items),
            "trend": [sum(i["trend"][b] for i in items) for b in range(n_buckets)]}

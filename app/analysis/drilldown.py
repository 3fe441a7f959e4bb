"""The complaints behind a figure of the analysis: those received in a period (or one bucket of its trend),
with the analysis's filters and the value of one dimension, newest first — indexed columns only and no
personal data (number, received, category, product line, channel, status, outcome)."""
from sqlalchemy import func, select

from ..models import Complaint
from .dimensions import conditions
from .periods import Period

COLUMNS = (Complaint.number, Complaint.received_at, Complaint.category, Complaint.product_line, Complaint.channel,
           Complaint.status, Complaint.outcome)
PER_PAGE = 50


def query(dims: dict, p: Period, filters: dict, extra=()):
    """SELECT of COLUMNS for the complaints received in `p` matching `filters` (and `extra` conditions)."""
    start, end = p.instants()
    return select(*COLUMNS).where(Complaint.received_at >= start, Complaint.received_at < end,
                                  *conditions(dims, filters), *extra)


def page(session, stmt, number: int, per_page=PER_PAGE) -> dict:
    """{rows, total, page, pages} of one page of `stmt`, newest first."""
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    pages = max((total + per_page - 1) // per_page, 1)
    number = min(max(number, 1), pages)
    rows = session.execute(stmt.order_by(Complaint.received_at.desc(), Complaint.id.desc())
                           .limit(per_page).offset((number - 1) * per_page)).all()
    return {"rows": rows, "total": total, "page": number, "pages": pages}


def stream(session, stmt, batch=2000):
    """Every row of `stmt`, newest first, fetched `batch` at a time (a server-side cursor on PostgreSQL)."""
    ordered = stmt.order_by(Complaint.received_at.desc(), Complaint.id.desc())
    result = session.execute(ordered.execution_options(yield_per=batch))
    for rows in result.partitions():
        yield from rows

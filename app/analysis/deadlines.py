"""Deadline compliance: per step (each timer of the procedures, table deadline) how many deadlines closed
in the period were met and how many missed — every process's (the complaints' own and the processes beside
them, and the quarterly review's measure deadlines, each under its own timer's name), or, with filters on
the complaints, those of the matching complaints' instances (linked by the complaint number); and the
regulator's decision clock (监管时限) of the complaints whose decision was due in the period: decided by
decision_due_at (met), decided later or not decided and overdue (missed), or not yet due; a clock a withdrawal
stopped is none of them."""
from sqlalchemy import and_, case, func, or_, select

from ..models import Complaint, Deadline, ProcessInstance
from ..timeutil import utcnow


def _closed_in(instants: tuple) -> list:
    return [Deadline.closed_at >= instants[0], Deadline.closed_at < instants[1], Deadline.state.in_(("met", "missed"))]


def steps(session, instants: tuple, where: list) -> list[dict]:
    """Met and missed per timer, counted from the index (closed_at, state, element_id) alone."""
    query = (select(Deadline.element_id, Deadline.state, func.count()).where(*_closed_in(instants))
             .group_by(Deadline.element_id, Deadline.state))
    if where:           # the join costs a third of a second at 100,000 complaints: only when it restricts something
        query = (query.join(ProcessInstance, ProcessInstance.id == Deadline.instance_id)
                 .join(Complaint, Complaint.number == ProcessInstance.business_key).where(*where))
    out = {}
    for element_id, state, n in session.execute(query).all():
        out.setdefault(element_id, {"element_id": element_id, "met": 0, "missed": 0})[state] += n
    for element_id, entry in out.items():
        entry["name"], entry["host_element_id"] = _names(session, instants, element_id)
        entry["rate"] = _rate(entry["met"], entry["met"] + entry["missed"])
    return sorted(out.values(), key=lambda e: (-(e["met"] + e["missed"]), e["element_id"]))


def _names(session, instants: tuple, element_id) -> tuple:
    """(name, host element) of a timer, from one of its deadlines of the period (a timer's name is its
    diagram's; one row read by the index)."""
    return tuple(session.execute(select(Deadline.name, Deadline.host_element_id)
                                 .where(*_closed_in(instants), Deadline.element_id == element_id).limit(1)).one())


def decision_clock(session, instants: tuple, where: list, now=None) -> dict:
    now = now or utcnow()
    due, decided = Complaint.decision_due_at, Complaint.decided_at
    met = and_(decided.is_not(None), decided <= due)
    missed = or_(decided > due, and_(decided.is_(None), due < now))
    # A clock a withdrawal stopped before its end came due for nothing: neither met, missed nor pending.
    counted = Complaint.decision_clock.is_distinct_from("stopped")
    total, n_met, n_missed = session.execute(
        select(func.count(), func.count(case((met, 1))), func.count(case((missed, 1))))
        .where(due >= instants[0], due < instants[1], counted, *where)).one()
    return {"due": total, "met": n_met, "missed": n_missed, "pending": total - n_met - n_missed,
            "rate": _rate(n_met, n_met + n_missed)}


def _rate(met: int, closed: int):
    return round(100.0 * met / closed, 1) if closed else None

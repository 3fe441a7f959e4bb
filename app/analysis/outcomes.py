"""The complaints closed in the period: how they ended (outcome: resolved, not accepted, malicious,
withdrawn), whether the customer was satisfied, and how many dissatisfied rounds they took (each round the
customer was not satisfied and the complaint was handled again) — one grouped count. And how many of the
complaints received in the period were reviewed (核查) — one count, the review instances read once."""
from sqlalchemy import case, func, select

from ..models import Complaint, ProcessInstance

ROUNDS_CAP = 3                  # 3 stands for "3 or more"
RATES = ("malicious", "not_accepted")


def closed(session, instants: tuple, where: list) -> dict:
    rounds = case((Complaint.rounds >= ROUNDS_CAP, ROUNDS_CAP), else_=func.coalesce(Complaint.rounds, 0))
    rows = session.execute(select(Complaint.outcome, Complaint.satisfied, rounds, func.count())
                           .where(Complaint.closed_at >= instants[0], Complaint.closed_at < instants[1], *where)
                           .group_by(Complaint.outcome, Complaint.satisfied, rounds)).all()
    total = sum(n for *_k, n in rows)
    outcomes, by_rounds, satisfied = {}, {str(r): 0 for r in range(ROUNDS_CAP + 1)}, {"yes": 0, "no": 0, "unknown": 0}
    for outcome, happy, r, n in rows:
        outcomes[outcome or "none"] = outcomes.get(outcome or "none", 0) + n
        by_rounds[str(r)] += n
        satisfied["unknown" if happy is None else "yes" if happy else "no"] += n
    return {"closed": total, "outcomes": outcomes,
            "rates": {code: _share(outcomes.get(code, 0), total) for code in RATES},
            "rounds": by_rounds, "reopened": total - by_rounds["0"], "reopened_rate": _share(total - by_rounds["0"], total),
            "satisfied": satisfied}


def reviewed(session, instants: tuple, where: list, review_processes) -> dict:
    """{received, reviewed, rate}: complaints received in the period with a review (核查) instance."""
    # Not correlated: the reviews' complaint numbers are read once (PostgreSQL hashes them).
    has_review = Complaint.number.in_(select(ProcessInstance.business_key)
                                      .where(ProcessInstance.process_id.in_(list(review_processes))))
    received, n = session.execute(
        select(func.count(), func.count(case((has_review, 1))))
        .where(Complaint.received_at >= instants[0], Complaint.received_at < instants[1], *where)).one()
    return {"received": received, "reviewed": n, "rate": _share(n, received)}


def _share(n: int, total: int):
    return round(100.0 * n / total, 1) if total else None

"""Where complaints are, per diagram element, from the flat tables (never the workflows): how many
wait there now, how many of those are overdue, and the median time spent there over a period."""
from datetime import datetime
from statistics import median

from sqlalchemy import case, func, select

from .models import HumanTask


def element_stats(session, process_instance_ids_query, now: datetime, since: datetime, until: datetime) -> dict:
    """element id -> {"waiting", "overdue", "completed", "median_hours"}.

    `process_instance_ids_query` selects the instance ids to count (e.g. all instances of a process)."""
    out = {}
    waiting = session.execute(
        select(HumanTask.element_id, func.count(),
               func.sum(case((HumanTask.due_at < now, 1), else_=0)))
        .where(HumanTask.state == "open", HumanTask.instance_id.in_(process_instance_ids_query))
        .group_by(HumanTask.element_id)).all()
    for element_id, count, overdue in waiting:
        out[element_id] = {"waiting": count, "overdue": int(overdue or 0), "completed": 0, "median_hours": None}
    durations = {}
    for element_id, created, completed in session.execute(
            select(HumanTask.element_id, HumanTask.created_at, HumanTask.completed_at)
            .where(HumanTask.state == "completed", HumanTask.completed_at >= since, HumanTask.completed_at < until,
                   HumanTask.instance_id.in_(process_instance_ids_query))):
        durations.setdefault(element_id, []).append((completed - created).total_seconds() / 3600)
    for element_id, hours in durations.items():
        row = out.setdefault(element_id, {"waiting": 0, "overdue": 0, "completed": 0, "median_hours": None})
        row["completed"], row["median_hours"] = len(hours), round(median(hours), 2)
    return out

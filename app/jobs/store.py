"""Background jobs as rows: create one with its items, cancel it, and read its progress and results. All
of it is queries on background_job and background_job_item, so any web worker answers them."""
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import func, select, update

from .. import audit
from ..models import BackgroundJob, BackgroundJobItem
from ..timeutil import utcnow
from .kinds import KINDS, OUTCOMES

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
STATES = ACTIVE + FINISHED


@dataclass(frozen=True)
class NewItem:
    key: str
    label: Optional[str] = None
    data: Optional[dict] = None


def create(session, kind: str, started_by: str, params: dict, items: Iterable[NewItem]) -> BackgroundJob:
    """A queued job and its items (in the caller's transaction: it commits, e.g. with the audit event that
    says the job was asked for). `params` must hold no personal data."""
    if kind not in KINDS:
        raise ValueError(f"no job kind {kind!r}")
    items = list(items)
    job = BackgroundJob(kind=kind, started_by=started_by, params=params, state="queued", total=len(items),
                        done_count=0, takeovers=0)
    session.add(job)
    session.flush()
    if items:
        session.execute(BackgroundJobItem.__table__.insert(), [
            {"job_id": job.id, "seq": seq, "key": item.key, "label": item.label, "data": item.data}
            for seq, item in enumerate(items)])
    return job


def cancel(session, job_id: int, actor: str) -> bool:
    """Stop a queued or running job: its runner stops before its next batch (what a batch already did stays
    done, and its result list says so). Audited; commits; False when the job had finished already."""
    now = utcnow()
    stopped = session.execute(update(BackgroundJob).where(BackgroundJob.id == job_id, BackgroundJob.state.in_(ACTIVE))
                              .values(state="cancelled", finished_at=now, claimed_by=None, lease_until=None)
                              .execution_options(synchronize_session=False)).rowcount
    if stopped:
        audit.record(session, actor, "job_cancelled", data={"job": job_id})
    session.commit()
    return bool(stopped)


def outcome_counts(session, job_id: int) -> dict:
    """{outcome: items} of every outcome, 0 for those none has."""
    rows = session.execute(select(BackgroundJobItem.outcome, func.count()).where(
        BackgroundJobItem.job_id == job_id, BackgroundJobItem.outcome.is_not(None))
        .group_by(BackgroundJobItem.outcome)).all()
    return {**dict.fromkeys(OUTCOMES, 0), **dict(rows)}


def items(session, job_id: int, page: int, per_page: int) -> list:
    """One page of the job's items in their order, done or not."""
    return session.execute(select(BackgroundJobItem).where(BackgroundJobItem.job_id == job_id)
                           .order_by(BackgroundJobItem.seq).limit(per_page).offset((page - 1) * per_page)) \
        .scalars().all()


def progress(session, job: BackgroundJob) -> dict:
    """What the progress bar shows (and /jobs/<id>.json answers)."""
    total, done = job.total, job.done_count
    return {"id": job.id, "kind": job.kind, "state": job.state, "total": total, "done": done,
            "percent": 100 if not total and job.state == "done" else (done * 100 // total if total else 0),
            "outcomes": outcome_counts(session, job.id), "finished": job.state in FINISHED,
            "error": job.error}


def of_user(session, username: str, kind: Optional[str] = None, limit: int = 50) -> list:
    """A user's jobs, newest first."""
    stmt = select(BackgroundJob).where(BackgroundJob.started_by == username)
    if kind:
        stmt = stmt.where(BackgroundJob.kind == kind)
    return session.execute(stmt.order_by(BackgroundJob.id.desc()).limit(limit)).scalars().all()


def listing(session, everyone: bool = False, limit: int = 100) -> list:
    """Jobs newest first: the active ones, or every one (the `flask jobs list` command)."""
    stmt = select(BackgroundJob)
    if not everyone:
        stmt = stmt.where(BackgroundJob.state.in_(ACTIVE))
    return session.execute(stmt.order_by(BackgroundJob.id.desc()).limit(limit)).scalars().all()

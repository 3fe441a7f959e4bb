"""Working background jobs: claim one, do its pending items a small batch at a time, finish it.

Claiming takes a row lock: on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` (two runners never wait for each
other and never take the same job), then a conditional UPDATE that only succeeds while the job is still
claimable (SQLite has no row locks: the UPDATE alone decides, under its write lock). A claimed job carries
its runner's name and a lease; before each batch the runner renews the lease, conditionally again, so a
runner whose job was cancelled or taken over stops there. Each batch's outcomes commit together; an item
whose effect committed on its own (a migration is its own transaction) and whose outcome did not is run
again by whoever carries on, and the kind's verb finds it done (kinds.py). A runner that dies leaves its
lease to run out; the next one takes the job over (MAX_TAKEOVERS times, then the job fails: an item that
kills its runner every time must not stop every other job)."""
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import OperationalError

from ..models import BackgroundJob, BackgroundJobItem
from ..timeutil import utcnow
from .kinds import FAILED, KINDS

log = logging.getLogger(__name__)
LEASE_SECONDS = 120          # renewed before every batch: a batch must take far less
MAX_TAKEOVERS = 3
MORE, DONE, LOST, FAILED_JOB = "more", "done", "lost", "failed"


@dataclass
class Context:
    """What the kinds may use: the session (committed per batch), the engine runtime, the jobs' files
    (files.JobFiles)."""
    session: Any
    runtime: Any = None
    files: Any = None
    lease_seconds: int = LEASE_SECONDS
    keep: timedelta = field(default_factory=lambda: timedelta(hours=24))     # a result file's life


@dataclass(frozen=True)
class Job:
    """A job as its items see it (read afresh before each batch, never an ORM object that a verb's commit
    could expire or change)."""
    id: int
    kind: str
    started_by: str
    params: dict


@dataclass(frozen=True)
class Item:
    id: int
    seq: int
    key: str
    label: Optional[str]
    data: Optional[dict]


def _claimable(now):
    return or_(BackgroundJob.state == "queued",
               and_(BackgroundJob.state == "running",
                    or_(BackgroundJob.lease_until.is_(None), BackgroundJob.lease_until <= now)))


def _update(*where):
    return update(BackgroundJob).where(*where).execution_options(synchronize_session=False)


def claim(session, worker: str, lease_seconds: int = LEASE_SECONDS) -> Optional[int]:
    """Take the oldest job that is queued, or running with no live lease; its id, or None. Commits."""
    for _attempt in range(5):
        now = utcnow()
        stmt = select(BackgroundJob.id, BackgroundJob.claimed_by, BackgroundJob.takeovers) \
            .where(_claimable(now)).order_by(BackgroundJob.id).limit(1)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        row = session.execute(stmt).first()
        if row is None:
            session.rollback()
            return None
        taken_over = row.claimed_by is not None          # its runner's lease ran out: it did not let go
        if taken_over and row.takeovers >= MAX_TAKEOVERS:
            _fail(session, row.id, f"its runner stopped {row.takeovers + 1} times in the middle")
            continue
        values = {"state": "running", "claimed_by": worker, "lease_until": now + timedelta(seconds=lease_seconds),
                  "started_at": func.coalesce(BackgroundJob.started_at, now),
                  "takeovers": BackgroundJob.takeovers + (1 if taken_over else 0)}
        taken = session.execute(_update(BackgroundJob.id == row.id, _claimable(now)).values(**values)).rowcount
        session.commit()
        if taken:
            if taken_over:
                log.warning("job %s: taken over by %s from %s, whose lease ran out", row.id, worker, row.claimed_by)
            return row.id
    return None


def release(session, job_id: int, worker: str):
    """Let go of a job between batches (a pass's time is up): any runner may carry on with it at once."""
    session.execute(_update(BackgroundJob.id == job_id, BackgroundJob.claimed_by == worker,
                            BackgroundJob.state == "running").values(claimed_by=None, lease_until=None))
    session.commit()


def _renew(session, job_id, worker, lease_seconds) -> Optional[Job]:
    """The job, its lease renewed, while this runner still holds it; None when it was cancelled or taken over."""
    now = utcnow()
    held = session.execute(_update(BackgroundJob.id == job_id, BackgroundJob.claimed_by == worker,
                                   BackgroundJob.state == "running")
                           .values(lease_until=now + timedelta(seconds=lease_seconds))).rowcount
    row = session.execute(select(BackgroundJob.kind, BackgroundJob.started_by, BackgroundJob.params)
                          .where(BackgroundJob.id == job_id)).one_or_none() if held else None
    session.commit()
    return Job(job_id, row.kind, row.started_by, dict(row.params or {})) if row else None


def _pending(session, job_id, limit) -> list[Item]:
    rows = session.execute(select(BackgroundJobItem.id, BackgroundJobItem.seq, BackgroundJobItem.key,
                                  BackgroundJobItem.label, BackgroundJobItem.data)
                           .where(BackgroundJobItem.job_id == job_id, BackgroundJobItem.outcome.is_(None))
                           .order_by(BackgroundJobItem.seq).limit(limit)).all()
    session.rollback()       # end the read: a verb opens its own transaction
    return [Item(*row) for row in rows]


def run_batch(ctx: Context, job_id: int, worker: str) -> str:
    """One batch of the job this runner holds: MORE (pending items remain), DONE, FAILED_JOB, or LOST (it
    was cancelled or taken over: stop)."""
    job = _renew(ctx.session, job_id, worker, ctx.lease_seconds)
    if job is None:
        return LOST
    kind = KINDS[job.kind]
    items = _pending(ctx.session, job_id, kind.batch)
    if not items:
        return _finish(ctx, job, kind, worker)
    _record(ctx.session, job_id, [(item.id, *_run_item(ctx, kind, job, item)) for item in items])
    return MORE


def _run_item(ctx, kind, job, item):
    try:
        outcome, message = kind.run(ctx, job, item)
    except OperationalError:      # the database is busy or gone: not the item's failure (work() lets the job go)
        ctx.session.rollback()
        raise
    except Exception as exc:      # noqa: BLE001  (one item's failure is its own; the others go on)
        ctx.session.rollback()
        log.exception("job %s (%s): item %s failed", job.id, job.kind, item.key)
        return FAILED, type(exc).__name__
    return outcome, (message or None) and str(message)[:1000]


def _record(session, job_id, results):
    """The batch's outcomes (an item a concurrent runner recorded first keeps its own), and the job's count."""
    now = utcnow()
    for item_id, outcome, message in results:
        session.execute(update(BackgroundJobItem).where(BackgroundJobItem.id == item_id,
                                                        BackgroundJobItem.outcome.is_(None))
                        .values(outcome=outcome, message=message, done_at=now)
                        .execution_options(synchronize_session=False))
    done = select(func.count()).select_from(BackgroundJobItem).where(
        BackgroundJobItem.job_id == job_id, BackgroundJobItem.outcome.is_not(None)).scalar_subquery()
    session.execute(_update(BackgroundJob.id == job_id).values(done_count=done))
    session.commit()


def _finish(ctx, job, kind, worker) -> str:
    try:
        result = kind.finish(ctx, job) if kind.finish else None
    except OperationalError:      # the database is busy or gone: not the job's failure (work() lets it go)
        ctx.session.rollback()
        raise
    except Exception as exc:      # noqa: BLE001  (the job fails, the runner goes on with the next)
        ctx.session.rollback()
        log.exception("job %s (%s): finishing failed", job.id, job.kind)
        _fail(ctx.session, job.id, f"finishing failed: {type(exc).__name__}", worker)
        return FAILED_JOB
    now = utcnow()
    done = ctx.session.execute(_update(BackgroundJob.id == job.id, BackgroundJob.claimed_by == worker,
                                       BackgroundJob.state == "running").values(
        state="done", finished_at=now, claimed_by=None, lease_until=None, result_file=result,
        expires_at=now + ctx.keep if result else None)).rowcount
    if not done:                # cancelled or taken over meanwhile: its result and its parts stay as they were
        ctx.session.rollback()
        return LOST
    ctx.session.commit()        # the result file (kind.finish) with the job's end
    return DONE


def _fail(session, job_id, error, worker=None):
    where = [BackgroundJob.id == job_id, BackgroundJob.state.in_(("queued", "running"))]
    if worker:
        where.append(BackgroundJob.claimed_by == worker)
    session.execute(_update(*where).values(state="failed", error=error[:500], finished_at=utcnow(),
                                           claimed_by=None, lease_until=None))
    session.commit()


def work(ctx: Context, worker: str, seconds: float, clock=time.monotonic) -> int:
    """Work jobs, oldest first, for about `seconds` (a batch started is finished); the jobs touched. A job not
    finished when the time is up is let go, for the next pass (of any runner) to carry on; so is one whose batch
    met a busy database (e.g. SQLite's write lock held past its timeout), and the pass ends there."""
    began, touched = clock(), 0
    while clock() - began < seconds:
        job_id = claim(ctx.session, worker, ctx.lease_seconds)
        if job_id is None:
            break
        touched += 1
        try:
            while run_batch(ctx, job_id, worker) == MORE:
                if clock() - began >= seconds:
                    release(ctx.session, job_id, worker)
                    return touched
        except OperationalError as exc:
            log.warning("job %s: the database refused a batch (%s); let go for the next pass", job_id,
                        type(getattr(exc, "orig", exc)).__name__)
            _let_go(ctx.session, job_id, worker)
            return touched
    return touched


def _let_go(session, job_id, worker):
    """Release the job after a database error; if even that fails, its lease runs out and it is taken over."""
    session.rollback()
    try:
        release(session, job_id, worker)
    except OperationalError:
        session.rollback()

"""The timer scheduler: an APScheduler interval job that fires due BPMN timers through the same
transactional path as every other change, one that sends due customer messages (app/outbox/), and
one that purges old failed-login counts, one that seals the audit trail's chains, one that works the
background jobs (app/jobs/: bulk migrations, big exports), and a cron job that starts each quarter's review
of complaints (C-5.4). The timer job also writes the scheduler's heartbeat
(at most once a minute) that /readyz reads. Run it as its own process (`flask scheduler run`)."""
import logging
import random
import time

from .errors import Conflict, ProcessError

log = logging.getLogger(__name__)
PURGE_MINUTES = 10


BATCH = 100               # due instances read per query


def fire_due_timers(app, batch=BATCH) -> int:
    """One pass: fire every instance whose next timer is due, `batch` at a time, until none is left
    that this pass has not tried (a backlog drains in one pass, not 100 per interval). Each instance
    is tried at most once per pass: one that another scheduler holds, that lost a race or that is
    still due after firing waits for the next pass, so a pass always ends. Each batch is walked from
    a random place in it, so two schedulers reading the same batch mostly take different instances
    (PostgreSQL skips a locked row; SQLite has no row locks, and a collision costs the loser its
    work). Returns how many were changed."""
    fired, began = 0, time.monotonic()
    tried: set[int] = set()
    with app.app_context():
        runtime = app.extensions["runtime"]
        while True:
            if time.monotonic() - began > HEARTBEAT_SECONDS:
                beat(app)        # a long pass (a backlog) is no sign of a dead scheduler to /readyz
            # Fired instances leave the due range; only those tried and still due are read again.
            due = [i for i in runtime.due_instance_ids(limit=batch + len(tried)) if i not in tried]
            if not due:
                return fired
            for instance_id in _from_random_place(due[:batch]):
                tried.add(instance_id)
                fired += _fire_one(runtime, instance_id)


def _from_random_place(ids: list) -> list:
    start = random.randrange(len(ids))
    return ids[start:] + ids[:start]


def _fire_one(runtime, instance_id) -> int:
    """Fire one instance's due timers in its own transaction; 1 when it changed. A failure is the
    instance's alone: it is logged (and a broken instance marked), never raised to the pass."""
    try:
        return 0 if runtime.fire_timers(instance_id) is None else 1
    except Conflict:
        log.info("instance %s changed concurrently; its timers are retried next pass", instance_id)
    except ProcessError as exc:
        log.error("instance %s: %s", instance_id, exc)
        runtime.mark_error(instance_id, str(exc))
    except Exception as exc:      # noqa: BLE001  (one broken instance must not stop every other timer)
        log.exception("instance %s: unexpected failure while firing its timers", instance_id)
        runtime.session.rollback()
        runtime.mark_error(instance_id, f"{type(exc).__name__}: {exc}")
    return 0


HEARTBEAT = "scheduler"          # the heartbeat row's name (SchedulerHeartbeat)
HEARTBEAT_SECONDS = 60           # the row is written at most this often


def beat(app, force=False) -> bool:
    """The scheduler's sign of life for /readyz: move its heartbeat row's time to now, at most once a
    HEARTBEAT_SECONDS (one small row of its own, never one that a handler's change writes). Never raises;
    True when written."""
    from sqlalchemy import update

    from .extensions import db
    from .models import SchedulerHeartbeat
    from .timeutil import utcnow

    last = app.extensions.get("scheduler_last_beat")
    if not force and last is not None and time.monotonic() - last < HEARTBEAT_SECONDS:
        return False
    with app.app_context():
        now = utcnow()
        try:
            moved = db.session.execute(update(SchedulerHeartbeat).where(SchedulerHeartbeat.name == HEARTBEAT)
                                       .values(beat_at=now)).rowcount
            if not moved:
                db.session.add(SchedulerHeartbeat(name=HEARTBEAT, beat_at=now))
            db.session.commit()
        except Exception:      # noqa: BLE001  (e.g. two schedulers writing the first row at once: the next beat)
            db.session.rollback()
            log.warning("the scheduler's heartbeat could not be written; tried again on the next pass", exc_info=True)
            return False
    app.extensions["scheduler_last_beat"] = time.monotonic()
    return True


def heartbeat_age(session):
    """How long ago a scheduler last beat (the newest heartbeat row; a Session or a Connection), None if none ever
    did: what /readyz, /metrics and a restore's in-use check read."""
    from sqlalchemy import func, select

    from .models import SchedulerHeartbeat
    from .timeutil import utcnow
    beat = session.execute(select(func.max(SchedulerHeartbeat.beat_at))).scalar_one()
    return None if beat is None else utcnow() - beat


def is_alive(age, config) -> bool:
    """A heartbeat of this age (heartbeat_age) says a scheduler runs: younger than SCHEDULER_HEARTBEAT_MAX_SECONDS."""
    return age is not None and age.total_seconds() <= config["SCHEDULER_HEARTBEAT_MAX_SECONDS"]


def beat_and_fire_due_timers(app) -> int:
    """The timer job: the heartbeat (if a minute has passed), then a pass over the due timers."""
    beat(app)
    return fire_due_timers(app)


def dispatch_outbox(dispatcher):
    """One dispatcher pass; a failure is logged and the next pass tries again. Returns the pass's
    counts, None when it failed."""
    try:
        counts = dispatcher.dispatch_due()
    except Exception:      # noqa: BLE001  (timers and later passes must go on whatever one pass met)
        log.exception("outbox dispatch failed; retried on the next pass")
        return None
    if counts.claimed or counts.escalated:
        log.info("outbox: %s", counts.as_dict())
    return counts


def purge_login_attempts(app) -> int:
    """Forget failed-login counts and locks older than the longest login window (one delete on
    window_start; the table only holds recent failures); returns how many rows went."""
    from .extensions import db
    from .login_limits import Limits, purge
    from .timeutil import utcnow

    with app.app_context():
        return purge(db.session, Limits.from_config(app.config), utcnow())


def seal_audit_trail(app):
    """Seal the audit chains that grew since the last seal; the seal's hash goes to the log too, so a
    copy lives outside the database."""
    from . import audit
    from .extensions import db

    with app.app_context():
        try:
            row = audit.seal(db.session, audit.seal_key(app.config))
        except Exception:      # noqa: BLE001  (the next pass seals what this one could not)
            db.session.rollback()
            log.exception("sealing the audit trail failed; retried on the next pass")
            return None
        if row is not None:
            log.info("audit seal %s over %s chains: %s", row.id, row.heads, row.hash)
        return row


def quarterly_trigger():
    """00:30 Beijing time on the first day of each quarter: the quarterly review of the quarter before."""
    from apscheduler.triggers.cron import CronTrigger

    from .timeutil import BUSINESS_TZ
    return CronTrigger(month="1,4,7,10", day=1, hour=0, minute=30, timezone=BUSINESS_TZ)


def start_quarterly_review(app):
    """The cron job: start the last quarter's review unless it exists (a repeated firing or a second
    scheduler starts nothing). Never raises: a failure is logged, and the next scheduler start retries."""
    from . import quarterly
    try:
        return quarterly.start_due_review(app)
    except Exception:      # noqa: BLE001  (the timers must go on whatever this job met)
        log.exception("the quarterly review could not be started; retried when the scheduler next starts")
        return None


def catch_up_quarterly_review(app, today=None):
    """At scheduler start and every hour: within the first days of a quarter, start the last quarter's
    review if the cron firing was missed or failed (the scheduler was down at 00:30 on the first day,
    the database unreachable). One indexed read when it exists."""
    from . import quarterly
    from .analysis import quarter_of
    from .timeutil import business_today
    today = today or business_today()
    if (today - quarter_of(today).start).days < quarterly.CATCH_UP_DAYS:
        return start_quarterly_review(app)
    return None


def send_digests(app):
    """Every hour: the handlers' morning digests not sent yet today (app.digest_mail). Never raises."""
    from . import digest_mail
    from .extensions import db
    with app.app_context():
        try:
            return digest_mail.send_digests(app)
        except Exception:      # noqa: BLE001  (the timers must go on whatever this job met)
            db.session.rollback()
            log.exception("sending the digests failed; retried at the next run")
            return 0


JOBS_INTERVAL_SECONDS = 5       # how often the scheduler looks for background jobs (app/jobs/)


def work_jobs(app):
    """Work background jobs (bulk migrations, big exports) for a bounded time, then delete expired export
    files. Never raises: a failure is logged, and the next pass carries on where this one stopped."""
    from .jobs.setup import run_pass
    try:
        return run_pass(app)
    except Exception:      # noqa: BLE001  (the timers must go on whatever this job met)
        log.exception("working the background jobs failed; the next pass carries on")
        return None


def run(app):
    from apscheduler.schedulers.blocking import BlockingScheduler

    from .outbox.dispatch import Dispatcher, interval_seconds

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(beat_and_fire_due_timers, "interval", args=[app],
                      seconds=app.config["SCHEDULER_INTERVAL_SECONDS"],
                      id="fire_due_timers", max_instances=1, coalesce=True)
    outbox_seconds = interval_seconds(app.config)
    scheduler.add_job(dispatch_outbox, "interval", args=[Dispatcher(app)], seconds=outbox_seconds,
                      id="dispatch_outbox", max_instances=1, coalesce=True)
    scheduler.add_job(purge_login_attempts, "interval", args=[app], minutes=PURGE_MINUTES,
                      id="purge_login_attempts", max_instances=1, coalesce=True)
    scheduler.add_job(seal_audit_trail, "interval", args=[app], minutes=app.config["AUDIT_SEAL_MINUTES"],
                      id="seal_audit_trail", max_instances=1, coalesce=True)
    # A late firing (a paused machine) still runs within the day; a failed one, or one missed while the
    # scheduler was down, is started by the hourly catch-up in the quarter's first days.
    scheduler.add_job(start_quarterly_review, quarterly_trigger(), args=[app], id="start_quarterly_review",
                      max_instances=1, coalesce=True, misfire_grace_time=24 * 3600)
    scheduler.add_job(catch_up_quarterly_review, "interval", args=[app], hours=1, id="catch_up_quarterly_review",
                      max_instances=1, coalesce=True)
    scheduler.add_job(send_digests, "interval", args=[app], hours=1, id="send_digests", max_instances=1, coalesce=True)
    scheduler.add_job(work_jobs, "interval", args=[app], seconds=JOBS_INTERVAL_SECONDS, id="work_jobs",
                      max_instances=1, coalesce=True)
    log.info("scheduler started: firing due timers every %ss, sending due messages every %ss",
             app.config["SCHEDULER_INTERVAL_SECONDS"], outbox_seconds)
    beat(app, force=True)
    fire_due_timers(app)    # catch up at once after downtime
    catch_up_quarterly_review(app)
    scheduler.start()

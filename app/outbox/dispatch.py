"""The dispatcher: claim a batch of due deliveries in one short transaction (status "sending" with a
lease; PostgreSQL skips rows another dispatcher locked, SQLite has one writer), send each outside any
transaction, then record the results in one transaction per batch. A dispatcher that dies after
sending and before recording leaves its deliveries "sending": once the lease expires another claims
and resends them with the same idempotency key (at-least-once)."""
import logging
import time
import traceback
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Optional

from sqlalchemy import and_, bindparam, func, or_, select, update

from .. import audit
from ..models import Complaint, Delivery, OutboxMessage
from ..timeutil import utcnow
from . import CHANNELS, undelivered
from .content import link_for, with_link
from .email import SmtpMailer
from .failures import PermanentFailure, TemporaryFailure
from .sms import HttpJsonGateway

log = logging.getLogger(__name__)
SETTING = {"email": "SMTP_HOST", "sms": "SMS_GATEWAY_URL"}
DEFAULT_LEASE_SECONDS = 300
DEFAULT_INTERVAL_SECONDS = 10
# The dispatcher's pace: a backlog (after an outage, say) drains at this many messages a second rather
# than at full speed, which would slow the handlers' own requests (see benchmarks/outbox.py). 0: no limit.
DEFAULT_MAX_PER_SECOND = 20


@dataclass
class Job:
    """One claimed delivery and what sending it needs (the address never leaves this object)."""
    delivery_id: int
    attempts: int
    channel: str
    message_id: int
    key: str
    template: str
    instance_id: int
    business_key: Optional[str]
    subject: str = ""
    body: str = ""
    sms_text: str = ""
    to: Optional[str] = field(default=None, repr=False)
    opted_out: bool = False


@dataclass
class Result:
    job: Job
    outcome: str                      # sent | retry | failed | released
    reason: Optional[str] = None
    provider_ref: Optional[str] = None


@dataclass
class Counts:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    escalated: int = 0

    def add(self, other: "Counts"):
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def interval_seconds(config) -> float:
    """Seconds between dispatcher passes (`flask outbox run`, `flask scheduler run`)."""
    return float(config.get("OUTBOX_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS))


def senders_from_config(config) -> dict:
    """channel -> sender for each configured channel (an unset SMTP_HOST / SMS_GATEWAY_URL leaves it out)."""
    found = {"email": SmtpMailer.from_config(config), "sms": HttpJsonGateway.from_config(config)}
    return {channel: sender for channel, sender in found.items() if sender is not None}


def dispatch_due(app, now=None) -> Counts:
    """One dispatcher pass with the configured channels (see Dispatcher.dispatch_due)."""
    return Dispatcher(app).dispatch_due(now)


class Dispatcher:
    """Sends due deliveries through the configured channels; one per `flask outbox run` or scheduler."""

    def __init__(self, app, senders: Optional[dict] = None, runtime=None):
        self.app, self.config = app, app.config
        self.senders = senders_from_config(app.config) if senders is None else senders
        self.runtime = runtime
        self._warned = set()
        self._not_before = 0.0          # time.monotonic() before which the next batch waits (pace)

    def dispatch_due(self, now=None, max_batches=1000) -> Counts:
        """Send everything due at `now` (default: the current time), batch after batch."""
        from ..extensions import db
        total = Counts()
        with self.app.app_context():
            session, runtime = db.session, self.runtime or self.app.extensions["runtime"]
            try:
                self._warn_unconfigured(session)
                for _ in range(max_batches):
                    counts = self.dispatch_batch(session, now or utcnow())
                    total.add(counts)
                    if counts.claimed < self.config.get("OUTBOX_BATCH", 100):
                        break
                total.escalated += undelivered.escalate_all(session, runtime)
            finally:
                session.remove()
        return total

    def dispatch_batch(self, session, now) -> Counts:
        """Claim one batch, send it, record the results (at the configured pace)."""
        time.sleep(max(0.0, self._not_before - time.monotonic()))
        started = time.monotonic()
        lease = self.config.get("OUTBOX_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
        jobs = claim(session, list(self.senders), now, self.config.get("OUTBOX_BATCH", 100), lease)
        if not jobs:
            return Counts()
        rate = float(self.config.get("OUTBOX_MAX_PER_SECOND", DEFAULT_MAX_PER_SECOND))
        self._not_before = started + len(jobs) / rate if rate > 0 else 0.0
        results = self.send_all(jobs, time.monotonic() + lease - self._margin())
        return record(session, results, now, self.config)

    def send_all(self, jobs, deadline) -> list[Result]:
        """Send each job; stop (and release the rest) when the lease is about to run out."""
        results, down = [], {}
        try:
            for i, job in enumerate(jobs):
                if i and time.monotonic() > deadline:
                    results += [Result(j, "released") for j in jobs[i:]]
                    break
                if job.channel in down:
                    results.append(self._failure(job, TemporaryFailure(down[job.channel]), quiet=True))
                    continue
                results.append(self.send_one(job, down))
        finally:
            for sender in self.senders.values():
                sender.close()
        for channel, reason in down.items():
            log.warning("the %s channel is unreachable (%s): this batch's %s deliveries wait for their next try",
                        channel, reason, channel)
        return results

    def send_one(self, job, down: dict) -> Result:
        sender = self.senders[job.channel]
        try:
            if not job.to or job.opted_out:
                raise PermanentFailure("customer opted out of this channel" if job.opted_out else "no address on file")
            link = link_for(self.config, job.key)
            if job.channel == "email":
                ref = sender.send(job.to, with_link(job.subject, link), with_link(job.body, link), job.key)
            else:
                ref = sender.send(job.to, with_link(job.sms_text, link), job.key)
            return Result(job, "sent", provider_ref=ref)
        except TemporaryFailure as exc:
            if exc.unreachable:
                down[job.channel] = exc.reason
            return self._failure(job, exc)
        except PermanentFailure as exc:
            return self._failure(job, exc)
        except Exception as exc:  # noqa: BLE001  (a broken adapter must not stop the batch)
            # Where it failed, without the exception's text: that may hold the address or the message.
            log.error("delivery %s (%s): unexpected %s in the %s sender at\n%s", job.delivery_id, job.template,
                      type(exc).__name__, job.channel, "".join(traceback.format_tb(exc.__traceback__)))
            return self._failure(job, TemporaryFailure(f"unexpected error in the sender: {type(exc).__name__}"))

    def _failure(self, job, exc, quiet=False) -> Result:
        final = isinstance(exc, PermanentFailure) or job.attempts >= self.config.get("OUTBOX_MAX_ATTEMPTS", 6)
        log.log(logging.INFO if quiet and not final else logging.WARNING, "delivery %s (%s, %s) attempt %s %s: %s",
                job.delivery_id, job.template, job.channel, job.attempts, "failed" if final else "will be retried",
                exc.reason)
        return Result(job, "failed" if final else "retry", reason=exc.reason)

    def _margin(self) -> float:
        """Time kept in hand at the end of a lease: one send that times out, twice, and some."""
        return 2 * max(float(self.config.get("SMTP_TIMEOUT_SECONDS", 10)),
                       float(self.config.get("SMS_TIMEOUT_SECONDS", 10))) + 5

    def _warn_unconfigured(self, session):
        """Once per dispatcher: say which channel is not configured while deliveries wait for it."""
        for channel in CHANNELS:
            if channel in self.senders or channel in self._warned:
                continue
            waiting = session.execute(select(func.count()).select_from(Delivery).where(
                Delivery.channel == channel, Delivery.status == "queued")).scalar_one()
            session.rollback()
            if waiting:
                self._warned.add(channel)
                log.warning("the %s channel is not configured (%s unset): %s deliveries stay queued until it is",
                            channel, SETTING[channel], waiting)


# ---- claim ---------------------------------------------------------------------------------------
def _due(now, channels):
    return and_(Delivery.channel.in_(channels), Delivery.next_attempt_at <= now,
                or_(Delivery.status == "queued", and_(Delivery.status == "sending", Delivery.lease_until < now)))


def claim(session, channels, now, batch, lease_seconds) -> list[Job]:
    """Mark up to `batch` due deliveries "sending" (attempts + 1, leased) and commit; returns them.
    The UPDATE repeats the due condition, so a row another dispatcher claimed in between is skipped."""
    if not channels:
        return []
    ids = session.execute(select(Delivery.id).where(_due(now, channels))
                          .order_by(Delivery.next_attempt_at, Delivery.id).limit(batch)
                          .with_for_update(skip_locked=True)).scalars().all()
    if not ids:
        session.rollback()
        return []
    claimed = session.execute(
        update(Delivery).where(Delivery.id.in_(ids), _due(now, channels))
        .values(status="sending", lease_until=now + timedelta(seconds=lease_seconds), attempts=Delivery.attempts + 1)
        .returning(Delivery.id).execution_options(synchronize_session=False)).scalars().all()
    jobs = _load_jobs(session, claimed)
    session.commit()
    return jobs


def _load_jobs(session, delivery_ids) -> list[Job]:
    if not delivery_ids:
        return []
    rows = session.execute(
        select(Delivery.id, Delivery.attempts, Delivery.channel, OutboxMessage.id.label("message_id"),
               OutboxMessage.key, OutboxMessage.template, OutboxMessage.instance_id, OutboxMessage.business_key,
               OutboxMessage.subject, OutboxMessage.body, OutboxMessage.sms_text, Complaint.phone, Complaint.email,
               Complaint.sms_opt_out, Complaint.email_opt_out)
        .join(OutboxMessage, OutboxMessage.id == Delivery.message_id)
        .outerjoin(Complaint, Complaint.number == OutboxMessage.business_key)
        .where(Delivery.id.in_(delivery_ids)).order_by(Delivery.next_attempt_at, Delivery.id)).all()
    return [Job(r.id, r.attempts, r.channel, r.message_id, r.key, r.template, r.instance_id, r.business_key,
                r.subject or "", r.body or "", r.sms_text or "",
                to=r.email if r.channel == "email" else r.phone,
                opted_out=bool(r.email_opt_out if r.channel == "email" else r.sms_opt_out)) for r in rows]


# ---- record --------------------------------------------------------------------------------------
def backoff(config, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try."""
    steps = config.get("OUTBOX_BACKOFF_SECONDS", (60,))
    return timedelta(seconds=steps[min(max(attempts, 1), len(steps)) - 1])


def _values(result: Result, now, config) -> dict:
    job = result.job
    if result.outcome == "sent":
        return {"status": "sent", "sent_at": utcnow(), "provider_ref": result.provider_ref, "lease_until": None,
                "last_error": None}
    if result.outcome == "retry":
        return {"status": "queued", "next_attempt_at": now + backoff(config, job.attempts), "lease_until": None,
                "last_error": result.reason}
    if result.outcome == "failed":
        return {"status": "failed", "lease_until": None, "last_error": result.reason}
    return {"status": "queued", "attempts": job.attempts - 1, "lease_until": None}    # released, not tried


COUNTED_AS = {"sent": "sent", "retry": "retried", "failed": "failed", "released": "released"}
AUDIT_ACTION = {"sent": "customer_message_sent", "retry": "customer_message_retry",
                "failed": "customer_message_failed"}


def record(session, results, now, config) -> Counts:
    """Write every result of a batch in one transaction. A result whose delivery was claimed again
    meanwhile (its lease ran out) is dropped: the newer claim records its own. Rows are written with
    Core statements (no ORM flush per row), and the audit trail last, so that its lock, which every
    change to a complaint takes too, is held only while the events go in."""
    counts = Counts(claimed=len(results))
    conn, written = session.connection(), []
    for result in results:
        job = result.job
        if conn.execute(update(Delivery).where(Delivery.id == job.delivery_id, Delivery.status == "sending",
                                               Delivery.attempts == job.attempts)
                        .values(**_values(result, now, config))).rowcount == 1:
            written.append(result)
            name = COUNTED_AS[result.outcome]
            setattr(counts, name, getattr(counts, name) + 1)
    summarise(conn, {r.job.message_id for r in written})
    for result in (r for r in written if r.outcome in AUDIT_ACTION):
        job = result.job
        audit.record(session, "outbox", AUDIT_ACTION[result.outcome], instance_id=job.instance_id,
                     business_key=job.business_key,
                     data={"template": job.template, "channel": job.channel, "attempts": job.attempts,
                           "error": result.reason})
    session.commit()
    return counts


def summarise(conn, message_ids):
    """A message is sent once every delivery is sent (sent_at: the last one). A failed delivery is
    left to undelivered.escalate_all, which marks the message failed as it starts the follow-up."""
    if not message_ids:
        return
    by_message = {}
    for message_id, status, sent_at in conn.execute(
            select(Delivery.message_id, Delivery.status, Delivery.sent_at).where(Delivery.message_id.in_(message_ids))):
        by_message.setdefault(message_id, []).append((status, sent_at))
    sent = [{"message": message_id, "at": max(at for _, at in rows)} for message_id, rows in by_message.items()
            if all(status == "sent" for status, _ in rows)]
    if sent:
        conn.execute(update(OutboxMessage).where(OutboxMessage.id == bindparam("message"),
                                                 OutboxMessage.status == "queued")
                     .values(status="sent", sent_at=bindparam("at")), sent)

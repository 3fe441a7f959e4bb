"""The morning e-mail digest (issue 12 item 8): on each working day from DIGEST_HOUR (Beijing time), every
active user who asked for it (`digest`, with an `email`) gets the lists of app.notifications since their
last digest — new, due within a day, overdue, and for supervisors the overdue tasks nobody holds and those
nobody may work — in Chinese with the English beside it. Nothing is sent when every list is empty.
The scheduler runs `send_digests` every hour: each user's digest of the day is taken by one UPDATE, so two
schedulers never both send it, and one that fails (the mail server is down) is given back and retried at the
next run. Personal data stays out: a task is named by its complaint number and step."""
import logging
from datetime import datetime, time

from flask import render_template
from flask_babel import force_locale

from . import notifications
from .extensions import db
from .outbox.email import SmtpMailer
from .outbox.failures import DeliveryFailure, PermanentFailure
from .timeutil import BUSINESS_TZ, utcnow

log = logging.getLogger(__name__)


def send_digests(app, now=None) -> int:
    """Send today's due digests; returns how many went out."""
    now = now or utcnow()
    local = now.astimezone(BUSINESS_TZ)
    runtime = app.extensions["runtime"]
    mailer = SmtpMailer.from_config(app.config)
    if mailer is None or local.hour < app.config["DIGEST_HOUR"] or not runtime.calendar().is_working_day(local.date()):
        return 0
    day_start = datetime.combine(local.date(), time(0), tzinfo=BUSINESS_TZ)
    sent = 0
    try:
        for user in notifications.digest_users(db.session):
            sent += _send_one(app, runtime, mailer, user, day_start, now)
    finally:
        mailer.close()
    return sent


def _send_one(app, runtime, mailer, user, day_start, now) -> int:
    previous = notifications.claim_digest(db.session, user.id, day_start, now)
    db.session.commit()
    if previous is False:
        return 0                                    # another scheduler took it, or it went out today
    found = notifications.digest(db.session, user, now, since=previous, supervisor=runtime.is_supervisor(user),
                                 independent=app.config["INDEPENDENT_PROCESSES"])
    if found.empty():
        return 0
    with app.test_request_context(), force_locale(app.config["BABEL_DEFAULT_LOCALE"]):
        subject, body = _render(app, user, found, now)
    try:
        mailer.send(user.email, subject, body, key=f"digest-{user.id}-{day_start.date().isoformat()}")
    except PermanentFailure as err:        # e.g. no such mailbox: not retried today (the address needs fixing)
        log.warning("the digest of user %s was refused for good (%s); fix their address", user.id, err)
        return 0
    except DeliveryFailure as err:
        notifications.release_digest(db.session, user.id, previous)
        db.session.commit()
        log.warning("the digest of user %s could not be sent (%s); retried at the next run", user.id, err)
        return 0
    return 1


def _render(app, user, found, now) -> tuple[str, str]:
    from .web.ui import step_label
    sizes = found.sizes()
    subject = render_template("mail/digest_subject.txt", sizes=sizes).strip()
    body = render_template("mail/digest.txt", user=user, found=found, sizes=sizes, now=now, step_label=step_label,
                           base_url=(app.config.get("PUBLIC_BASE_URL") or "").rstrip("/"))
    return subject, body

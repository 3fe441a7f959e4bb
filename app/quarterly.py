"""The quarterly review beside the complaints (C-5.4, processes/quarterly_review.bpmn): one instance per
period, started by the scheduler at the start of each quarter (for the quarter before) or by hand for
any period, and the two effects its diagram asks for: attach the period's analysis, and keep each
improvement measure's tracking row (C-5.3) in step with its process."""
import logging
from datetime import date
from typing import Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import analysis
from .analysis import Period, PeriodError, previous_quarter
from .errors import Conflict, InvalidData
from .models import ImprovementMeasure, PeriodicStart, ProcessInstance, User
from .timeutil import business_today, utcnow

log = logging.getLogger(__name__)
PROCESS_ID = "quarterly_review"
KEY_PREFIX = "QR-"
REVIEW_EXISTS = "review_exists"
PERIOD_NOT_OVER = "period_not_over"
CATCH_UP_DAYS = 15       # a scheduler started this many days into a quarter still starts the last one's review


def business_key(period: Period) -> str:
    return KEY_PREFIX + period.label


def is_over(period: Period) -> bool:
    """Whether the period has ended (its last day is over in Asia/Shanghai): what a review looks back on."""
    return period.instants()[1] <= utcnow()


def start_review(runtime, period: Period, actor: str):
    """Start the review of `period` (its Change); a period has one review, so a second start (a second
    scheduler, a repeated cron firing, a person asking again) is refused with Conflict. A period that has not
    ended is refused (InvalidData): its one review, started early, would look at part of it and keep the
    scheduler's from starting when it ends."""
    if not is_over(period):
        raise InvalidData(f"{period.label} has not ended: its review starts once it has", code=PERIOD_NOT_OVER,
                          fields={"period": period.label})
    key = business_key(period)
    data = {"period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            "period_label": period.label}

    def claim_period(instance):
        runtime.session.add(PeriodicStart(process_id=PROCESS_ID, period=period.label, period_start=period.start,
                                          period_end=period.end, instance_id=instance.id, started_by=actor))
        runtime.session.flush()      # the unique (process, period) row: a second start fails here
    try:
        return runtime.start(PROCESS_ID, data, actor, business_key=key, on_created=claim_period)
    except IntegrityError:
        runtime.session.rollback()
        if review_of(runtime.session, period) is None:
            raise                    # not the one review per period: a real fault
        raise Conflict(f"the review of {period.label} has already been started", code=REVIEW_EXISTS,
                       fields={"period": period.label}) from None


def review_of(session, period: Period):
    """(instance id, its status) of the review of `period`, or None when it has none."""
    return session.execute(select(PeriodicStart.instance_id, ProcessInstance.status)
                           .join(ProcessInstance, ProcessInstance.id == PeriodicStart.instance_id)
                           .where(PeriodicStart.process_id == PROCESS_ID, PeriodicStart.period == period.label)) \
        .one_or_none()


def start_due_review(app, today: Optional[date] = None, actor="scheduler"):
    """The scheduler's job at the start of each quarter: start the review of the quarter before
    `today` (business date) unless it exists. Returns the instance id started, else None."""
    from .extensions import db
    with app.app_context():
        period = previous_quarter(today or business_today())
        try:
            if review_of(db.session, period) is not None:
                return None
            change = start_review(app.extensions["runtime"], period, actor)
        except Conflict as err:
            if err.code != REVIEW_EXISTS:
                raise
            log.info("quarterly review %s exists already", period.label)
            return None
        finally:
            db.session.remove()
        log.info("quarterly review %s started (instance %s)", period.label, change.instance.id)
        return change.instance.id


def attach_analysis(session, instance, effect, actor):
    """Effect handler: compute the period's analysis and attach it to the review instance (a period
    the analysis refuses, e.g. over three years, refuses the change)."""
    try:
        analysis.attach(session, instance.id, date.fromisoformat(effect["start"]), date.fromisoformat(effect["end"]),
                        actor)
    except PeriodError as err:
        raise InvalidData(f"the analysis cannot cover this period: {err}", code="bad_period") from None


def track_measure(session, instance, effect, actor):
    """Effect handler: create or update the tracking row of improvement measure number measure['no']
    of this review (its owner, due date, state, escalation and evidence)."""
    measure, fields = effect["measure"], effect["fields"]
    row = session.execute(select(ImprovementMeasure).where(
        ImprovementMeasure.review_instance_id == instance.id, ImprovementMeasure.seq == measure["no"])) \
        .scalar_one_or_none()
    if row is None:
        row = ImprovementMeasure(review_instance_id=instance.id, seq=measure["no"],
                                 **_review_period(session, instance))
        session.add(row)
    row.state = effect["state"]
    if row.state == "open":          # as decided: at the meeting, or a new date agreed when it was late
        row.title = str(measure.get("title") or "")[:ImprovementMeasure.title.type.length]
        row.category, row.cause_code = measure.get("category"), measure.get("cause_code")
        row.owner_id = _user_id(session, measure.get("owner"))
        row.due_on = date.fromisoformat(measure["due_on"])
        row.escalated = row.escalated or bool(fields.get("escalated"))
        return
    # Done or dropped: by whoever held its task (a supervisor may have given it to someone else).
    row.owner_id = _user_id(session, actor) or row.owner_id
    row.evidence = str(fields.get("evidence") or "")
    row.actions_taken = str(fields.get("actions_taken") or "")
    row.completed_on = date.fromisoformat(fields["completed_on"]) if fields.get("completed_on") else None
    row.completed_at = row.completed_at or utcnow()


def _user_id(session, username):
    return session.execute(select(User.id).where(User.username == str(username))).scalar() if username else None


def _review_period(session, instance) -> dict:
    """The period of the review a measure came from (a review started otherwise than by start_review
    has none on record: the measure is dated today)."""
    found = session.execute(select(PeriodicStart.period_start, PeriodicStart.period_end)
                            .where(PeriodicStart.instance_id == instance.id)).one_or_none()
    start, end = found if found is not None else (business_today(), business_today())
    return {"period_start": start, "period_end": end}


def init_app(runtime):
    runtime.effect_handlers.update(attach_analysis=attach_analysis, track_measure=track_measure)

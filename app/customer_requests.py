"""What a customer asks of the procedure outside its tasks: to withdraw the complaint (R-WITHDRAW) and
to have a decision reviewed (核查, R-REVIEW), on their own page or by phone through customer service.
Both reach the diagrams as messages, and the diagrams decide what follows (processes/
complaint_handling.bpmn ends the handling on a withdrawal, complaint_review.bpmn starts on a review
request). Here is only whether a request may be made now, read from the flat tables, and sending it.

`by` in a message's payload says who took the request: "customer" (their own page) or
"customer_service" (by phone, recorded by a handler)."""
from typing import Optional

from sqlalchemy import select

from . import audit
from .errors import Conflict
from .models import AuditEvent, Complaint, ProcessInstance
from .timeutil import utcnow

WITHDRAWAL = "complaint_withdrawn"        # the message a diagram waits for while the customer may withdraw
REVIEW_REQUEST = "review_requested"       # the message a review process starts on; also its audit mark
WITHDRAWN = "withdrawn"                   # the outcome of a withdrawn complaint
BY_CUSTOMER, BY_PHONE = "customer", "customer_service"
REASON_MAX = 2000                         # characters of a reason given with a request


def clean_reason(raw: str, required: bool) -> tuple[str, Optional[str]]:
    """The reason as it is recorded (line endings unified, trimmed), and what is wrong with it:
    None, "required" or "too_long"."""
    reason = raw.replace("\r\n", "\n").strip()
    if required and not reason:
        return reason, "required"
    return reason, ("too_long" if len(reason) > REASON_MAX else None)


# ---- withdrawal ------------------------------------------------------------------------------------------
def withdrawable(complaint: Complaint, main) -> bool:
    """Whether the complaint may be withdrawn now: it is open and its main instance (anything with its `awaits`:
    the ProcessInstance, or a row of that column) waits for the withdrawal. A closed (archived) complaint is
    decided: its diagram may still wait while a late deadline follow-up runs, but there is nothing left to
    withdraw."""
    return complaint.status == "open" and main is not None and WITHDRAWAL in (main.awaits or "").split(",")


def may_withdraw(session, complaint: Complaint) -> bool:
    main = session.execute(select(ProcessInstance.awaits).where(ProcessInstance.id == complaint.instance_id)).first()
    return withdrawable(complaint, main)


def withdraw(runtime, session, complaint: Complaint, reason: str, by: str, actor: str):
    """Send the withdrawal to the complaint's instance and, in the same transaction, to every process
    beside it that waits for it (a call to the customer, a review), so that no task of a withdrawn
    complaint stays open. Conflict("not_withdrawable") when it is closed or no longer waits."""
    def still_open(_instance):
        session.refresh(complaint)        # read again under the instance's lock: archiving may have won
        if complaint.status != "open":
            raise Conflict("the complaint is closed: it can no longer be withdrawn", code="not_withdrawable")
    try:
        return runtime.send_message(complaint.instance_id, WITHDRAWAL, {"reason": reason, "by": by}, actor,
                                    check=still_open, also_waiting=True)
    except Conflict as err:
        if err.code != "not_waiting":
            raise
        raise Conflict("the complaint can no longer be withdrawn", code="not_withdrawable") from err


# ---- review (核查) ------------------------------------------------------------------------------------------
def review_requested(session, complaint: Complaint, besides=None) -> bool:
    """Whether a review of the current decision was asked for: the mark a request leaves in the audit
    trail after the decision (a later decision may be reviewed again); `besides` is a mark to leave out
    (the one being written)."""
    query = select(AuditEvent.id).where(AuditEvent.business_key == complaint.number,
                                        AuditEvent.action == REVIEW_REQUEST)
    if complaint.decided_at is not None:
        query = query.where(AuditEvent.at >= complaint.decided_at)
    if besides is not None:
        query = query.where(AuditEvent.seq != besides.seq)
    return session.execute(query.limit(1)).first() is not None


def review_state(session, complaint: Complaint, now=None) -> Optional[str]:
    """None (no decision yet), "open", "requested" or "ended" (the 30 days are over)."""
    until = complaint.review_until
    if until is None:
        return None
    if review_requested(session, complaint):
        return "requested"
    return "open" if until > (now or utcnow()) else "ended"


REVIEW_REFUSALS = {None: "there is no decision to review yet", "requested": "a review was already requested",
                   "ended": "the 30 days for asking for a review are over"}


def request_review(runtime, session, complaint: Complaint, reason: str, by: str, actor: str):
    """Leave the request's mark in the audit trail and start what the procedure starts on it, in one
    transaction: the mark takes the lock of the complaint's audit chain, so of two requests racing only
    one passes.
    Conflict with code review_<state> when it may not be asked now, "review_not_modelled" when no
    deployed process starts on it."""
    state = review_state(session, complaint)
    if state != "open":
        raise Conflict(REVIEW_REFUSALS[state], code=f"review_{state or 'undecided'}")
    mark = audit.record(session, actor, REVIEW_REQUEST, instance_id=complaint.instance_id,
                        business_key=complaint.number, data={"by": by})
    audit.flush(session)
    if review_requested(session, complaint, besides=mark):
        session.rollback()
        raise Conflict(REVIEW_REFUSALS["requested"], code="review_requested")
    change = runtime.start_on_message(REVIEW_REQUEST, {"reason": reason, "by": by}, actor=actor,
                                      business_key=complaint.number)
    if change is None:
        session.rollback()
        raise Conflict("no deployed process handles review requests: record it by hand", code="review_not_modelled")
    return change

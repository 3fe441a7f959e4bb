"""What a handler tells a complaint's procedure outside its tasks: ask for more time, record that an
external appraisal started or ended (R-EXT30, R-EXT60, R-PAUSE). Which of these exist, who may send
them and what they carry is the procedure's (app/engine/event_forms.py: a message the diagram waits
for, with a form naming the roles); here is only which are open now, read from flat columns (the
main instance's `awaits` and its version's forms, no workflow), and sending one as a message."""
from dataclasses import dataclass

from sqlalchemy import select

from . import audit
from .avoidance import ACTION_SENT
from .engine.event_forms import sent_by
from .errors import Conflict, Forbidden, NotFound
from .forms import validate
from .models import Complaint, ProcessInstance, ProcessVersion

SENT = ACTION_SENT                # the audit action: who sent what, with the form's data (回避 reads it)


@dataclass
class CaseEvent:
    name: str                      # the message
    schema: dict                   # its form


_BY_CONTENT: dict = {}        # content hash -> {message: form} of a version; a deployed version never changes


def _main_instance(session, complaint: Complaint):
    """What the main instance waits for, its status and version, and its version's content hash."""
    return session.execute(select(ProcessInstance.awaits, ProcessInstance.version_id, ProcessInstance.status,
                                  ProcessVersion.content_hash)
                           .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
                           .where(ProcessInstance.id == complaint.instance_id)).one_or_none()


def _event_forms(session, main) -> dict:
    """The forms of the events `main`'s version offers, read the first time a version is asked about."""
    if main.content_hash not in _BY_CONTENT:
        forms = session.execute(select(ProcessVersion.forms).where(ProcessVersion.id == main.version_id)).scalar_one()
        _BY_CONTENT[main.content_hash] = {name: schema for name, schema in forms.items() if sent_by(schema)}
    return _BY_CONTENT[main.content_hash]


def available(session, user, complaint: Complaint) -> list[CaseEvent]:
    """The events `user` may send to `complaint` now: its main instance waits for them and the form
    lets one of the user's roles send them."""
    main = _main_instance(session, complaint)
    if main is None or main.status != "running" or complaint.status != "open":
        return []
    awaited = set((main.awaits or "").split(","))
    return [CaseEvent(name, schema) for name, schema in sorted(_event_forms(session, main).items())
            if name in awaited and user.roles & sent_by(schema)]


def find(session, user, complaint: Complaint, name: str) -> CaseEvent:
    """The event `name` for this user and complaint: NotFound when the procedure has no such event,
    Forbidden when the user's roles may not send it, Conflict when the diagram does not wait for it now."""
    main = _main_instance(session, complaint)
    schema = _event_forms(session, main).get(name) if main is not None else None
    if schema is None:
        raise NotFound(f"the procedure has no action {name!r}")
    if not user.roles & sent_by(schema):
        raise Forbidden("your role may not do this", code="role_required")
    if complaint.status != "open" or main.status != "running" or name not in (main.awaits or "").split(","):
        raise Conflict("this is not possible at this stage of the complaint", code="not_now")
    return CaseEvent(name, schema)


def send(runtime, session, user, complaint: Complaint, name: str, data: dict):
    """Check `data` against the event's form and send it, with who sent it, to the complaint's main
    instance; the diagram decides what follows. Returns the change."""
    event = find(session, user, complaint, name)
    data = validate(event.schema, data)       # without the values of fields whose condition is false
    audit.record(session, user.username, SENT, instance_id=complaint.instance_id, business_key=complaint.number,
                 data={"message": name, "form_data": data})
    try:
        return runtime.send_message(complaint.instance_id, name, {**data, "by": user.username}, user.username)
    except Conflict as err:
        if err.code != "not_waiting":
            raise
        raise Conflict("this is not possible at this stage of the complaint", code="not_now") from err

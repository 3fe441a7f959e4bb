"""Internal notes on a case: who wrote what, when. A note is an audit event of the case's chain
(tamper-evident, in order with everything else, in the timeline and the case file) and is never shown
to the customer. Notes cannot be edited or deleted: a correction is a new note."""
from . import audit
from .errors import InvalidData
from .input_rules import bad_text

NOTE_ADDED = "note_added"
NOTE_MAX = 2000


def add(session, actor: str, business_key: str, instance_id, text: str):
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise InvalidData("the note is empty", code="note_empty", fields={"text": "required"})
    if len(text) > NOTE_MAX:
        raise InvalidData(f"a note has at most {NOTE_MAX} characters", code="note_too_long",
                          fields={"text": "too long"})
    if bad_text(text):
        raise InvalidData("the note contains characters that are not allowed", code="note_bad_text",
                          fields={"text": "bad text"})
    return audit.record(session, actor, NOTE_ADDED, instance_id=instance_id, business_key=business_key,
                        data={"text": text})

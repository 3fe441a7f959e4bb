"""File fields of a diagram's forms: a property with `contentMediaType` (JSON Schema's keyword for what a
string's content is) takes evidence files — one (a string) or several (an array whose `items` have it).
Its value in the form data is the SHA-256 of a file attached to the same case; the media type may be
exact ("application/pdf"), a family ("image/*"), anything ("*/*"), or several separated by commas, as in
an HTML `accept` attribute. `check_form` is one of the runtime's form checks (API and web alike)."""
from sqlalchemy import select

from .. import audit
from ..errors import InvalidData
from ..models import EvidenceFile
from .store import is_digest

MEDIA_KEY = "contentMediaType"


def file_fields(schema: dict) -> dict:
    """{name: (accept, multiple)} of the form's file fields."""
    found = {}
    for name, prop in ((schema or {}).get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if prop.get("type") == "array" and isinstance(prop.get("items"), dict) and MEDIA_KEY in prop["items"]:
            found[name] = (str(prop["items"][MEDIA_KEY]), True)
        elif MEDIA_KEY in prop:
            found[name] = (str(prop[MEDIA_KEY]), False)
    return found


def accepts(accept: str, media: str) -> bool:
    for wanted in (part.strip().lower() for part in accept.split(",")):
        if wanted in ("*/*", "", media) or (wanted.endswith("/*") and media.startswith(wanted[:-1])):
            return True
    return False


def values_of(value, multiple) -> list:
    if multiple:
        return value if isinstance(value, list) else []
    return [value] if value is not None else []


def check_form(session, schema, data, instance):
    """Each file field's value must name files of the instance's case of an accepted type."""
    fields = file_fields(schema)
    if not fields or not isinstance(data, dict):
        return
    case_key = audit.chain_of(instance.business_key, instance.id)
    wrong = {}
    for name, (accept, multiple) in fields.items():
        values = values_of(data.get(name), multiple)
        if not all(isinstance(v, str) and is_digest(v) for v in values):
            wrong[name] = "must be the SHA-256 of a file attached to this case"
            continue
        media = dict(session.execute(select(EvidenceFile.sha256, EvidenceFile.media_type).where(
            EvidenceFile.case_key == case_key, EvidenceFile.sha256.in_(values))).all()) if values else {}
        if len(media) < len(set(values)):
            wrong[name] = "names a file that is not attached to this case"
        elif not all(accepts(accept, media[v]) for v in values):
            wrong[name] = f"a file of another type than {accept}"
    if wrong:
        raise InvalidData("the form's files are not valid", fields=wrong)

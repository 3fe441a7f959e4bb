"""Attaching a file to a case and reading it back. A case is what an audit chain is kept for
(app.audit.chain_of): a complaint's number, else its instance's chain. Attaching checks the file (not
empty, not too big, an accepted type read from its content, not already in this case, clean by the
virus scanner hook), stores the content by its SHA-256 and records the row and the hash in the case's
audit chain in the caller's transaction. Whatever is refused leaves nothing: no row, no audit event,
and no stored content (the checks run before anything is written); a store that cannot take the content
(StoreUnavailable, 503) leaves no row."""
import hashlib
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..errors import Conflict, InvalidData
from ..models import EvidenceFile
from . import kinds, scan
from .store import ContentMismatch

ATTACHED, VIEWED = "evidence_attached", "evidence_viewed"
NAME_MAX = 255
DESCRIPTION_MAX = 500


@dataclass(frozen=True)
class Case:
    """Where a file goes: the chain key, and the instance and business key its audit events carry."""
    key: str
    instance_id: int | None
    business_key: str | None

    @classmethod
    def of(cls, business_key, instance_id):
        return cls(audit.chain_of(business_key, instance_id), instance_id, business_key)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    scan_command: str = ""
    scan_timeout: float = 60.0

    @classmethod
    def from_config(cls, config):
        return cls(int(config["EVIDENCE_MAX_BYTES"]), config.get("EVIDENCE_SCAN_COMMAND") or "",
                   float(config.get("EVIDENCE_SCAN_TIMEOUT") or 60))


def attach(session, store, limits: Limits, case: Case, actor, filename: str, content: bytes, *,
           task_id=None, field=None, description="") -> EvidenceFile:
    """Check, store and record one file; InvalidData/Conflict (with a code) when it is refused."""
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidData(f"the description holds more than {DESCRIPTION_MAX} characters",
                          fields={"description": f"at most {DESCRIPTION_MAX} characters"}, code="evidence_description")
    name, sha, media = check(session, limits, case, filename, content)
    row = EvidenceFile(case_key=case.key, task_id=task_id, field=field, sha256=sha, size=len(content),
                       media_type=media, filename=name, description=description, uploaded_by_id=actor.id)
    # Stored before its row is written (a slow remote store holds no lock on it): a store that fails
    # (StoreUnavailable) leaves no row; a row that fails leaves a content that no row names, never the reverse.
    store.put(sha, content)
    audit.flush(session)          # events pending from before are written now, not inside the savepoint below
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:      # the same content attached at the same moment by someone else
        raise _duplicate(session, case, sha) from None
    audit.record(session, actor.username, ATTACHED, instance_id=case.instance_id, business_key=case.business_key,
                 task_id=task_id, data={"file_id": row.id, "sha256": sha, "size": len(content), "media_type": media,
                                        "field": field})
    return row


def refusal(cls, message, code, **details):
    """An error refusing the file: `fields` says it of the field `file` (the API's shape: strings), and
    `details` holds the figures a page puts in its sentence (sizes, the first upload's time)."""
    err = cls(message, fields={"file": message}, code=code)
    err.details = details
    return err


def check(session, limits: Limits, case: Case, filename: str, content: bytes) -> tuple[str, str, str]:
    """(clean name, SHA-256, media type) of an acceptable file, else the refusal."""
    if not content:
        raise refusal(InvalidData, "the file is empty", "evidence_empty")
    if len(content) > limits.max_bytes:
        raise refusal(InvalidData, f"the file is larger than {limits.max_bytes} bytes", "evidence_too_big",
                      max_bytes=limits.max_bytes, size=len(content))
    media = kinds.media_type(content)
    sha = hashlib.sha256(content).hexdigest()
    if session.execute(select(EvidenceFile.id).where(EvidenceFile.case_key == case.key,
                                                     EvidenceFile.sha256 == sha)).first():
        raise _duplicate(session, case, sha)
    scan.check(limits.scan_command, content, limits.scan_timeout)
    return clean_name(filename, media), sha, media


def _duplicate(session, case, sha) -> Conflict:
    first = session.execute(select(EvidenceFile).where(EvidenceFile.case_key == case.key,
                                                       EvidenceFile.sha256 == sha)).scalar_one()
    return refusal(Conflict, "this file is already attached to the case", "evidence_duplicate", file_id=first.id,
                   uploaded_at=first.uploaded_at.isoformat())


def clean_name(filename: str, media: str) -> str:
    """The name without any folder, control characters or surrounding blanks, at most NAME_MAX
    characters (its extension kept); a file without a usable name is called file.<ext of its type>."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not base:
        return f"file.{kinds.extension(media)}"
    if len(base) > NAME_MAX:
        stem, dot, ext = base.rpartition(".")
        base = (stem[:NAME_MAX - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else base[:NAME_MAX]
    return base


def files_of(session, case_key: str) -> list[EvidenceFile]:
    return session.execute(select(EvidenceFile).where(EvidenceFile.case_key == case_key)
                           .order_by(EvidenceFile.uploaded_at, EvidenceFile.id)).scalars().all()


def entries(session, case_key: str, full_names: bool) -> list[dict]:
    """A case's files as the case file and the API give them; their names (which often hold the customer's)
    only with `full_names`, else file-<n>.<extension of the content's type>."""
    return [{"id": f.id, "name": kinds.safe_download_name(f.filename, f.media_type) if full_names
             else f"file-{i}.{kinds.extension(f.media_type)}",
             "media_type": f.media_type, "size": f.size, "sha256": f.sha256, "description": f.description,
             "task_id": f.task_id, "field": f.field, "uploaded_by": f.uploaded_by.username,
             "uploaded_at": f.uploaded_at.isoformat()} for i, f in enumerate(files_of(session, case_key), 1)]


def read(store, row: EvidenceFile) -> bytes:
    """The content of `row`, checked against its recorded hash (a changed or missing file is refused
    rather than handed out as evidence); StoreUnavailable (503) when the store cannot be read."""
    try:
        content = store.get(row.sha256)
    except FileNotFoundError:
        raise Conflict("the stored content of this file is missing", code="evidence_missing") from None
    except ContentMismatch:
        content = None
    if content is None or hashlib.sha256(content).hexdigest() != row.sha256:
        raise Conflict("the stored content of this file does not match its recorded hash", code="evidence_corrupt")
    return content


def record_view(session, actor, row: EvidenceFile, case: Case):
    audit.record(session, actor, VIEWED, instance_id=case.instance_id, business_key=case.business_key,
                 data={"file_id": row.id, "sha256": row.sha256})

"""The vocabularies in force and the complaint data they code: the vocabularies of the newest deployed
version of the complaint process (new complaints start on it), the values in the complaint's coded
columns that are no code of them (free text from before coded data, or a code deleted from a file
instead of retired), and mapping such a value to a code."""
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from . import audit, vocab
from .models import Complaint, ProcessVersion

_BY_CONTENT: dict = {}        # content hash -> {name: Vocabulary}; a deployed version never changes
_NEWEST = "newest_versions"   # session.info: newest_versions(), until a flush or the transaction's end


def newest_versions(session) -> dict:
    """{process id: (process_id, id, content_hash) of its newest deployed version}, every process in one statement:
    read once per transaction (a page asks for its vocabularies and its forms' labels) and again after a flush of
    this session (a deployment flushes its new version). Not seen until then: a version added here but not flushed,
    one written past the ORM (a Core INSERT), and on PostgreSQL one another process deploys while this transaction
    runs."""
    known = session.info.get(_NEWEST)
    if known is None:
        newest = select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("version")) \
            .group_by(ProcessVersion.process_id).subquery()
        rows = session.execute(select(ProcessVersion.process_id, ProcessVersion.id, ProcessVersion.content_hash)
                               .join(newest, (newest.c.process_id == ProcessVersion.process_id)
                                     & (newest.c.version == ProcessVersion.version))).all()
        known = session.info[_NEWEST] = {row.process_id: row for row in rows}   # after the query: an autoflush
    return known                                                                # in it forgets


def newest_version(session, process_id):
    """(process_id, id, content_hash) of the newest deployed version of `process_id`, or None (`newest_versions`)."""
    return newest_versions(session).get(process_id)


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_transaction_end")       # also a flush's inner transaction, and a savepoint
def _forget_newest(session, *_):
    session.info.pop(_NEWEST, None)


def in_force(session, process_id) -> dict:
    """{name: app.vocab.Vocabulary} of the newest deployed version of `process_id` ({} when none is
    deployed, or it was deployed without vocabularies: its fields are then free text)."""
    row = newest_version(session, process_id)
    if row is None:
        return {}
    if row.content_hash not in _BY_CONTENT:
        stored = session.execute(select(ProcessVersion.vocabularies).where(ProcessVersion.id == row.id)).scalar_one()
        _BY_CONTENT[row.content_hash] = vocab.of_version(stored)
    return _BY_CONTENT[row.content_hash]


def refusals(vocabularies: dict, data: dict, fields: dict) -> dict:
    """{field: why its value may not be used for new input} for each `fields` entry (field -> vocabulary)
    whose vocabulary is in force."""
    out = {}
    for field, name in fields.items():
        found = vocabularies.get(name)
        reason = found.refusal(data.get(field)) if found is not None else None
        if reason:
            out[field] = reason
    return out


@dataclass
class Unmapped:
    column: str
    value: str
    complaints: int
    examples: list            # a few complaint numbers
    suggestion: Optional[str]  # a code whose label the value is, if any


def unmapped(session, vocabularies: dict, examples=3) -> list[Unmapped]:
    """Every value of a coded column that is no code of its vocabulary, with how many complaints hold it."""
    out = []
    for column, name in Complaint.coded_columns.items():
        known = vocabularies.get(name)
        if known is None:
            continue
        col = getattr(Complaint, column)
        rows = session.execute(select(col, func.count()).where(col.is_not(None), col.not_in(list(known.terms)))
                               .group_by(col).order_by(func.count().desc(), col)).all()
        for value, count in rows:
            numbers = session.execute(select(Complaint.number).where(col == value).order_by(Complaint.number)
                                      .limit(examples)).scalars().all()
            out.append(Unmapped(column, value, count, numbers, _suggestion(known, value)))
    return out


def _suggestion(known, value) -> Optional[str]:
    """An offered code whose Chinese or English label is the value (spaces and case aside)."""
    text = "".join(str(value).split()).lower()
    return next((code for code in known.offered() for lang in ("zh", "en")
                 if "".join(getattr(known.terms[code], lang).split()).lower() == text), None)


def map_value(session, vocabularies: dict, column: str, old: str, code: str, actor: str, dry_run=False) -> int:
    """Give every complaint whose `column` holds `old` the code `code` instead (a free-text category is
    kept in category_legacy) and audit it; returns how many complaints changed (with `dry_run`, how many would:
    nothing is written). Raises ValueError when the column is not coded, the code may not be used, or `old` is a
    code in force (not a value to map)."""
    name = Complaint.coded_columns.get(column)
    known = vocabularies.get(name) if name else None
    if known is None:
        raise ValueError(f"{column!r} is not a coded column with a vocabulary in force "
                         f"(coded: {', '.join(Complaint.coded_columns)})")
    if code not in known.terms or known.is_group(code):
        raise ValueError(known.refusal(code) or f"{code!r} is a group")
    if old in known.offered():
        raise ValueError(f"{old!r} is a code of {name} in force: the complaints that hold it are coded already "
                         f"(retire it in the vocabulary first to move them to another code)")
    col = getattr(Complaint, column)
    if dry_run:
        return session.execute(select(func.count()).select_from(Complaint).where(col == old)).scalar()
    values = {column: code}
    if column == "category":
        values["category_legacy"] = func.coalesce(Complaint.category_legacy, old)
    changed = session.execute(update(Complaint).where(col == old).values(**values)
                              .execution_options(synchronize_session=False)).rowcount
    if changed:
        audit.record(session, actor, "vocabulary_value_mapped",
                     data={"column": column, "from": old, "to": code, "complaints": changed})
    session.commit()
    return changed

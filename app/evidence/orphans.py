"""Contents in the evidence store that no evidence_file row names. A content is stored before its row is written
(app.evidence.files), so a row that then fails (a database error, a lost race) leaves a content behind that
nothing refers to. It may hold personal data (a letter, a recording) kept without a case: `flask evidence
orphans` lists them for the operator to check and remove with the store's own tools (the app's credentials have
no right to delete, on purpose). A content younger than the grace period may belong to an upload that is still
being written, and is left out."""
from datetime import timedelta

from sqlalchemy import select

from ..models import EvidenceFile
from .store import Stored

GRACE = timedelta(hours=1)


def unfinished(store, now, grace=GRACE) -> list[Stored]:
    """The temporary files of uploads that never finished, written before now - grace, oldest first (a store
    that keeps none, e.g. an S3 bucket, has no `leftovers`)."""
    leftovers = getattr(store, "leftovers", None)
    return sorted(leftovers(now - grace), key=lambda c: c.stored_at) if leftovers else []


def unreferenced(session, store, now, grace=GRACE) -> list[Stored]:
    """The contents written before now - grace that no evidence_file row names, oldest first."""
    named = set(session.execute(select(EvidenceFile.sha256).distinct()).scalars())
    session.rollback()
    return sorted((c for c in store.contents(now - grace) if c.sha256 not in named), key=lambda c: c.stored_at)

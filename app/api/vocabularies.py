"""The controlled vocabularies in force (processes/vocabularies/, app/vocab.py): the codes an API client
sends for the coded fields, with their labels in both languages, for lists and for showing stored codes."""
from flask import current_app

from .. import vocab_store
from ..extensions import db
from ..permissions import PROCEDURE_READERS
from . import bp
from .auth import require
from .schemas import VocabulariesOut

VOCABULARIES_OUT = VocabulariesOut()


def _terms(known) -> list[dict]:
    return [{"code": code, "zh": term.zh, "en": term.en, "parent": term.parent, "retired": term.retired,
             "group": known.is_group(code), "offered": code in known.offered(),
             "label_zh": known.label(code, "zh"), "label_en": known.label(code, "en")}
            for code, term in known.terms.items()]


@bp.get("/vocabularies")
@require(*PROCEDURE_READERS)
def list_vocabularies():
    """Every vocabulary of the newest deployed version of the complaint process (new complaints use it)."""
    vocabularies = vocab_store.in_force(db.session, current_app.config["COMPLAINT_PROCESS"])
    return VOCABULARIES_OUT.dump({"vocabularies": {
        name: {"title": known.title, "title_en": known.title_en, "terms": _terms(known)}
        for name, known in sorted(vocabularies.items())}})

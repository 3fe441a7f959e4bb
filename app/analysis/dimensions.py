"""The dimensions an analysis counts and filters by — the complaint's coded columns and its channel — and
what a value of one is: a code of its vocabulary (labelled in Chinese and English, a retired code too), a
channel, or "uncoded" (no value, or a value that is no code: free text from before coded data)."""
from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import or_

from .. import vocab_store
from ..complaints import CHANNELS
from ..models import Complaint

UNCODED = "_uncoded"
DEFAULT_PROCESS = "complaint_handling"
# dimension -> its column on complaint; the vocabulary of a coded one is Complaint.coded_columns[dimension]
DIMENSIONS = {"category": Complaint.category, "cause_code": Complaint.cause_code,
              "responsible_party": Complaint.responsible_party, "channel": Complaint.channel,
              "product_line": Complaint.product_line}


class FilterError(ValueError):
    """A filter that names no dimension, or a value that is no code of its dimension."""

    def __init__(self, code: str, message: str, **params):
        super().__init__(message)
        self.code, self.params = code, params


def complaint_process() -> str:
    return current_app.config["COMPLAINT_PROCESS"] if has_app_context() else DEFAULT_PROCESS


@dataclass
class Dimension:
    name: str
    vocabulary: object = None          # app.vocab.Vocabulary, or None (channel, or no vocabulary in force)

    @property
    def column(self):
        return DIMENSIONS[self.name]

    def codes(self) -> list:
        """Every value that is a code of the dimension (offered, retired and groups)."""
        if self.name == "channel":
            return list(CHANNELS)
        return list(self.vocabulary.terms) if self.vocabulary is not None else []

    def key(self, value) -> str:
        """The item a stored value counts under: itself when it is a code, else UNCODED."""
        return value if value in self._known else UNCODED

    def item(self, key) -> dict:
        """{code, zh, en, retired, uncoded} of an item; a channel's labels are the page's (zh/en left out)."""
        if key == UNCODED:
            return {"code": UNCODED, "uncoded": True, "retired": False}
        if self.vocabulary is None:
            return {"code": key, "uncoded": False, "retired": False}
        term = self.vocabulary.terms[key]
        return {"code": key, "zh": self.vocabulary.label(key, "zh"), "en": self.vocabulary.label(key, "en"),
                "retired": bool(term.retired), "uncoded": False}

    def condition(self, value):
        """The SQL condition for complaints holding `value`: a group holds its sub-codes too; UNCODED
        holds no value or a value that is no code."""
        if value == UNCODED:
            known = self.codes()
            return or_(self.column.is_(None), self.column.not_in(known)) if known else self.column.is_(None)
        if value not in self._known:
            raise FilterError("unknown_value", f"{value!r} is not a code of {self.name} (known: "
                              f"{', '.join(self.codes())}, or {UNCODED})", dimension=self.name, value=value)
        if self.vocabulary is not None and self.vocabulary.is_group(value):
            subs = [c for c, t in self.vocabulary.terms.items() if t.parent == value]
            return self.column.in_([value, *subs])
        return self.column == value

    @property
    def _known(self) -> set:
        if not hasattr(self, "_known_codes"):
            self._known_codes = set(self.codes())
        return self._known_codes


def dimensions(session, process_id=None) -> dict:
    """{name: Dimension} with the vocabularies in force for the complaint process."""
    vocabularies = vocab_store.in_force(session, process_id or complaint_process())
    return {name: Dimension(name, None if name == "channel" else vocabularies.get(Complaint.coded_columns[name]))
            for name in DIMENSIONS}


def conditions(dims: dict, filters) -> list:
    """SQL conditions on Complaint for `filters` ({dimension: value or [values]}; empty values ignored)."""
    out = []
    for name, wanted in (filters or {}).items():
        if name not in dims:
            raise FilterError("unknown_dimension", f"{name!r} is not a dimension (known: {', '.join(dims)})",
                              dimension=name)
        values = [v for v in (wanted if isinstance(wanted, (list, tuple)) else [wanted]) if v not in (None, "")]
        if values:
            out.append(or_(*(dims[name].condition(v) for v in values)))
    return out


def clean_filters(filters) -> dict:
    """The filters as stored with an analysis: {dimension: [values]}, empty ones left out."""
    out = {}
    for name, wanted in (filters or {}).items():
        values = [v for v in (wanted if isinstance(wanted, (list, tuple)) else [wanted]) if v not in (None, "")]
        if values:
            out[name] = values
    return out

"""Coded values on the pages: the vocabularies in force (app/vocab_store.py) once per request, a code's
label in the page's language (a retired code's too; a value that is no code is shown as it is, marked),
and the choices of a coded intake field or queue filter."""
from flask import current_app, g
from flask_babel import gettext as _

from .. import vocab_store
from ..extensions import db
from ..models import Complaint
from .ui import lang

EMPTY = "—"


def vocabularies() -> dict:
    if "vocabularies" not in g:
        g.vocabularies = vocab_store.in_force(db.session, current_app.config["COMPLAINT_PROCESS"])
    return g.vocabularies


def _vocabulary(column):
    return vocabularies().get(Complaint.coded_columns.get(column, column))


def label(column, value) -> str:
    """The label of the code `value` of a coded complaint column (category, product_line, cause_code,
    responsible_party) in the page's language."""
    if value in (None, ""):
        return EMPTY
    known = _vocabulary(column)
    if known is None:
        return str(value)                  # the procedure has no vocabulary for it: free text
    text = known.label(value, lang())
    if text is None:
        return _("%(value)s (not coded)", value=value)
    return _("%(label)s (retired)", label=text) if known.terms[value].retired else text


def intake_property(column, title, description=None):
    """A coded intake field described like a form property (a select of the codes on offer), or None
    when the procedure in force has no vocabulary for it (the field is then free text)."""
    known = _vocabulary(column)
    if known is None:
        return None
    # The intake page renders its fields with no language of their own (their titles are translated here).
    prop = {"type": "string", "title": title, "x-widget": "select",
            "oneOf": [{"const": code, "title": known.label(code, lang())} for code in known.offered()]}
    return {**prop, "description": description} if description else prop


def filter_options(column):
    """(code, label) of every code a complaint may hold in `column`, offered ones first; None without a
    vocabulary."""
    known = _vocabulary(column)
    if known is None:
        return None
    offered = known.offered()
    rest = [c for c in known.terms if c not in offered and not known.is_group(c)]
    return [(code, label(column, code)) for code in offered + rest]

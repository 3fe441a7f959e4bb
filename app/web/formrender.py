"""A user task's JSON Schema -> field descriptions for the Jinja macros in _form.html, and posted
HTML form strings -> typed values by the same schema, so app.forms can validate them.

A conditional field (app.forms.conditions: e.g. a rejection reason, asked only when the decision is
"reject") carries its condition in form values (`show_when`, JSON for app/static/forms.js, which shows it,
and makes it required, only while the condition holds) and says it in words under the field, so that
without script every field is shown as before. The server decides: app.forms.validate drops the value of
a field whose condition is false and requires it when true.

A form's instructions start with the clause codes of the rules they carry out ("[C-3.2.1][C-3.2.3] …"):
instructions() gives the text without them, and the codes only to those who check the procedure against
the rules (CLAUSE_READERS)."""
import json
import math
import re
from datetime import datetime

from flask_babel import gettext as _

from ..evidence.fields import MEDIA_KEY as FILE_KEY
from ..forms import NOT_AFTER, NOT_BEFORE, TODAY, conditions
from ..input_rules import BAD_TEXT, BLANK, NOT_FINITE
from ..timeutil import BUSINESS_TZ

ENGLISH = "en"
ENGLISH_NAMES = "x-enumNames-en"      # beside x-enumNames, as x-title-en beside title


def titles(schema: dict, lang: str) -> tuple[str, str]:
    """(label, secondary label): the schema's (Chinese) title, in English its `x-title-en` first."""
    zh = schema.get("title", "")
    en = schema.get("x-title-en")
    if lang == ENGLISH and en:
        return en, zh
    return zh, ""


CLAUSE_READERS = frozenset({"compliance", "process_owner"})    # see which rule an instruction carries out
LEADING_CODES = re.compile(r"^\s*((?:\[[A-Z]{1,4}-[A-Za-z0-9.\-]+\]\s*)+)")
CODE = re.compile(r"\[([A-Z]{1,4}-[A-Za-z0-9.\-]+)\]")


def describe(schema: dict, lang: str) -> str:
    """The help text (a schema's or a property's `description`), in English its `x-description-en`,
    without the clause codes it starts with."""
    text = schema.get("description", "")
    if lang == ENGLISH and schema.get("x-description-en"):
        text = schema["x-description-en"]
    return LEADING_CODES.sub("", text or "", count=1)


def clause_codes(schema: dict) -> list[str]:
    """The clause codes a schema's description starts with, e.g. ["C-3.2.1", "C-3.2.3"]."""
    found = LEADING_CODES.match(schema.get("description") or schema.get("x-description-en") or "")
    return CODE.findall(found.group(1)) if found else []


def instructions(schema: dict, lang: str, roles) -> dict:
    """A form's instructions for a reader: {"text": in the page's language without clause codes, "codes":
    the clause codes, for compliance and the process owner only}."""
    codes = clause_codes(schema) if CLAUSE_READERS & set(roles or ()) else []
    return {"text": describe(schema, lang), "codes": codes}


def _constants(prop: dict) -> list:
    """The `oneOf` entries of a choice written as labelled constants ({"const", "title", "x-title-en"},
    e.g. a field coded by a vocabulary, app/vocab.py), or []."""
    entries = prop.get("oneOf")
    if isinstance(entries, list) and entries and all(isinstance(e, dict) and "const" in e for e in entries):
        return entries
    return []


def widget(prop: dict) -> str:
    kind = prop.get("type")
    if FILE_KEY in prop or (kind == "array" and FILE_KEY in (prop.get("items") or {})):
        return "files" if kind == "array" else "file"      # evidence (app/evidence/fields.py)
    if kind == "array" and "enum" in prop.get("items", {}):
        return "checkboxes"
    if kind == "boolean":
        return "confirm" if prop.get("const") is True else "yesno"
    if "enum" in prop or _constants(prop):
        count = len(prop.get("enum") or _constants(prop))
        return "select" if prop.get("x-widget") == "select" or count > 4 else "radio"
    if kind in ("integer", "number"):
        return "number"
    if prop.get("format") == "date":
        return "date"
    if prop.get("format") == "date-time":
        return "datetime"
    return "textarea" if prop.get("x-widget") == "textarea" else "text"


def options(prop: dict, lang: str, retired=False) -> list[tuple[str, str]]:
    """(value, label) of an enum; labels from x-enumNames, in English with the humanised code first and then
    the English name from `x-enumNames-en` where the form gives one (a code that is no English word, e.g. a
    score: "1 · Very dissatisfied"), else the Chinese name (the check refuses a list of names that is not one per
    choice; a version deployed before it may have a shorter one). Of labelled constants (`oneOf`) their title, in
    English their `x-title-en`; with `retired`, also those no longer offered (`x-retired`), for showing old data."""
    if _constants(prop):
        entries = _constants(prop) + ((prop.get("x-retired") or []) if retired else [])
        return [(str(e["const"]), titles(e, lang)[0] or str(e["const"])) for e in entries]
    values = prop.get("enum") or []
    names = prop.get("x-enumNames") or []
    if lang == ENGLISH:
        english = prop.get(ENGLISH_NAMES) or []
        names = [*english, *names[len(english):]]
    out = []
    for i, value in enumerate(values):
        name = str(names[i]) if i < len(names) else str(value)
        if lang == ENGLISH and name != str(value):
            name = f"{str(value).replace('_', ' ').capitalize()} · {name}"
        out.append((str(value), name))
    return out


def fields(schema: dict, raw=None, errors=None, lang="zh") -> list[dict]:
    """What the macros need per property: widget, label, help, bounds, options, the value to show
    (the user's input on a re-show, else the schema default) and the error message."""
    raw, errors = raw or {}, errors or {}
    required = set(schema.get("required", []))
    whens_of = conditions(schema)
    out = []
    for name, prop in schema.get("properties", {}).items():
        kind = widget(prop)
        label, label_alt = titles(prop, lang)
        choice = prop.get("items", {}) if kind == "checkboxes" else prop
        if name in raw:
            value = raw[name]
        else:
            value = _as_form_value(prop.get("default"), kind)
        if kind in ("checkboxes", "files", "file") and not isinstance(value, list):
            value = [value] if value not in (None, "") else []
        out.append({
            "name": name, "id": f"f-{name}", "widget": kind, "label": label or name, "label_alt": label_alt,
            "help": describe(prop, lang), "required": name in required, "value": value,
            "error": errors.get(name), "options": options(choice, lang),
            "min": prop.get("minimum"), "max": prop.get("maximum"),
            "step": "1" if prop.get("type") == "integer" else "any",
            "minlength": prop.get("minLength"), "maxlength": prop.get("maxLength"),
            "input": prop.get("x-input", "text"), "suggestions": prop.get("x-suggestions") or [],
            "accept": (prop.get("items") or {}).get(FILE_KEY) if kind == "files" else prop.get(FILE_KEY),
            "kept": [(v, f"{v[:12]}…") for v in value] if kind in ("file", "files") else [],
            **_condition(schema, whens_of.get(name), lang),
        })
    return out


def _condition(schema: dict, whens, lang) -> dict:
    """A conditional field's condition: `when` in form values, `show_when` as JSON for forms.js, and
    `when_text`, the condition in words."""
    if not whens:
        return {"when": [], "show_when": "", "when_text": ""}
    props = schema.get("properties", {})
    shown = [{**w, "values": [_as_form_value(v, widget(props.get(w["field"], {}))) for v in w.get("values", [])]}
             for w in whens]
    text = "；" if lang != ENGLISH else " "
    return {"when": shown, "show_when": json.dumps(shown, ensure_ascii=False),
            "when_text": text.join(_when_text(props.get(w["field"], {}), w, lang) for w in shown)}


def _when_text(prop: dict, when: dict, lang) -> str:
    label = titles(prop, lang)[0] or when["field"]
    if when.get("filled"):
        return _("Only when “%(field)s” is filled in.", field=label)
    names = dict(options(prop, lang)) if (prop.get("enum") or _constants(prop)) else \
        {"true": _("Yes"), "false": _("No")}
    values = " / ".join(f"“{names.get(v, v)}”" for v in when["values"])
    if when.get("negate"):
        return _("Only when “%(field)s” is not %(values)s.", field=label, values=values)
    return _("Only when “%(field)s” is %(values)s.", field=label, values=values)


def _as_form_value(value, kind):
    if value is None:
        return [] if kind == "checkboxes" else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def coerce(schema: dict, form) -> tuple[dict, dict]:
    """(typed data, raw input to re-show). Only the schema's properties are read; an empty optional
    field is omitted, as is an empty required one (the validator then reports it as required).
    A value that does not convert (e.g. "abc" for a number) is kept as text so the validator
    reports its type."""
    data, raw = {}, {}
    for name, prop in schema.get("properties", {}).items():
        kind = widget(prop)
        if kind in ("file", "files"):      # the files already attached (their SHA-256), kept across a re-show
            kept = [v for v in form.getlist(name) if v != ""]
            raw[name] = kept
            if kept:
                data[name] = kept if kind == "files" else kept[-1]
            continue
        if kind == "checkboxes":
            values = [v for v in form.getlist(name) if v != ""]
            raw[name] = values
            if values:
                item_type = prop.get("items", {}).get("type")
                data[name] = [_scalar(v, item_type) for v in values]
            continue
        text = form.get(name, "")
        raw[name] = text
        if kind == "textarea":
            text = text.replace("\r\n", "\n")
        if text.strip() == "":
            continue
        if kind in ("yesno", "confirm"):
            data[name] = {"true": True, "false": False}.get(text.strip().lower(), text)
        elif kind == "datetime":
            data[name] = local_to_iso(text)
        else:
            data[name] = _scalar(text.strip() if kind != "textarea" else text, prop.get("type"))
    return data, raw


def _scalar(text, kind):
    """A number field's text as int/float; "nan", "inf", "1e999" (non-finite) and anything else that
    does not convert stay text, so the validator says "Enter a number." beside the field."""
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            number = float(text)
            if not math.isfinite(number):
                return text
            return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    except ValueError:
        return text
    return text


def local_to_iso(text: str) -> str:
    """A datetime-local value ("2026-11-25T14:30") read as Asia/Shanghai time, as ISO with offset;
    anything unparseable is returned unchanged for the validator to refuse."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BUSINESS_TZ)
    return moment.isoformat()


def iso_to_local(value) -> str:
    """An aware datetime or ISO string as a datetime-local value in Asia/Shanghai."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%dT%H:%M")
    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%dT%H:%M")


def explain(schema: dict, errors: dict) -> dict:
    """app.forms.field_errors' messages (jsonschema's English) as short translated messages."""
    props = schema.get("properties", {})
    return {name: _explain_one(props.get(name.split(".")[0], {}), message) for name, message in errors.items()}


def _explain_one(prop: dict, message: str) -> str:
    kind = widget(prop) if prop else "text"
    if message in ("required", BLANK) or "should be non-empty" in message or "is too short" in message:
        if kind == "checkboxes":
            return _("Choose at least one option.")
        if kind == "confirm":
            return _("This must be confirmed.")
        if prop.get("minLength", 0) > 1 and message not in ("required", BLANK):
            return _("At least %(num)d characters.", num=prop["minLength"])
        return _("This field is required.")
    if message == "unknown field":
        return _("This field is not part of the form.")
    if message == "reserved field name":
        return _("This field name is reserved.")
    if message == BAD_TEXT:
        return _("This text contains characters that are not allowed (such as NUL).")
    if message == NOT_FINITE:
        return _("Enter a number.")
    if "is too long" in message or "is expected to be empty" in message:
        return _("At most %(num)d characters.", num=prop.get("maxLength", 0))
    if "is not one of" in message or "is not valid under any of the given schemas" in message:
        return _("Choose one of the options.")
    if "non-unique" in message:
        return _("Choose each option only once.")
    if "was expected" in message:
        return _("This must be confirmed.") if kind == "confirm" else _("This value is not allowed.")
    if message == f"{NOT_BEFORE} {TODAY}":
        return _("This date lies in the past: choose today or a later day.")
    if message.startswith(NOT_BEFORE):
        return _("This date lies before the date it must follow.")
    if message == f"{NOT_AFTER} {TODAY}":
        return _("This date lies in the future: choose today or an earlier day.")
    if message.startswith(NOT_AFTER):
        return _("This date lies after the date it must come before.")
    if "is not a 'date'" in message:
        return _("Enter a date (YYYY-MM-DD).")
    if "is not a 'date-time'" in message:
        return _("Enter a date and time.")
    if "is not of type" in message:
        if prop.get("type") == "integer":
            return _("Enter a whole number.")
        if prop.get("type") == "number":
            return _("Enter a number.")
        if prop.get("type") == "boolean":
            return _("Choose yes or no.")
        return _("This value has the wrong type.")
    if any(word in message for word in ("less than", "greater than")):
        low, high = prop.get("minimum"), prop.get("maximum")
        if low is not None and high is not None:
            return _("Enter a number from %(min)s to %(max)s.", min=_num(low), max=_num(high))
        if low is not None:
            return _("Enter a number of at least %(min)s.", min=_num(low))
        return _("Enter a number of at most %(max)s.", max=_num(high))
    return message


def _num(value):
    return f"{value:,}" if isinstance(value, int) else str(value)


def display(prop: dict, value, lang: str) -> str:
    """A submitted value as text for the history: enum labels, yes/no, lists joined, numbers grouped."""
    if value is None or value == "":
        return "—"
    kind = widget(prop) if prop else None
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if kind == "checkboxes" and isinstance(value, list):
        labels = dict(options(prop.get("items", {}), lang))
        return "、".join(labels.get(str(v), str(v)) for v in value)
    if prop and ("enum" in prop or _constants(prop)):
        return dict(options(prop, lang, retired=True)).get(str(value), str(value))
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, (int, float)):
        return f"{value:,}"                   # amounts readable at a glance: 80,000
    return str(value)


def describe_data(schema, data: dict, lang: str) -> list[tuple[str, str, str]]:
    """(field name, label, shown value) of submitted form data, in the form's order."""
    props = (schema or {}).get("properties", {})
    order = list(props) + [k for k in data if k not in props]
    out = []
    for name in order:
        if name not in data:
            continue
        prop = props.get(name, {})
        label = titles(prop, lang)[0] if prop else name
        out.append((name, label or name, display(prop, data[name], lang)))
    return out

"""Form data against a user task's JSON Schema: typed values in, per-field messages out. Besides the
schema, every value must pass app.input_rules (finite numbers, text without NUL or lone surrogates):
JSON Schema's `minimum` lets NaN through, and the runtime calls validate() on every completion."""
from datetime import date

from jsonschema import Draft202012Validator, FormatChecker

from .errors import InvalidData
from .input_rules import find_problems
from .timeutil import business_today, parse_iso

RESERVED_KEYS = {"typename"}   # the workflow serializer reads this key as a type tag


def field_errors(schema: dict, data) -> dict:
    if not isinstance(data, dict):
        return {"_": "form data must be a JSON object"}
    errors = {}
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.path)):
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    errors.setdefault(_path(error, name), "required")
        elif error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            for name in error.instance:
                if name not in allowed:
                    errors.setdefault(_path(error, name), "unknown field")
        else:
            errors.setdefault(_path(error), error.message)
    for key in RESERVED_KEYS & set(data):
        errors.setdefault(key, "reserved field name")
    for name, message in order_errors(schema, data).items():
        errors.setdefault(name, message)
    errors.update(find_problems(data))      # the real reason, e.g. not "nan is not of type 'string'"
    return errors


NOT_BEFORE = "x-not-before"     # a date (or time) field that may not lie before another field's, or today
TODAY = "today"                 # x-not-before: today: a date in the future or today (Beijing time), e.g. a due date


def order_errors(schema: dict, data: dict) -> dict:
    """Each field whose `x-not-before` names another field of the form (or `today`) and whose value (a
    date, or an ISO time) lies before that field's (or before today): JSON Schema cannot compare two fields."""
    errors = {}
    for name, prop in (schema.get("properties") or {}).items():
        other = prop.get(NOT_BEFORE) if isinstance(prop, dict) else None
        first = business_today() if other == TODAY else _moment_of(data.get(other))
        second = _moment_of(data.get(name))
        if first is not None and second is not None and type(first) is type(second) and second < first:
            errors[name] = f"{NOT_BEFORE} {other}"
    return errors


def _moment_of(value):
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else parse_iso(value)
    except ValueError:
        return None


def _path(error, extra=None):
    parts = [str(p) for p in error.path] + ([extra] if extra else [])
    return ".".join(parts) or "_"


def validate(schema: dict, data) -> dict:
    errors = field_errors(schema, data)
    if errors:
        raise InvalidData("the form data is not valid", fields=errors)
    return data

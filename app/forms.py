"""Form data against a user task's JSON Schema: typed values in, per-field messages out. Besides the
schema, every value must pass app.input_rules (finite numbers, text without NUL or lone surrogates):
JSON Schema's `minimum` lets NaN through, and the runtime calls validate() on every completion.

Conditional fields. A property the schema requires only under a condition (`if`/`then`/`else`, alone or in
`allOf`, whose `if` tests one property: `{"properties": {X: {"const": v} | {"enum": [...]}}, "required": [X]}`;
or `dependentRequired`) belongs to that condition: conditions() says which property and values make it
apply, the web form shows it only then, and validate() drops its value when the condition is false (a
stale answer left in a hidden field, e.g. a rejection reason on an accepted complaint, is never stored).
This happens in validate(), which the runtime calls on every completion, so the JSON API, the staff's
form and the customer portal keep the same data for the same input. A property required by any other
construct is always shown and never dropped: the validator stays the authority."""
import operator
from datetime import date

from jsonschema import Draft202012Validator, FormatChecker

from .errors import InvalidData
from .input_rules import BLANK, find_problems
from .timeutil import business_today, parse_iso

RESERVED_KEYS = {"typename"}   # the workflow serializer reads this key as a type tag


def field_errors(schema: dict, data) -> dict:
    if not isinstance(data, dict):
        return {"_": "form data must be a JSON object"}
    errors = {}
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors.update(_blank_errors(validator, data))
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
            errors.setdefault(_path(error), _without_value(error))
    for key in RESERVED_KEYS & set(data):
        errors.setdefault(key, "reserved field name")
    for name, message in order_errors(schema, data).items():
        errors.setdefault(name, message)
    errors.update(find_problems(data))      # the real reason, e.g. not "nan is not of type 'string'"
    return errors


NOT_BEFORE = "x-not-before"     # a date (or time) field that may not lie before another field's, or today
NOT_AFTER = "x-not-after"       # ... nor after it, e.g. the day something already happened: "x-not-after": "today"
TODAY = "today"                 # x-not-before: today: a date in the future or today (Beijing time), e.g. a due date


def order_errors(schema: dict, data: dict) -> dict:
    """Each field whose `x-not-before` (`x-not-after`) names another field of the form (or `today`) and whose value
    (a date, or an ISO time) lies before (after) that field's or today: JSON Schema cannot compare two fields."""
    errors = {}
    for name, prop in (schema.get("properties") or {}).items():
        value = _moment_of(data.get(name)) if isinstance(prop, dict) else None
        for keyword, wrong in ((NOT_BEFORE, operator.lt), (NOT_AFTER, operator.gt)):
            other = prop.get(keyword) if value is not None else None
            if other is None:
                continue
            bound = business_today() if other == TODAY else _moment_of(data.get(other))
            if bound is not None and type(bound) is type(value) and wrong(value, bound):
                errors.setdefault(name, f"{keyword} {other}")
    return errors


def _moment_of(value):
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else parse_iso(value)
    except ValueError:
        return None


def _blank_errors(validator, data: dict) -> dict:
    """{field: BLANK} for each text of spaces only where the form needs text (`minLength`, also in a condition):
    JSON Schema counts the spaces, so the data is checked once more with those texts empty, for that rule alone."""
    blank = {name for name, value in data.items() if isinstance(value, str) and value and not value.strip()}
    if not blank:
        return {}
    emptied = {**data, **{name: "" for name in blank}}
    return {error.path[0]: BLANK for error in validator.iter_errors(emptied)
            if error.validator == "minLength" and len(error.path) == 1 and error.path[0] in blank}


def _without_value(error) -> str:
    """jsonschema's message without the value it quotes ("'…4,000 characters…' is too long" → "the value is too
    long"; "False schema does not allow '…'"): an answer may hold personal data, and a 422 must not send it back."""
    message, shown = error.message, repr(error.instance)
    if message.startswith(shown):
        return "the value" + message[len(shown):]
    if message.endswith(shown):
        return message[:-len(shown)] + "the value"
    return message.split(" extra: ")[0]            # items: false names the items it found too many


def _path(error, extra=None):
    parts = [str(p) for p in error.path] + ([extra] if extra else [])
    return ".".join(parts) or "_"


def validate(schema: dict, data) -> dict:
    """The data without the values of conditional fields that do not apply (a new dict), or InvalidData."""
    data = drop_inapplicable(schema, data) if isinstance(data, dict) else data
    errors = field_errors(schema, data)
    if errors:
        raise InvalidData("the form data is not valid", fields=errors)
    return data


# ---- conditional fields ------------------------------------------------------------------------------------
ALWAYS = "always"          # a property some construct we do not read may require: shown, never dropped


def conditions(schema: dict) -> dict:
    """{property: [when, ...]}: the properties that apply only under a condition, each applying when any of
    its `when`s holds. A `when` is {"field": X, "values": [...]} (X holds one of them), the same with
    "negate": True (X is absent or holds none of them: an `else`), or {"field": X, "filled": True} (X has a
    value: `dependentRequired`). Properties the form always requires are not listed."""
    found = {}
    for block in [schema] + [b for b in schema.get("allOf") or [] if isinstance(b, dict)]:
        if "if" in block:
            _read_if(block, found)
    for trigger, names in (schema.get("dependentRequired") or {}).items():
        for name in names if isinstance(names, list) else []:
            found.setdefault(name, []).append({"field": trigger, "filled": True})
    for key in ("anyOf", "oneOf", "not", "dependentSchemas"):      # conditions we do not read: always shown
        _mark_required(schema.get(key), found)
    for block in schema.get("allOf") or []:
        if isinstance(block, dict):
            _mark_required({k: v for k, v in block.items() if k not in ("if", "then", "else")}, found)
    always = set(schema.get("required") or []) | {n for n, whens in found.items() if ALWAYS in whens}
    props = schema.get("properties") or {}
    return {name: whens for name, whens in found.items() if name not in always and name in props}


def _read_if(block: dict, found: dict):
    test = _single_test(block["if"])
    for branch, negate in (("then", False), ("else", True)):
        part = block.get(branch)
        if not isinstance(part, dict):
            continue
        if test is None:
            _mark_required(part, found)
            continue
        field, values = test
        for name in part.get("required") or []:
            found.setdefault(name, []).append({"field": field, "values": values, **({"negate": True} if negate else {})})
        _mark_required({k: v for k, v in part.items() if k not in ("required", "properties")}, found)
        for prop in (part.get("properties") or {}).values():
            _mark_required(prop, found)


def _single_test(test):
    """(field, values) of an `if` that tests one property against a constant or a list, else None."""
    if not isinstance(test, dict) or set(test) - {"properties", "required"}:
        return None
    props = test.get("properties")
    if not isinstance(props, dict) or len(props) != 1:
        return None
    (field, check), = props.items()
    if test.get("required") != [field] or not isinstance(check, dict) or len(check) != 1:
        return None
    if "const" in check:
        return field, [check["const"]]
    if isinstance(check.get("enum"), list):
        return field, list(check["enum"])
    return None


def _mark_required(node, found: dict):
    """Every property named in a `required` anywhere in `node`: always shown."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            names = item.get("required")
            for name in names if isinstance(names, list) else []:
                found.setdefault(name, []).append(ALWAYS)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def holds(when: dict, data: dict) -> bool:
    """Whether one `when` of conditions() holds for the (typed) data."""
    present = when["field"] in data
    if when.get("filled"):
        return present
    inside = present and any(_same(data[when["field"]], v) for v in when["values"])
    return not inside if when.get("negate") else inside


def _same(a, b) -> bool:
    """JSON equality: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def drop_inapplicable(schema: dict, data: dict) -> dict:
    """The data without the values of conditional fields whose condition is false (a condition may hang on
    another conditional field: dropped until nothing more drops). A field required only by another's being
    filled in (`dependentRequired`) is never dropped: given alone it is an answer, not a stale one."""
    whens_of = {name: whens for name, whens in conditions(schema).items()
                if not all(w.get("filled") for w in whens)}
    out = dict(data)
    while True:
        stale = [name for name, whens in whens_of.items()
                 if name in out and not any(holds(w, out) for w in whens)]
        if not stale:
            return out
        for name in stale:
            del out[name]

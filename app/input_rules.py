"""What a value must be to get past any boundary (JSON body, form post, marshmallow schema): text
without NUL characters or unpaired surrogates (PostgreSQL refuses the first, every encoder the
second, so either would surface later as a 500) and numbers that are finite (NaN compares false
with everything, so `NaN > 50000` silently skipped the management decision)."""
import math

from marshmallow import Schema, ValidationError, fields, validates_schema

BAD_TEXT = "contains a NUL character or an unpaired surrogate"
NOT_FINITE = "must be a finite number"
BLANK = "may not be blank"       # a required text of spaces only


def bad_text(text: str) -> bool:
    """True for text holding U+0000 or a lone surrogate (U+D800..U+DFFF never stand alone in
    valid UTF-8; Python keeps them in str, e.g. from the JSON escape "\\ud800")."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def not_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def value_problem(value):
    """The message for one scalar that may not pass, else None."""
    if isinstance(value, str) and bad_text(value):
        return BAD_TEXT
    if not_finite(value):
        return NOT_FINITE
    return None


def find_problems(value, prefix=()) -> dict:
    """{"dotted.path": message} for every bad string (keys included) or non-finite number anywhere
    in a JSON-like value. Iterative, so no nesting depth can exhaust the stack."""
    problems = {}
    stack = [(tuple(prefix), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and bad_text(key):
                    problems.setdefault(_dotted(path + ("?",)), BAD_TEXT)
                    continue
                stack.append((path + (str(key),), child))
        elif isinstance(item, (list, tuple)):
            stack.extend((path + (str(i),), child) for i, child in enumerate(item))
        else:
            message = value_problem(item)
            if message:
                problems.setdefault(_dotted(path), message)
    return problems


def depth(value) -> int:
    """How deeply containers nest in a JSON-like value (a scalar is 0, [] is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _dotted(path) -> str:
    return ".".join(path) or "_"


class CleanTextSchema(Schema):
    """A marshmallow base schema that refuses, per field, strings with NUL or lone surrogates and
    non-finite numbers in any declared field, whatever else the field allows."""

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _clean_text(self, _data, original_data, **kwargs):
        if not isinstance(original_data, dict):
            return
        problems = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key in original_data:
                found = find_problems(original_data[key], (key,))
                if found:
                    problems[key] = next(iter(found.values()))
        if problems:
            raise ValidationError(problems)


class Text(fields.String):
    """A text field of a marshmallow schema: loaded without the spaces around it; with `required=True`, text of
    spaces only is refused as BLANK (it would say nothing, e.g. a customer's name or a complaint's description)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text and self.required:
            raise ValidationError(BLANK)
        return text

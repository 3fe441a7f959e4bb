"""Customer messages: the Jinja templates in processes/messages/ that deploy with a process version,
how they are loaded, checked against the diagrams' notify_customer calls, and rendered.

A template is one file per message and language, `<name>.<lang>.txt` (Chinese `zh` first, `en`
second), with three blocks: `subject` (e-mail subject), `sms` (short text) and `body` (e-mail body).
Shared pieces are partials, `_<name>.<lang>.txt`, pulled in with `{% include "_<name>.<lang>.txt" %}`.
A template sees the standard fields and the keyword arguments of the diagram's call, and the filters
`datetime`, `date` (Asia/Shanghai, written the template language's way) and `money`.
Templates run in Jinja's immutable sandbox with no globals: a template cannot reach Python internals."""
import ast
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Optional

from jinja2 import DictLoader, StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from .errors import ProcessError
from .timeutil import BUSINESS_TZ

FOLDER = "messages"                       # below processes/
STANDARD_FIELDS = ("complaint_number", "portal_url", "company", "hotline", "received_at")
BLOCKS = ("subject", "sms", "body")
DEFAULT_LANGUAGE = "zh"
REQUIRED_LANGUAGES = ("zh", "en")
FILE_NAME = re.compile(r"^_?[a-z][a-z0-9_]*\.[a-z]{2}\.txt$")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EMPTY = "—"
MAX_POWER = 100                           # largest exponent of `**` in a template
MAX_REPEAT = 100_000                      # longest text or list `*` may build
MAX_BITS = 4096                           # largest integer `**` and `*` may build
SAMPLE_STANDARD = {"complaint_number": "TS-20261201-000123", "portal_url": "https://example.com/my/" + "0" * 48,
                   "company": "示例保险公司", "hotline": "95500", "received_at": "2026-12-01T07:00:00+00:00"}


class MessageError(ProcessError):
    """A customer message could not be rendered: names the template and what went wrong."""
    code = "message_error"

    def __init__(self, message, file=None, line=None):
        super().__init__(message)
        self.file, self.line = file, line


@dataclass(frozen=True)
class Rendered:
    subject: str
    sms: str
    body: str


@dataclass
class Call:
    """One notify_customer('<template>', key=…) written in a diagram script."""
    template: str
    fields: frozenset
    file: str
    element_id: Optional[str]
    line: Optional[int]
    values: dict = field(default_factory=dict)      # the keyword arguments written as literals

    @property
    def survey(self) -> Optional[str]:
        return self.values.get("survey")


def _problem(file, element_id, line, message):
    from .engine.registry import Problem       # the registry imports this module
    return Problem(file, element_id, line, message)


# ---- loading -------------------------------------------------------------------------------------
def load(processes_dir) -> tuple[dict, list]:
    """({"<name>.<lang>": text} of processes/messages/*.txt, problems with file and line)."""
    templates, problems = {}, []
    for path in sorted((Path(processes_dir) / FOLDER).glob("*.txt")):
        file = f"{FOLDER}/{path.name}"
        if not FILE_NAME.match(path.name):
            problems.append(_problem(file, None, None, "a message file is named <template>.<lang>.txt, e.g. "
                                                       "result.zh.txt (a partial: _remedies.zh.txt)"))
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            problems.append(_problem(file, None, line, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8"))
            continue
        templates[path.name.removesuffix(".txt")] = text
    return templates, problems


# ---- filters -------------------------------------------------------------------------------------
def _language(context) -> str:
    parts = (context.name or "").split(".")
    return parts[-2] if len(parts) >= 3 else DEFAULT_LANGUAGE


def _local(value):
    """A date, or an aware datetime in Asia/Shanghai, from an ISO string, date or datetime."""
    if isinstance(value, str):
        text = value.strip()
        value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return value
        raise ValueError(f"not a date or time: {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"time without a time zone: {value.isoformat()}")
    return value.astimezone(BUSINESS_TZ)


def _written_date(day, language) -> str:
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


@pass_context
def datetime_filter(context, value) -> str:
    """2026年12月1日 15:00 / 1 Dec 2026, 15:00 (a date alone is written without a time)."""
    if value is None or value == "":
        return EMPTY
    local, language = _local(value), _language(context)
    text = _written_date(local, language)
    if isinstance(local, datetime):
        text += (" " if language == "zh" else ", ") + f"{local:%H:%M}"
    return text


@pass_context
def date_filter(context, value) -> str:
    if value is None or value == "":
        return EMPTY
    return _written_date(_local(value), _language(context))


def money_filter(value) -> str:
    """¥1,234.00"""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    return f"¥{amount:,.2f}"


# ---- the sandbox ---------------------------------------------------------------------------------
def _bits(value) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (no internals, no mutation), and no huge numbers or texts from `**` and `*`."""
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options):
        super().__init__(**options)
        self.parsed = {}          # template key -> parsed template or its syntax error (for the check)

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int) and (right > MAX_POWER or _bits(left) * right > MAX_BITS):
            raise SecurityError(f"a power that large is not allowed in a message (exponent {right})")
        if operator == "*":
            sized = next((v for v in (left, right) if isinstance(v, (str, list, tuple))), ())
            times = next((v for v in (left, right) if isinstance(v, int)), 0)
            if len(sized) * times > MAX_REPEAT:
                raise SecurityError(f"a text or list longer than {MAX_REPEAT:,} is not allowed in a message")
            if _bits(left) + _bits(right) > MAX_BITS:
                raise SecurityError("a number that large is not allowed in a message")
        return super().call_binop(context, operator, left, right)


class _Loader(DictLoader):
    """The version's templates by file name; the file name shows in errors and tracebacks."""

    def get_source(self, environment, template):
        source, _, uptodate = super().get_source(environment, template)
        return source, f"{FOLDER}/{template}", uptodate


_environments: OrderedDict = OrderedDict()
_environments_lock = threading.Lock()
MAX_ENVIRONMENTS = 16


def _fingerprint(templates: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(templates):
        h.update(f"{key}\0{templates[key]}\0".encode())
    return h.hexdigest()


def _new_environment(templates: dict):
    env = _Sandbox(loader=_Loader({f"{k}.txt": v for k, v in templates.items()}), undefined=StrictUndefined,
                   autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                   auto_reload=False, finalize=lambda value: "" if value is None else value)
    env.globals.clear()
    env.filters.update(datetime=datetime_filter, date=date_filter, money=money_filter)
    return env


def environment(templates: dict):
    """One sandboxed environment per set of templates (a version's): each template compiles once."""
    key = _fingerprint(templates)
    with _environments_lock:
        env = _environments.get(key)
        if env is None:
            env = _environments[key] = _new_environment(templates)
            while len(_environments) > MAX_ENVIRONMENTS:
                _environments.popitem(last=False)
        _environments.move_to_end(key)
    return env


# ---- rendering -----------------------------------------------------------------------------------
def _template_key(templates: dict, name: str, language: str) -> str:
    if name.startswith("_"):
        raise MessageError(f"{name!r} is a partial, not a message")
    for key in (f"{name}.{language}", f"{name}.{DEFAULT_LANGUAGE}"):
        if key in templates:
            return key
    raise MessageError(f"there is no message template {name!r} ({FOLDER}/{name}.{DEFAULT_LANGUAGE}.txt)")


def _where(exc) -> tuple[Optional[str], Optional[int]]:
    """The template file and line a rendering error happened on (Jinja puts them in the traceback)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.filename, exc.lineno
    found = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            found = (template.filename, template.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    return found


def _tidy(text: str, one_line: bool) -> str:
    if one_line:
        return " ".join(text.split())
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def render(templates: dict, name: str, language: str, context: dict) -> Rendered:
    """The message `name` in `language` (Chinese when there is no such file) with `context`."""
    key = _template_key(templates, name, language)
    try:
        template = environment(templates).get_template(f"{key}.txt")
        missing = [block for block in BLOCKS if block not in template.blocks]
        if missing:
            raise MessageError(f"{FOLDER}/{key}.txt has no {{% block {missing[0]} %}}", f"{FOLDER}/{key}.txt")
        ctx = template.new_context(dict(context))
        parts = {block: "".join(template.blocks[block](ctx)) for block in BLOCKS}
    except MessageError:
        raise
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
        file, line = _where(exc)
        place = f"{file}:{line or '?'}" if file else f"{FOLDER}/{key}.txt"
        raise MessageError(f"message {name!r} ({place}): {type(exc).__name__}: {exc}", file, line) from exc
    return Rendered(subject=_tidy(parts["subject"], True), sms=_tidy(parts["sms"], True),
                    body=_tidy(parts["body"], False))


# ---- finding the calls in a diagram script -------------------------------------------------------
def _literal_text(node) -> Optional[str]:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _read_call(node):
    """(template name, {field: literal value or None}, None) of a notify_customer call, or (…, error)."""
    named = [k.value for k in node.keywords if k.arg == "template"]
    name = _literal_text(node.args[0] if node.args else (named[0] if named else None))
    keywords = [k for k in node.keywords if k.arg != "template"]
    if name is None:
        return None, {}, "the template name must be written as a literal text, e.g. notify_customer('result', …)"
    if len(node.args) > 1 or any(k.arg is None for k in keywords):
        return name, {}, "pass the message fields as name=value keyword arguments"
    fields = {k.arg: k.value.value if isinstance(k.value, ast.Constant) else None for k in keywords}
    survey = next((k.value for k in keywords if k.arg == "survey"), None)
    if survey is not None and _literal_text(survey) is None:
        return name, {}, "survey= must name a form as a literal text, e.g. survey='satisfaction_survey'"
    return name, fields, None


def calls_in_script(script: str, file: str, element_id: Optional[str], first_line: int) -> tuple[list, list]:
    """The notify_customer calls in one script, and problems for calls that cannot be checked.
    `first_line`: the diagram line the script's first line is on. A script that does not parse is
    reported by the expression check, not here."""
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return [], []
    calls, problems = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "notify_customer":
            line = first_line + node.lineno - 1
            name, fields, error = _read_call(node)
            if error:
                where = f"notify_customer({name!r})" if name else "notify_customer"
                problems.append(_problem(file, element_id, line, f"{where}: {error}"))
            else:
                values = {k: v for k, v in fields.items() if v is not None}
                calls.append(Call(name, frozenset(fields), file, element_id, line, values))
    return calls, problems


# ---- checking ------------------------------------------------------------------------------------
def _include_key(name) -> str:
    return str(name).removesuffix(".txt")


def _parse(env, templates, key, problems) -> Optional[nodes.Template]:
    """The parsed template and the variables it uses (`tree.undeclared`), once per environment."""
    file = f"{FOLDER}/{key}.txt"
    if key not in env.parsed:
        try:
            tree = env.parse(templates[key], name=f"{key}.txt", filename=file)
            tree.undeclared = meta.find_undeclared_variables(tree)
            env.parsed[key] = tree
        except TemplateSyntaxError as exc:
            env.parsed[key] = exc
    found = env.parsed[key]
    if isinstance(found, TemplateSyntaxError):
        problems.append(_problem(file, None, found.lineno, f"template syntax error: {found.message}"))
        return None
    return found


def _with_includes(env, templates, key, problems) -> dict:
    """{key: parsed template} of `key` and every partial it includes, directly or not."""
    found, todo = {}, [key]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        tree = found[current] = _parse(env, templates, current, problems)
        if tree is None:
            continue
        for node in tree.find_all(nodes.Include):
            target = node.template
            file = f"{FOLDER}/{current}.txt"
            if not isinstance(target, nodes.Const) or not isinstance(target.value, str):
                problems.append(_problem(file, None, node.lineno, "an include names its partial as a literal "
                                                                  'text, e.g. {% include "_remedies.zh.txt" %}'))
            elif _include_key(target.value) not in templates:
                problems.append(_problem(file, None, node.lineno, f"included {FOLDER}/{target.value} is missing"))
            else:
                todo.append(_include_key(target.value))
    return found


def _name_line(tree, name) -> Optional[int]:
    return next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)


def _static_problems(key, trees: dict, allowed: set) -> list:
    """Blocks present; only available variables; no attribute the sandbox would refuse."""
    problems = []
    top = trees.get(key)
    if top is not None:
        missing = [b for b in BLOCKS if b not in {node.name for node in top.find_all(nodes.Block)}]
        if missing:
            problems.append(_problem(f"{FOLDER}/{key}.txt", None, 1, "the template has no " + ", ".join(
                f"{{% block {b} %}}" for b in missing)))
    for current, tree in trees.items():
        if tree is None:
            continue
        file = f"{FOLDER}/{current}.txt"
        for name in sorted(tree.undeclared - allowed):
            problems.append(_problem(file, None, _name_line(tree, name),
                                     f"{name!r} is not available to message {key.split('.')[0]!r}: not a standard "
                                     f"field nor passed by every notify_customer call naming it "
                                     f"(available: {', '.join(sorted(allowed))})"))
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(attr, str) and attr.startswith("_"):
                problems.append(_problem(file, None, node.lineno, f"{attr!r}: names starting with _ are "
                                                                  "refused in a message"))
    return problems


def _sample(name: str, call: Call):
    if name in call.values:
        return call.values[name]
    if name.endswith(("_at", "_due", "_until")) or name in ("due", "until"):
        return "2026-12-02T07:00:00+00:00"
    if name.endswith("_on"):
        return "2026-12-02"
    if name.endswith("_days"):
        return 30
    if "amount" in name:
        return 1234.5
    return "示例 sample"


def _render_problems(templates, key, calls) -> list:
    """Render with sample values per call, then once with every field None; the first failure."""
    name, language = key.rsplit(".", 1)
    contexts = [{f: _sample(f, c) for f in c.fields} for c in calls]
    contexts.append({f: None for c in calls for f in c.fields})
    for fields in contexts:
        try:
            render(templates, name, language, {**SAMPLE_STANDARD, **fields})
        except MessageError as exc:
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause else str(exc)
            with_none = " with the fields None" if fields is contexts[-1] else ""
            return [_problem(exc.file or f"{FOLDER}/{key}.txt", None, exc.line,
                             f"rendering failed{with_none}: {reason}")]
    return []


def check(templates: dict, calls: list) -> list:
    """Every template the calls name exists in each required language, parses, has the three blocks,
    uses only the standard fields and the fields every call naming it passes, and renders."""
    env = environment(templates)
    by_name: dict = {}
    for call in calls:
        by_name.setdefault(call.template, []).append(call)
    problems = []
    for name, named in by_name.items():
        allowed = set(STANDARD_FIELDS) | frozenset.intersection(*(c.fields for c in named))
        for language in REQUIRED_LANGUAGES:
            key = f"{name}.{language}"
            if key not in templates:
                problems += [_problem(c.file, c.element_id, c.line, f"notify_customer({name!r}): "
                                      f"{FOLDER}/{key}.txt is missing") for c in named]
                continue
            found = []
            trees = _with_includes(env, templates, key, found)
            found += _static_problems(key, trees, allowed)
            problems += found or _render_problems(templates, key, named)
    unique = {(p.file, p.element_id, p.line, p.message): p for p in problems}
    return list(unique.values())


def for_bundle(templates: dict, names) -> dict:
    """The templates (every language) of the messages `names` and the partials they include."""
    env, wanted = environment(templates), set()
    for key in (k for k in templates if k.rsplit(".", 1)[0] in set(names)):
        wanted |= set(_with_includes(env, templates, key, []))
    return {key: templates[key] for key in sorted(wanted) if key in templates}

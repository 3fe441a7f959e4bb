"""Load and check processes/ and forms/, and register immutable process versions.

processes/ holds the BPMN diagrams (*.bpmn) and the decision tables (*.dmn) their business-rule tasks
call; a version holds the decision tables it calls beside its diagrams, so a changed table is a new
version. The controlled vocabularies (processes/vocabularies/, app/vocab.py) deploy with every version:
they are in its content hash, beside its forms, and give the forms' coded fields their choices.

A check reports every problem as file, element id, line and message, and with a `code` and `params`
saying what is wrong in words the web layer translates (app/web/procedure/problems.py; the engine knows
no language but the English of `message`). Deploying never deploys a file with a problem: the last good
version keeps serving.

What counts as a change. A version is registered only when its content differs from every version
deployed before, compared in canonical form (`canonical_hash`, computed on the fly from the stored text:
`content_hash` stays the hash of the text as stored). Not a change, because a modeler writes them at will:
  - XML whitespace and indentation, attribute order, namespace prefixes (`bpmn:` or a default
    namespace), comments, the XML declaration, "100.0" for 100 in the layout's coordinates;
  - the modeler's name: `exporter`, `exporterVersion` and Camunda Modeler's `modeler:` attributes;
  - the order of the layout's shapes and edges (BPMNPlane, DMNDiagram), and the ids of layout (DI)
    elements, which nothing refers to;
  - in forms and vocabularies, key order and whitespace (they are compared as parsed JSON / TOML).
A change, and so a new version: any element, attribute or text of the procedure itself (a renamed task,
a condition, a timer, documentation), the order of the procedure's own elements (the engine reads
some in order), and the layout itself: a moved shape or a bent edge is a visible change of the
diagram that compliance reads as the official procedure, so it is versioned like any other.
"""
import ast
import codecs
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from .. import messages, vocab
from ..models import ProcessVersion
from . import event_forms, sandbox
from .workflow import TASK_PROPERTIES, is_call_activity, is_user_task_spec, new_parser, serializer

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}
XML_DECLARATION = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
XML_DECLARATION_TEXT = re.compile(r"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[A-Za-z0-9._:-]+\2""")
NOT_DECODABLE = "the file is not valid UTF-8 (or the encoding its XML declaration names)"
DMN_SUFFIX = ".dmn"
UPLOADABLE = (".bpmn", DMN_SUFFIX)
# SpiffWorkflow special-cases UNIQUE (first match) and COLLECT (all matches, as lists); every other
# policy it runs as "the first match", which only FIRST says.
RUN_HIT_POLICIES = ("UNIQUE", "FIRST", "COLLECT")
DMN_HIT_POLICIES = RUN_HIT_POLICIES + ("PRIORITY", "ANY", "RULE ORDER", "OUTPUT ORDER")
# The engine's rule for a `?` in an input cell: replaced by the input, outside quotes (DMNEngine.evaluate).
DMN_QUESTION_MARK = re.compile(r'''(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)''')
FEEL_LITERALS = {"true": "True", "false": "False", "null": "None"}
ISO_LITERAL = re.compile(r"^(R\d*/)?(P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?|\d{4}-\d{2}-\d{2}T\S*)$")


@dataclass
class Problem:
    file: str
    element_id: Optional[str]
    line: Optional[int]
    message: str                      # in English, for the CLI, the logs and the API
    code: str = "engine"              # what is wrong (ENGINE: only `message` says)
    params: dict = field(default_factory=dict)
    element_name: Optional[str] = field(default=None, compare=False)    # filled in by load_processes

    def __str__(self):
        return f"{self.file}:{self.line or '?'}: [{self.element_id or '-'}] {self.message}"


ENGINE = "engine"


def _content_hash(files, forms, messages_, vocabularies, xml=lambda text: text) -> str:
    """The hash of a version's content; `xml` gives the form of each BPMN/DMN text that is hashed."""
    h = hashlib.sha256()
    for name in sorted(files):
        kind = "dmn" if name.endswith(DMN_SUFFIX) else "bpmn"
        h.update(f"{kind}:{name}\n".encode() + xml(files[name]).encode())
    for name in sorted(forms or {}):
        h.update(f"form:{name}\n".encode() + json.dumps(forms[name], sort_keys=True).encode())
    for name in sorted(messages_ or {}):
        h.update(f"message:{name}\n".encode() + messages_[name].encode())
    for name in sorted(vocabularies or {}):
        h.update(f"vocabulary:{name}\n".encode() + json.dumps(vocabularies[name], sort_keys=True).encode())
    return h.hexdigest()


@dataclass
class Bundle:
    """Everything one deployed version holds."""
    process_id: str
    name: str
    files: dict
    forms: dict
    lanes: dict
    spec_json: str
    subprocess_specs_json: str
    messages: dict = field(default_factory=dict)      # "<template>.<lang>" -> text, partials included
    vocabularies: dict = field(default_factory=dict)  # name -> {title, title_en, terms} (app/vocab.py)
    content_hash: str = field(init=False)

    def __post_init__(self):
        self.content_hash = _content_hash(self.files, self.forms, self.messages, self.vocabularies)

    @cached_property
    def canonical_hash(self) -> str:
        return _content_hash(self.files, self.forms, self.messages, self.vocabularies, canonical_xml)


# ---- the canonical form: what a modeler may rewrite without changing the procedure (module docstring) --
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
MODELER_NS = "http://camunda.org/schema/modeler/1.0"
TOOL_ATTRIBUTES = {"exporter", "exporterVersion"}
LAYOUT_NS = {"http://www.omg.org/spec/BPMN/20100524/DI", "http://www.omg.org/spec/DD/20100524/DC",
             "http://www.omg.org/spec/DD/20100524/DI", "https://www.omg.org/spec/DMN/20191111/DMNDI/",
             "http://www.omg.org/spec/DMN/20180521/DMNDI/", "http://www.omg.org/spec/DMN/20180521/DC/",
             "http://www.omg.org/spec/DMN/20180521/DI/"}
LAYOUT_CONTAINERS = {"BPMNPlane", "DMNDiagram"}      # their shapes and edges are drawn in any order
COORDINATES = {"x", "y", "width", "height"}


def _number(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else repr(number)


def _canonical_attributes(node):
    layout = etree.QName(node).namespace in LAYOUT_NS
    for name in list(node.attrib):
        qname = etree.QName(name)
        if qname.namespace == MODELER_NS or (qname.namespace is None and name in TOOL_ATTRIBUTES) \
                or (layout and name == "id"):
            del node.attrib[name]
        elif name == XSI_TYPE:          # a QName value: its prefix (or none) is the file's choice
            prefix, _, local = node.get(name).rpartition(":")
            node.set(name, f"{{{node.nsmap.get(prefix or None, prefix)}}}{local}")
        elif layout and name in COORDINATES:
            node.set(name, _number(node.get(name)))


def canonical_xml(text: str) -> str:
    """The BPMN or DMN text in C14N 2.0 (prefixes rewritten, text stripped, no comments) after dropping
    what a modeler writes at will and sorting the layout's shapes and edges (see the module docstring)."""
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(text.encode("utf-8"), parser)
    for node in root.iter(etree.Element):
        _canonical_attributes(node)
    for container in [n for n in root.iter(etree.Element) if etree.QName(n).localname in LAYOUT_CONTAINERS]:
        shapes = sorted(container, key=lambda n: etree.canonicalize(n, rewrite_prefixes=True, strip_text=True))
        container[:] = shapes
    return etree.canonicalize(root, rewrite_prefixes=True, strip_text=True)


def _line_of(tree, element_id):
    if tree is None or not element_id:
        return None
    found = tree.xpath(f'//*[@id="{element_id}"]')
    return found[0].sourceline if found else None


def lint_expressions(file, tree) -> list[Problem]:
    """Compile every condition, script and timer expression in the sandbox, as they will run: the
    engine only compiles them when they run, which would be far too late. Each refused construct is
    a problem on the line where it is written."""
    problems = []

    def owner(node):
        # The element a modeler user clicks: the event, not its inner event definition.
        while node is not None and (node.get("id") is None or etree.QName(node).localname.endswith("EventDefinition")):
            node = node.getparent()
        return node

    def check(node, mode, what):
        text = (node.text or "").strip()
        host = owner(node)
        element_id = host.get("id") if host is not None else None
        if not text:
            problems.append(Problem(file, element_id, node.sourceline, f"{what} is empty", "expression_empty",
                                    {"what": what}))
            return
        if what == "timer" and ISO_LITERAL.match(text):
            problems.append(Problem(file, element_id, node.sourceline,
                                    f"timer {text!r} is evaluated as Python; quote it: \"{text}\"", "timer_not_quoted",
                                    {"expression": text}))
            return
        # A script keeps the lines of the element's text; an expression starts at its first non-blank.
        raw = node.text
        first = node.sourceline + (0 if mode == "exec" else raw[:len(raw) - len(raw.lstrip())].count("\n"))
        for line, message in sandbox.check(raw, mode):
            problems.append(Problem(file, element_id, first + (line or 1) - 1, f"{what}: {message} in {text!r}",
                                    "expression_refused", {"what": what, "detail": message, "expression": text}))

    for node in tree.xpath("//bpmn:conditionExpression", namespaces=NS):
        check(node, "eval", "condition")
    for node in tree.xpath("//bpmn:scriptTask/bpmn:script", namespaces=NS):
        check(node, "exec", "script")
    for node in tree.xpath("//bpmn:timeDate|//bpmn:timeDuration|//bpmn:timeCycle", namespaces=NS):
        check(node, "eval", "timer")
    for node in tree.xpath("//spiffworkflow:preScript|//spiffworkflow:postScript", namespaces=NS):
        check(node, "exec", "script")
    # The other places SpiffWorkflow evaluates text of the diagram (none in processes/ today).
    for node in tree.xpath("//bpmn:conditionalEventDefinition/bpmn:condition|//bpmn:loopCardinality"
                           "|//bpmn:completionCondition|//spiffworkflow:messagePayload"
                           "|//spiffworkflow:processVariableCorrelation/spiffworkflow:expression", namespaces=NS):
        check(node, "eval", "expression")
    # A user task's properties that the runtime evaluates on its data (workflow.TASK_PROPERTIES).
    for node in tree.xpath("//spiffworkflow:property", namespaces=NS):
        name, value = node.get("name"), node.get("value") or ""
        if name in TASK_PROPERTIES:
            host = owner(node)
            element_id = host.get("id") if host is not None else None
            problems += [Problem(file, element_id, node.sourceline, f"property {name}: {message} in {value!r}",
                                 "property_refused", {"property": name, "detail": message, "expression": value})
                         for _line, message in sandbox.check(value, "eval")]
    return problems


# ---- decision tables (DMN) ------------------------------------------------------------------------
def _dmn_ns(tree) -> dict:
    """The DMN namespace of this file (1.1, 1.2 or 1.3: whichever the modeler wrote) as `dmn:`."""
    return {"dmn": etree.QName(tree).namespace}


def _text_node(entry):
    return next((t for t in entry if isinstance(t.tag, str) and etree.QName(t).localname == "text"), None)


def _cell_text(entry) -> str:
    node = _text_node(entry)
    return ((node.text if node is not None else "") or "").strip()


def _cell_line(entry) -> int:
    """The line the cell's text is written on (its entry's when it has none)."""
    node = _text_node(entry)
    return node.sourceline if node is not None else entry.sourceline


def _parsed(source: str):
    """The AST body of a Python expression, or None when it is not one."""
    try:
        return ast.parse(source, mode="eval").body
    except SyntaxError:
        return None


def _comparison_cell(input_text: str, cell: str) -> tuple[Optional[str], Optional[tuple]]:
    """A cell that is no value: the engine glues it to the input with no space between."""
    glued = f"{input_text}{cell}"
    if _parsed(f"v {cell}") is None:
        return None, (f"input cell {cell!r} is not Python (cells are Python, not FEEL): write a value such as "
                      f"\"high\", a comparison such as > 50000, or use ? for the input, e.g. 50000 <= ? <= 100000",
                      "dmn_cell_not_python", {"cell": cell})
    if ast.dump(_parsed(glued) or ast.Pass()) != ast.dump(_parsed(f"({input_text}) {cell}")):
        return None, (f"input cell {cell!r}: the engine glues it to the input as {glued!r}; "
                      f"use ? for the input, e.g. ? {cell}", "dmn_cell_glued", {"cell": cell, "glued": glued})
    return glued, None


def _input_cell_expression(input_text: str, type_ref: str, cell: str) -> tuple[Optional[str], Optional[tuple]]:
    """(the expression SpiffWorkflow evaluates for this input cell, or a reason it cannot work as
    (message, code, params)).
    A cell with `?` is evaluated with `?` as the input; a value is compared with `==`; anything
    else is glued to the input (DMNEngine.evaluate)."""
    if DMN_QUESTION_MARK.search(cell):
        return DMN_QUESTION_MARK.sub("dmninputexpr", cell), None
    value = _parsed(cell)
    if value is None:
        return _comparison_cell(input_text, cell)
    if isinstance(value, ast.Tuple):
        return None, (f"input cell {cell!r} compares {input_text} with a tuple, which is never equal: "
                      f"write one rule per value, or ? in ({cell})", "dmn_cell_tuple",
                      {"cell": cell, "input": input_text})
    if isinstance(value, ast.Name) and type_ref == "string":
        return None, (f"input cell {cell!r} of a string column is a variable name: quote the text, \"{cell}\"",
                      "dmn_cell_unquoted", {"cell": cell})
    return f"({input_text}) == ({cell})", None


def _sandbox_problems(file, element_id, line, what, expression, shown) -> list[Problem]:
    return [Problem(file, element_id, line, f"{what}: {message} in {shown!r}", "expression_refused",
                    {"what": what, "detail": message, "expression": shown})
            for _, message in sandbox.check(expression, "eval")]


def _lint_input_cells(file, table, ns, inputs) -> list[Problem]:
    """`inputs`: (input expression, typeRef) per column."""
    problems = []
    for rule in table.findall("dmn:rule", ns):
        for (input_text, type_ref), entry in zip(inputs, rule.findall("dmn:inputEntry", ns)):
            cell = _cell_text(entry)
            if cell in ("", "-") or not input_text:
                continue
            expression, reason = _input_cell_expression(input_text, type_ref, cell)
            if reason:
                problems.append(Problem(file, entry.get("id"), _cell_line(entry), *reason))
            else:
                problems += _sandbox_problems(file, entry.get("id"), _cell_line(entry), "input cell", expression, cell)
    return problems


def _lint_output_cells(file, table, ns) -> list[Problem]:
    problems = []
    for entry in table.xpath("dmn:rule/dmn:outputEntry", namespaces=ns):
        cell = _cell_text(entry)
        if not cell:
            continue
        if cell in FEEL_LITERALS:
            problems.append(Problem(file, entry.get("id"), _cell_line(entry),
                                    f"output cell {cell!r} is FEEL; cells are Python: write {FEEL_LITERALS[cell]}",
                                    "dmn_output_feel", {"cell": cell, "python": FEEL_LITERALS[cell]}))
        else:
            problems += _sandbox_problems(file, entry.get("id"), _cell_line(entry), "output cell", cell, cell)
    return problems


def lint_decision_cells(file, tree) -> list[Problem]:
    """Compile every input expression and input and output cell of the decision tables in the sandbox,
    as SpiffWorkflow will evaluate them (Python, not FEEL): like lint_expressions for the diagrams."""
    ns, problems = _dmn_ns(tree), []
    for table in tree.xpath("//dmn:decisionTable", namespaces=ns):
        inputs = []
        for node in table.xpath("dmn:input/dmn:inputExpression", namespaces=ns):
            text = _cell_text(node)
            inputs.append((text, node.get("typeRef") or ""))
            host = node.getparent()
            if not text:
                problems.append(Problem(file, host.get("id"), _cell_line(node), "input expression is empty",
                                        "expression_empty", {"what": "input expression"}))
            else:
                problems += _sandbox_problems(file, host.get("id"), _cell_line(node), "input expression", text, text)
        problems += _lint_input_cells(file, table, ns, inputs) + _lint_output_cells(file, table, ns)
    return problems


def _hit_policy_problem(file, table) -> Optional[Problem]:
    """A hit policy DMN allows but SpiffWorkflow does not run as written (one DMN does not allow at
    all is refused by the XSD validation)."""
    policy, aggregation = table.get("hitPolicy", "UNIQUE"), table.get("aggregation")
    if policy not in DMN_HIT_POLICIES or (policy in RUN_HIT_POLICIES and not aggregation):
        return None
    shown = f"{policy} {aggregation}" if aggregation else policy
    return Problem(file, table.get("id"), table.sourceline,
                   f"hit policy {shown} is not run as DMN defines it: SpiffWorkflow knows only FIRST, UNIQUE and "
                   f"COLLECT without aggregation (any other policy gives the first matching rule)", "dmn_hit_policy",
                   {"policy": shown})


def _catch_all_problem(file, table, ns) -> Optional[Problem]:
    """A FIRST/UNIQUE table whose last rule does not match everything: when no rule matches, the
    engine writes no result, and the gateway after it fails on a missing variable."""
    rules = table.findall("dmn:rule", ns)
    if not rules:
        return Problem(file, table.get("id"), table.sourceline, "the decision table has no rule", "dmn_no_rule")
    if table.get("hitPolicy", "UNIQUE") == "COLLECT":
        return None
    if any(_cell_text(entry) not in ("", "-") for entry in rules[-1].findall("dmn:inputEntry", ns)):
        return Problem(file, rules[-1].get("id"), rules[-1].sourceline,
                       "the last rule must match every case (- in every input cell): when no rule matches, "
                       "the engine writes no result", "dmn_no_catch_all")
    return None


def check_decision_tables(file, tree) -> list[Problem]:
    """What the engine would get wrong without an error: a hit policy it does not run as written, and
    a table without a catch-all last rule."""
    ns, problems = _dmn_ns(tree), []
    for table in tree.xpath("//dmn:decisionTable", namespaces=ns):
        problem = _hit_policy_problem(file, table) or _catch_all_problem(file, table, ns)
        if problem:
            problems.append(problem)
    return problems


def _form(forms_dir: Path, name: str):
    """(schema, None) or (None, (message, code, params)) of forms/<name>.json."""
    path = forms_dir / f"{name}.json"
    where = {"form_file": path.name, "folder": forms_dir.name}
    if not path.exists():
        return None, (f"user task has no form: {path.name} is missing in {forms_dir.name}/", "form_missing", where)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except json.JSONDecodeError as exc:
        return None, (f"{path.name} is not valid JSON: {exc}", "form_not_json",
                      {**where, "detail": exc.msg, "form_line": exc.lineno})
    except SchemaError as exc:
        return None, (f"{path.name} is not a valid JSON Schema 2020-12: {exc.message}", "form_not_schema",
                      {**where, "detail": exc.message})
    if schema.get("type") != "object":
        return None, (f'{path.name}: a form schema must have "type": "object"', "form_not_object", where)
    mismatch = _option_names_mismatch(schema)
    if mismatch:
        field_name, key, names, values = mismatch
        return None, (f"{path.name}: the field {field_name!r} names {names} choices in {key} but offers {values}",
                      "form_option_names", {**where, "field": field_name, "key": key, "names": names,
                                            "values": values})
    return schema, None


OPTION_NAMES = ("x-enumNames", "x-enumNames-en")      # the names of a field's choices, Chinese and English


def _option_names_mismatch(schema: dict):
    """(field, key, names, values) of the first field whose choices' names (OPTION_NAMES) do not match its enum one
    for one (a form would show a choice under another's name), else None: a field's own choices, a list's
    (`items`, e.g. checkboxes), and the names the customer's wording (`x-customer`) gives them."""
    wording = schema.get("x-customer")
    customer = wording.get("properties") if isinstance(wording, dict) else None
    customer = customer if isinstance(customer, dict) else {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        worded = customer.get(name) if isinstance(customer.get(name), dict) else {}
        for label, values, named in ((name, prop.get("enum"), prop), (f"{name}[]", items.get("enum"), items),
                                     (f"x-customer.{name}", prop.get("enum"), worded)):
            for key in OPTION_NAMES:
                names = named.get(key)
                if values and isinstance(names, list) and len(names) != len(values):
                    return label, key, len(names), len(values)
    return None


def decode_xml(raw: bytes) -> str:
    """The text of an XML file read per its byte-order mark or XML declaration (UTF-8 when it names
    none), with the declaration rewritten to UTF-8: that is how it is parsed and stored from here on.
    Raises ValueError (with `line` when known) for bytes that are not valid in that encoding."""
    if raw.startswith(codecs.BOM_UTF8):
        encoding, raw = "utf-8", raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        declared = XML_DECLARATION.match(raw)
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise ValueError(f"its XML declaration names the unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        error = ValueError(f"byte 0x{raw[exc.start]:02x} on line {line} is not valid {encoding}")
        error.line = line
        raise error from None
    return XML_DECLARATION_TEXT.sub(r"\1\2UTF-8\2", text.lstrip("\ufeff"), count=1)


# SpiffWorkflow's ValidationException says what is wrong in English only: its known messages get a code.
ENGINE_MESSAGES = (
    (re.compile(r"^Duplicate process ID: (?P<process>.+)$"), "duplicate_process_id"),
    (re.compile(r"^Non-default exclusive outgoing sequence flow without condition"), "flow_without_condition"),
    (re.compile(r"^The process '(?P<process>[^']+)' was not found"), "process_not_found"),
    (re.compile(r'^No DMN Diagram available with id "(?P<decision>[^"]*)"'), "decision_not_found"),
    (re.compile(r"^No start event found"), "no_start_event"),
    (re.compile(r"^Process (?P<process>\S+) is not executable"), "process_not_executable"),
    (re.compile(r"^There is no support implemented for this task type"), "unsupported_element"),
    (re.compile(r"^Invalid Script Task\.\s+No Script Provided"), "script_missing"),
    (re.compile(r"^(Unknown Time Specification|Time Specification Error\.?)\s*(?P<detail>.*)$", re.S), "timer_invalid"),
    (re.compile(r'^No "calledElement" attribute'), "call_without_process"),
    (re.compile(r"^(Exactly one start event is required in a SubWorkflow|A SubWorkflow Must contain an End)"),
     "subprocess_start_end"),
    (re.compile(r"^Malformed Output Expression '(?P<cell>.*?)'\.\s*(?P<detail>.*)$", re.S), "dmn_output_malformed"),
)
SHORT_NS = {"{%s}" % uri: f"{prefix}:" for prefix, uri in {**NS, "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
                                                             "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}.items()}


def _engine_problem(file, exc: ValidationException, tree, trees, element_id=None) -> Problem:
    """A ValidationException as a problem: a known message with its code, an XML Schema error (no element,
    only a line) as `schema_invalid`, anything else as ENGINE with SpiffWorkflow's text."""
    text = str(exc.args[0]) if exc.args else str(exc)
    line = exc.line_number or _line_of(tree, exc.id)
    element_id = element_id or exc.id or None
    for pattern, code in ENGINE_MESSAGES:
        found = pattern.match(text)
        if found:
            params = {k: v.strip() for k, v in found.groupdict().items() if v is not None}
            if code == "duplicate_process_id":
                params["other_file"] = next((name for name, other in trees.items() if name != file and other.xpath(
                    "bpmn:process[@id=$pid]", namespaces=NS, pid=params["process"])), "?")
            return Problem(file, element_id, line, str(exc), code, params)
    if not exc.id and not getattr(exc, "tag", ""):           # the XSD validation names a line only
        detail = text
        for uri, prefix in SHORT_NS.items():
            detail = detail.replace(uri, prefix)
        found_id = _id_on_line(tree, line) if tree is not None and line else None
        return Problem(file, element_id or found_id, line, str(exc), "schema_invalid",
                       {"detail": detail})
    return Problem(file, element_id, line, str(exc), ENGINE, {"detail": text})


def _read_xml(path: Path, problems):
    """(text, lxml tree) of an XML file, or None with the problem recorded."""
    name = path.name
    try:
        text = decode_xml(path.read_bytes())
    except ValueError as exc:
        problems.append(Problem(name, None, getattr(exc, "line", None), f"{NOT_DECODABLE}: {exc}", "not_decodable",
                                {"detail": str(exc)}))
        return None
    try:
        return text, etree.fromstring(text.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        problems.append(Problem(name, None, exc.lineno, f"not well-formed XML: {exc.msg}", "not_well_formed",
                                {"detail": exc.msg}))
        return None


def _read_files(processes_dir: Path, parser, known_lanes, problems) -> tuple[dict, dict]:
    """Parse every .bpmn file into the parser; return {file: text} and {file: lxml tree} of the good ones."""
    texts, trees = {}, {}
    for path in sorted(p for p in Path(processes_dir).glob("*.bpmn") if p.is_file()):     # not a folder so named
        name = path.name
        read = _read_xml(path, problems)
        if read is None:
            continue
        text, tree = read
        if etree.QName(tree).text != f"{{{NS['bpmn']}}}definitions":
            problems.append(Problem(name, None, tree.sourceline, "not a BPMN 2.0 file (<bpmn:definitions>)", "not_bpmn"))
            continue
        try:
            parser.add_bpmn_xml(tree, filename=name)      # XSD validation happens here
        except ValidationException as exc:
            problems.append(_engine_problem(name, exc, tree, trees))
            continue
        texts[name], trees[name] = text, tree
        problems.extend(lint_expressions(name, tree))
        for lane in tree.xpath("//bpmn:lane", namespaces=NS):
            if lane.get("name") not in known_lanes:
                problems.append(Problem(name, lane.get("id"), lane.sourceline,
                                        f"lane {lane.get('name')!r} is not a known role lane "
                                        f"(known: {', '.join(sorted(known_lanes))})", "lane_unknown",
                                        {"lane": lane.get("name") or "", "known": ", ".join(sorted(known_lanes))}))
    if not texts and not problems:
        problems.append(Problem(str(processes_dir), None, None, "no .bpmn files found", "no_diagrams"))
    return texts, trees


def _add_decision_file(parser, name, tree, decision_files: dict, problems) -> bool:
    """Give one DMN file to the parser (XSD validation, then the parser's own reading of the table,
    which refuses e.g. a malformed output cell); record its decision id in decision_files."""
    if etree.QName(tree).localname != "definitions" or etree.QName(tree).namespace not in DMN_SCHEMAS:
        problems.append(Problem(name, None, tree.sourceline, "not a DMN file (DMN 1.1, 1.2 or 1.3 <definitions>)",
                                "not_dmn"))
        return False
    decisions = tree.xpath("dmn:decision", namespaces=_dmn_ns(tree))
    if len(decisions) != 1:
        problems.append(Problem(name, None, tree.sourceline,
                                f"a DMN file must hold exactly one decision (it holds {len(decisions)})",
                                "dmn_decision_count", {"count": len(decisions)}))
        return False
    decision_id = decisions[0].get("id")
    if decision_id in decision_files:
        problems.append(Problem(name, decision_id, decisions[0].sourceline,
                                f"decision id {decision_id!r} is also in {decision_files[decision_id]}",
                                "duplicate_decision_id", {"decision": decision_id, "other_file": decision_files[decision_id]}))
        return False
    try:
        parser.add_dmn_xml(tree, filename=name)
        parser.dmn_parsers[decision_id].parse()
    except ValidationException as exc:
        line = exc.line_number or _line_of(tree, exc.id)
        problems.append(_engine_problem(name, exc, tree, {}, element_id=exc.id or _id_on_line(tree, line)))
    except (KeyError, IndexError) as exc:       # an element without the attribute the engine needs
        problems.append(Problem(name, decision_id, decisions[0].sourceline,
                                f"the decision table cannot be read: missing {exc}", "dmn_unreadable",
                                {"detail": str(exc)}))
    else:
        decision_files[decision_id] = name
        return True
    parser.dmn_parsers.pop(decision_id, None)      # the tasks calling it report the table as missing
    return False


def _id_on_line(tree, line) -> Optional[str]:
    """The id of the innermost element starting on `line` that has one (XSD errors name only a line)."""
    found = [node.get("id") for node in tree.iter() if node.sourceline == line and node.get("id")]
    return found[-1] if found else None


def _read_decisions(processes_dir: Path, parser, problems) -> tuple[dict, dict, dict, set]:
    """Parse every .dmn file into the parser and check its tables; return {file: text}, {file: lxml
    tree} and {decision id: file} of the good ones, and the decision ids of the files the engine
    cannot read."""
    texts, trees, decision_files, unreadable = {}, {}, {}, set()
    for path in sorted(Path(processes_dir).glob(f"*{DMN_SUFFIX}")):
        read = _read_xml(path, problems)
        if read is None:
            continue
        text, tree = read
        cell_problems = check_decision_tables(path.name, tree) + lint_decision_cells(path.name, tree)
        parse_problems = []
        if _add_decision_file(parser, path.name, tree, decision_files, parse_problems):
            texts[path.name], trees[path.name] = text, tree
        else:
            unreadable.update(tree.xpath("*[local-name()='decision']/@id"))
        # A cell the parser refuses (a malformed output) is already reported by the lint, more plainly.
        reported = {p.element_id for p in cell_problems}
        problems += cell_problems + [p for p in parse_problems if p.element_id not in reported]
    return texts, trees, decision_files, unreadable


def _called_decisions(process_specs, trees) -> set:
    """The decision ids the business-rule tasks of these process specs call."""
    called = set()
    for spec in process_specs:
        tree = trees.get(spec.file)
        if tree is not None:
            called.update((node.text or "").strip() for node in tree.xpath(
                "//bpmn:process[@id=$pid]//bpmn:businessRuleTask//spiffworkflow:calledDecisionId",
                namespaces=NS, pid=spec.name))
    return called


def _calls_unreadable(trees, element_id, unreadable) -> bool:
    """Whether `element_id` is a business-rule task calling a decision whose own file has problems
    (reported there: the task would only repeat that the decision is missing)."""
    return any(ref.strip() in unreadable for tree in trees.values() for ref in tree.xpath(
        "//bpmn:businessRuleTask[@id=$tid]//spiffworkflow:calledDecisionId/text()", namespaces=NS, tid=element_id))


def _file_holding(trees, element_id) -> str:
    """The file whose XML has an element with this id ("?" when none does)."""
    return next((file for file, tree in trees.items() if element_id and _line_of(tree, element_id)), "?")


def _check_tasks(process_specs, trees, forms_dir: Path, known_lanes, problems) -> tuple[dict, dict]:
    """Every human task in a role lane and every user task with a valid form; returns (forms, lanes)."""
    forms, lanes = {}, {}
    for process_spec in process_specs:
        tree = trees.get(process_spec.file)
        for ts in process_spec.task_specs.values():
            manual = getattr(ts, "manual", False)
            if not manual and not is_call_activity(ts):
                continue
            lanes[ts.bpmn_id] = ts.lane
            if manual and ts.lane not in known_lanes:
                problems.append(Problem(process_spec.file, ts.bpmn_id, _line_of(tree, ts.bpmn_id),
                                        f"task is in no role lane (lane: {ts.lane!r})", "task_without_lane",
                                        {"lane": ts.lane or ""}))
            if is_user_task_spec(ts):
                schema, reason = _form(forms_dir, ts.bpmn_id)
                if reason:
                    problems.append(Problem(process_spec.file, ts.bpmn_id, _line_of(tree, ts.bpmn_id), *reason))
                else:
                    forms[ts.bpmn_id] = schema
    return forms, lanes


def _message_calls(trees) -> tuple[list, list[Problem]]:
    """Every notify_customer call in the diagrams' scripts (script tasks, pre- and post-scripts)."""
    calls, problems = [], []
    for file, tree in trees.items():
        for node in tree.xpath("//bpmn:scriptTask/bpmn:script|//spiffworkflow:preScript|//spiffworkflow:postScript",
                               namespaces=NS):
            host = next((a for a in node.iterancestors() if a.get("id")), None)
            found, bad = messages.calls_in_script(node.text or "", file, host.get("id") if host is not None else None,
                                                  node.sourceline)
            calls += found
            problems += bad
    return calls, problems


def _survey_forms(calls, forms_dir: Path, problems) -> dict:
    """{form name: schema} of the forms named by survey='<form>' in the calls, each checked like a task's."""
    surveys = {}
    for call in (c for c in calls if c.survey is not None):
        name = call.survey
        where = {"template": call.template, "form_file": f"{name}.json", "folder": forms_dir.name}
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            reason = (f"survey form name {name!r} is not a form file name (a-z, 0-9, _)", "survey_form_name",
                      {**where, "form": name})
        elif not (forms_dir / f"{name}.json").exists():
            reason = (f"survey form {name}.json is missing in {forms_dir.name}/", "survey_form_missing", where)
        else:
            surveys[name], reason = _form(forms_dir, name)
        if reason:
            message, code, params = reason
            problems.append(Problem(call.file, call.element_id, call.line,
                                    f"notify_customer({call.template!r}): {message}", code, {**where, **params}))
    return surveys


def _check_messages(processes_dir: Path, forms_dir: Path, trees, problems) -> tuple[dict, list, dict]:
    """Load processes/messages/ and check it against the calls; returns (templates, calls, survey forms)."""
    templates, load_problems = messages.load(processes_dir)
    calls, call_problems = _message_calls(trees)
    problems += load_problems + call_problems + messages.check(templates, calls)
    return templates, calls, _survey_forms(calls, forms_dir, problems)


def _bundle_messages(templates, calls, process_specs, surveys) -> tuple[dict, dict]:
    """(the templates, the survey forms) the calls in these process specs name."""
    elements = {(ps.file, ts.bpmn_id) for ps in process_specs for ts in ps.task_specs.values()}
    mine = [c for c in calls if (c.file, c.element_id) in elements]
    return (messages.for_bundle(templates, {c.template for c in mine}),
            {c.survey: surveys[c.survey] for c in mine if c.survey in surveys})


def _staff_message_forms(process_specs, trees, forms_dir, problems) -> dict:
    """The forms of the messages handlers may send to these processes (app/engine/event_forms.py)."""
    def report(file, element_id, line, message, code=ENGINE, params=None):
        problems.append(Problem(file, element_id, line, message, code, params or {}))
    files = dict.fromkeys(ps.file for ps in process_specs if ps.file in trees)
    return event_forms.message_forms(files, trees, Path(forms_dir), _form, report)


def _coded_forms(forms: dict, vocabularies: dict, forms_dir, problems) -> dict:
    """The forms with their `x-vocabulary` fields given the vocabularies' choices (app/vocab.py); a
    problem shared by several processes' bundles is reported once."""
    out = {}
    for name, schema in forms.items():
        out[name], found = vocab.expand_form(name, schema, vocabularies, forms_dir)
        problems += [p for p in found if p not in problems]
    return out


def load_processes(processes_dir: Path, forms_dir: Path, known_lanes) -> tuple[list[Bundle], list[Problem]]:
    """Parse and check every .dmn and .bpmn file and the vocabularies; return the deployable bundles
    (each with the diagrams and the decision tables it calls, and every vocabulary) and all problems found."""
    problems: list[Problem] = []
    parser = new_parser()
    decision_texts, decision_trees, decision_files, unreadable = _read_decisions(processes_dir, parser, problems)
    texts, trees = _read_files(processes_dir, parser, known_lanes, problems)
    templates, calls, surveys = _check_messages(Path(processes_dir), Path(forms_dir), trees, problems)
    vocabularies, vocabulary_problems = vocab.load(processes_dir)
    problems += vocabulary_problems
    called = {node.get("calledElement") for tree in trees.values()
              for node in tree.xpath("//bpmn:callActivity", namespaces=NS)}
    bundles = []
    for process_id in parser.get_process_ids():
        if process_id in called:
            continue      # deployed as part of the processes that call it
        try:
            spec = parser.get_spec(process_id)
            subs = parser.get_subprocess_specs(process_id)
        except ValidationException as exc:
            if _calls_unreadable(trees, exc.id, unreadable):
                continue
            all_trees = {**trees, **decision_trees}
            file = exc.file_name or _file_holding(all_trees, exc.id)      # a missing decision names no file
            problem = _engine_problem(file, exc, all_trees.get(file), trees)
            if problem not in problems:       # a broken table fails every process that calls it
                problems.append(problem)
            continue
        process_specs = [spec, *subs.values()]
        forms, lanes = _check_tasks(process_specs, trees, Path(forms_dir), known_lanes, problems)
        bundle_messages, survey_forms = _bundle_messages(templates, calls, process_specs, surveys)
        spec_json, subs_json = serializer.spec_to_json(spec, subs)
        called_files = {decision_files[d] for d in _called_decisions(process_specs, trees) if d in decision_files}
        bundles.append(Bundle(process_id=process_id, name=spec.description or process_id,
                              files={**{ps.file: texts[ps.file] for ps in process_specs},
                                     **{name: decision_texts[name] for name in called_files}},
                              forms=_coded_forms({**survey_forms, **_staff_message_forms(process_specs, trees, forms_dir,
                                                                                          problems), **forms},
                                                 vocabularies, forms_dir, problems),
                              lanes=lanes, spec_json=spec_json, subprocess_specs_json=subs_json,
                              messages=bundle_messages, vocabularies=vocabularies))
    if problems:
        # One broken file means nothing is deployed: a half-deployed procedure is worse than the last good one.
        _name_elements(problems, Path(processes_dir))
        return [], problems
    return bundles, problems


def _name_elements(problems, processes_dir: Path):
    """Give each problem on an element of a diagram or decision table that element's name, if it has one."""
    names = {}
    for problem in problems:
        path = processes_dir / problem.file
        if not problem.element_id or not problem.file.endswith(UPLOADABLE) or not path.is_file():
            continue
        if problem.file not in names:
            try:
                names[problem.file] = etree.fromstring(decode_xml(path.read_bytes()).encode("utf-8"))
            except (ValueError, etree.XMLSyntaxError):
                names[problem.file] = None
        tree = names[problem.file]
        found = tree.xpath("//*[@id=$eid]/@name", eid=problem.element_id) if tree is not None else []
        problem.element_name = found[0] if found else None


def _ids_of(raw: bytes, element: str) -> set:
    """The ids of the top-level `element`s (decision, process) in a DMN or BPMN file's bytes; none when
    it cannot be read."""
    try:
        tree = etree.fromstring(decode_xml(raw).encode("utf-8"))
    except (ValueError, etree.XMLSyntaxError):
        return set()
    return set(tree.xpath(f"*[local-name()='{element}']/@id"))


def _replaced_file(staged: Path, name: str, content: bytes) -> str:
    """The file in processes/ an upload replaces: the file holding the same decision id (a table) or
    process id (a diagram), so that a file downloaded as `<process>-v3-….dmn` or `….bpmn` and uploaded
    under any name replaces the original; else the file of its name."""
    suffix, element = (DMN_SUFFIX, "decision") if name.endswith(DMN_SUFFIX) else (".bpmn", "process")
    wanted = _ids_of(content, element)
    holder = next((path.name for path in sorted(staged.glob(f"*{suffix}"))
                   if wanted & _ids_of(path.read_bytes(), element)), None)
    return holder or name


def load_with_upload(processes_dir: Path, forms_dir: Path, known_lanes, file_name: str, content: bytes):
    """Check processes/ as it would be with a file replaced (or added) by an uploaded diagram (.bpmn)
    or decision table (.dmn, see _replaced_file); returns (bundles, problems) like load_processes.
    Nothing on disk changes."""
    name = Path(file_name).name
    if not name.endswith(UPLOADABLE):
        return [], [Problem(name or "?", None, None, "only .bpmn and .dmn files can be uploaded", "not_uploadable")]
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "processes"
        shutil.copytree(processes_dir, staged, ignore=shutil.ignore_patterns("*.json"))
        (staged / _replaced_file(staged, name, content)).write_bytes(content)
        return load_processes(staged, forms_dir, known_lanes)


def version_with_content(session, bundle: Bundle) -> Optional[ProcessVersion]:
    """The newest deployed version that already holds this bundle's content: the same text, or the same
    canonical form (see the module docstring), e.g. the diagram as a modeler saved it again."""
    same = session.execute(select(ProcessVersion).where(
        ProcessVersion.process_id == bundle.process_id, ProcessVersion.content_hash == bundle.content_hash)
        .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one_or_none()
    if same is not None:
        return same
    rows = session.execute(select(ProcessVersion.id, ProcessVersion.content_hash)
                           .where(ProcessVersion.process_id == bundle.process_id)
                           .order_by(ProcessVersion.version.desc())).all()
    wanted = bundle.canonical_hash if rows else None     # a first deployment canonicalises nothing
    for version_id, content_hash in rows:
        if _canonical_of(session, version_id, content_hash) == wanted:
            return session.get(ProcessVersion, version_id)
    return None


_CANONICAL = {}       # content_hash -> canonical hash (a version's content never changes)


def _canonical_of(session, version_id, content_hash) -> str:
    if content_hash not in _CANONICAL:
        v = session.get(ProcessVersion, version_id)
        _CANONICAL[content_hash] = _content_hash(v.bpmn_files, v.forms, v.messages, v.vocabularies, canonical_xml)
    return _CANONICAL[content_hash]


# A version's large columns load only when read (the runtime caches what the engine needs per version).
_LARGE = (ProcessVersion.bpmn_files, ProcessVersion.spec_json, ProcessVersion.subprocess_specs_json,
          ProcessVersion.forms, ProcessVersion.messages, ProcessVersion.lanes)


def latest_version(session, process_id) -> Optional[ProcessVersion]:
    return session.execute(select(ProcessVersion).options(*(defer(c) for c in _LARGE))
                           .where(ProcessVersion.process_id == process_id)
                           .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one_or_none()


def deploy(session, bundles: list[Bundle], deployed_by: str):
    """Register a new version for each bundle whose content changed. Returns [(process_id, version, new?)]."""
    from .. import audit
    results = []
    for bundle in bundles:
        current = latest_version(session, bundle.process_id)
        # Content that was deployed before is never registered again: an app restart with older files
        # on disk does not undo a diagram uploaded through the procedure page.
        same = version_with_content(session, bundle)
        if same is not None:
            if not same.messages and bundle.messages:
                # Its templates were lost by a downgrade below migration 0012; the hash covers them,
                # so these are the very templates it was deployed with.
                same.messages = bundle.messages
            results.append((bundle.process_id, same.version, False))
            continue
        version = ProcessVersion(process_id=bundle.process_id, name=bundle.name,
                                 version=(current.version if current else 0) + 1,
                                 content_hash=bundle.content_hash, bpmn_files=bundle.files,
                                 spec_json=bundle.spec_json, subprocess_specs_json=bundle.subprocess_specs_json,
                                 forms=bundle.forms, messages=bundle.messages, vocabularies=bundle.vocabularies,
                                 lanes=bundle.lanes,
                                 deployed_by=deployed_by)
        try:
            with session.begin_nested():
                session.add(version)
        except IntegrityError:
            # Another process deployed the same change at the same moment; theirs stands.
            current = latest_version(session, bundle.process_id)
            results.append((bundle.process_id, current.version, False))
            continue
        audit.record(session, deployed_by, "process_deployed",
                     data={"process_id": bundle.process_id, "version": version.version,
                           "content_hash": bundle.content_hash, "files": sorted(bundle.files)})
        results.append((bundle.process_id, version.version, True))
    session.commit()
    return results

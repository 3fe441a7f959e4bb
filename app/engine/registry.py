"""Load and check processes/ and forms/, and register immutable process versions.

A check reports every problem as file, element id, line and message. Deploying registers a new
version only when the content hash changed, and never deploys a file with a problem: the last good
version keeps serving."""
import codecs
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import messages
from ..models import ProcessVersion
from . import sandbox
from .workflow import is_call_activity, is_user_task_spec, new_parser, serializer

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}
XML_DECLARATION = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
XML_DECLARATION_TEXT = re.compile(r"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[A-Za-z0-9._:-]+\2""")
NOT_DECODABLE = "the file is not valid UTF-8 (or the encoding its XML declaration names)"
ISO_LITERAL = re.compile(r"^(R\d*/)?(P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?|\d{4}-\d{2}-\d{2}T\S*)$")


@dataclass
class Problem:
    file: str
    element_id: Optional[str]
    line: Optional[int]
    message: str

    def __str__(self):
        return f"{self.file}:{self.line or '?'}: [{self.element_id or '-'}] {self.message}"


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
    content_hash: str = field(init=False)

    def __post_init__(self):
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(f"bpmn:{name}\n".encode() + self.files[name].encode())
        for name in sorted(self.forms):
            h.update(f"form:{name}\n".encode() + json.dumps(self.forms[name], sort_keys=True).encode())
        for name in sorted(self.messages):
            h.update(f"message:{name}\n".encode() + self.messages[name].encode())
        self.content_hash = h.hexdigest()


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
            problems.append(Problem(file, element_id, node.sourceline, f"{what} is empty"))
            return
        if what == "timer" and ISO_LITERAL.match(text):
            problems.append(Problem(file, element_id, node.sourceline,
                                    f"timer {text!r} is evaluated as Python; quote it: \"{text}\""))
            return
        # A script keeps the lines of the element's text; an expression starts at its first non-blank.
        raw = node.text
        first = node.sourceline + (0 if mode == "exec" else raw[:len(raw) - len(raw.lstrip())].count("\n"))
        for line, message in sandbox.check(raw, mode):
            problems.append(Problem(file, element_id, first + (line or 1) - 1, f"{what}: {message} in {text!r}"))

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
    return problems


def load_form(forms_dir: Path, name: str):
    """Return (schema, problem message or None)."""
    path = forms_dir / f"{name}.json"
    if not path.exists():
        return None, f"user task has no form: {path.name} is missing in {forms_dir.name}/"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except json.JSONDecodeError as exc:
        return None, f"{path.name} is not valid JSON: {exc}"
    except SchemaError as exc:
        return None, f"{path.name} is not a valid JSON Schema 2020-12: {exc.message}"
    if schema.get("type") != "object":
        return None, f'{path.name}: a form schema must have "type": "object"'
    return schema, None


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


def _read_files(processes_dir: Path, parser, known_lanes, problems) -> tuple[dict, dict]:
    """Parse every .bpmn file into the parser; return {file: text} and {file: lxml tree} of the good ones."""
    texts, trees = {}, {}
    for path in sorted(Path(processes_dir).glob("*.bpmn")):
        name = path.name
        try:
            text = decode_xml(path.read_bytes())
        except ValueError as exc:
            problems.append(Problem(name, None, getattr(exc, "line", None), f"{NOT_DECODABLE}: {exc}"))
            continue
        try:
            tree = etree.fromstring(text.encode("utf-8"))
        except etree.XMLSyntaxError as exc:
            problems.append(Problem(name, None, exc.lineno, f"not well-formed XML: {exc.msg}"))
            continue
        try:
            parser.add_bpmn_xml(tree, filename=name)      # XSD validation happens here
        except ValidationException as exc:
            problems.append(Problem(name, exc.id or None, exc.line_number or _line_of(tree, exc.id), str(exc)))
            continue
        texts[name], trees[name] = text, tree
        problems.extend(lint_expressions(name, tree))
        for lane in tree.xpath("//bpmn:lane", namespaces=NS):
            if lane.get("name") not in known_lanes:
                problems.append(Problem(name, lane.get("id"), lane.sourceline,
                                        f"lane {lane.get('name')!r} is not a known role lane "
                                        f"(known: {', '.join(sorted(known_lanes))})"))
    if not texts and not problems:
        problems.append(Problem(str(processes_dir), None, None, "no .bpmn files found"))
    return texts, trees


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
                                        f"task is in no role lane (lane: {ts.lane!r})"))
            if is_user_task_spec(ts):
                schema, error = load_form(forms_dir, ts.bpmn_id)
                if error:
                    problems.append(Problem(process_spec.file, ts.bpmn_id, _line_of(tree, ts.bpmn_id), error))
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
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            error = f"survey form name {name!r} is not a form file name (a-z, 0-9, _)"
        elif not (forms_dir / f"{name}.json").exists():
            error = f"survey form {name}.json is missing in {forms_dir.name}/"
        else:
            surveys[name], error = load_form(forms_dir, name)
        if error:
            problems.append(Problem(call.file, call.element_id, call.line,
                                    f"notify_customer({call.template!r}): {error}"))
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


def load_processes(processes_dir: Path, forms_dir: Path, known_lanes) -> tuple[list[Bundle], list[Problem]]:
    """Parse and check every .bpmn file; return the deployable bundles and all problems found."""
    problems: list[Problem] = []
    parser = new_parser()
    texts, trees = _read_files(processes_dir, parser, known_lanes, problems)
    templates, calls, surveys = _check_messages(Path(processes_dir), Path(forms_dir), trees, problems)
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
            file = exc.file_name or "?"
            problems.append(Problem(file, exc.id or None, exc.line_number or _line_of(trees.get(file), exc.id),
                                    str(exc)))
            continue
        process_specs = [spec, *subs.values()]
        forms, lanes = _check_tasks(process_specs, trees, Path(forms_dir), known_lanes, problems)
        bundle_messages, survey_forms = _bundle_messages(templates, calls, process_specs, surveys)
        spec_json, subs_json = serializer.spec_to_json(spec, subs)
        bundles.append(Bundle(process_id=process_id, name=spec.description or process_id,
                              files={ps.file: texts[ps.file] for ps in process_specs},
                              forms={**survey_forms, **forms}, lanes=lanes, spec_json=spec_json,
                              subprocess_specs_json=subs_json, messages=bundle_messages))
    if problems:
        # One broken file means nothing is deployed: a half-deployed procedure is worse than the last good one.
        return [], problems
    return bundles, problems


def load_with_upload(processes_dir: Path, forms_dir: Path, known_lanes, file_name: str, content: bytes):
    """Check processes/ as it would be with `file_name` replaced (or added) by an uploaded diagram;
    returns (bundles, problems) like load_processes. Nothing on disk changes."""
    name = Path(file_name).name
    if not name.endswith(".bpmn"):
        return [], [Problem(name or "?", None, None, "only .bpmn files can be uploaded")]
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "processes"
        shutil.copytree(processes_dir, staged, ignore=shutil.ignore_patterns("*.json"))
        (staged / name).write_bytes(content)
        return load_processes(staged, forms_dir, known_lanes)


def version_with_content(session, bundle: Bundle) -> Optional[ProcessVersion]:
    """The deployed version that already holds exactly this bundle's content, if any."""
    return session.execute(select(ProcessVersion).where(
        ProcessVersion.process_id == bundle.process_id, ProcessVersion.content_hash == bundle.content_hash)
        .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one_or_none()


def latest_version(session, process_id) -> Optional[ProcessVersion]:
    return session.execute(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
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
                                 forms=bundle.forms, messages=bundle.messages, lanes=bundle.lanes,
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

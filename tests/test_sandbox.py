"""Process expressions run in a sandbox: every escape attempt is refused by the check (`flask processes
check`, the upload page) where it can be seen in the text, and at run time in any case, on a diagram
written straight into the engine without the check; and .bpmn files are read per their XML declaration."""
import io
import re
import shutil
import time
from datetime import date
from xml.sax.saxutils import escape

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from sqlalchemy import func, select

from app.config import ROOT
from app.engine import guards, workflow
from app.engine.registry import NS, NOT_DECODABLE, Bundle, deploy, lint_expressions, load_processes, \
    load_with_upload
from app.engine.sandbox import check
from app.engine.scripting import make_script_engine
from app.errors import ProcessError
from app.extensions import db
from app.models import AuditEvent, ProcessInstance, ProcessVersion
from tests.test_web import as_, browser, fresh, text  # noqa: F401  (browser is a fixture)
from tests.flow import LANES

REAL = ROOT / "processes" / "complaint_handling.bpmn"
BPMN = REAL.read_text(encoding="utf-8")
DATA = {"x": 1, "ten": 10, "s": "abc", "items": [1, 2, 3], "n": 10 ** 10, "due": date(2030, 1, 2),
        "received_at": "2026-11-25T02:00:00+00:00"}

# ---- a one-element diagram per kind of expression, the element under test always has id "attempt" --
HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="http://example.org/sandbox">
  <bpmn:process id="escape" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
"""
BODY = {
    "script": """    <bpmn:scriptTask id="attempt"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{}</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="attempt"/>
    <bpmn:sequenceFlow id="f2" sourceRef="attempt" targetRef="end"/>""",
    "condition": """    <bpmn:exclusiveGateway id="gate" default="otherwise"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>attempt</bpmn:outgoing><bpmn:outgoing>otherwise</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="end">
      <bpmn:incoming>attempt</bpmn:incoming><bpmn:incoming>otherwise</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gate"/>
    <bpmn:sequenceFlow id="attempt" sourceRef="gate" targetRef="end">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="otherwise" sourceRef="gate" targetRef="end"/>""",
    "timer": """    <bpmn:intermediateCatchEvent id="attempt">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="attempt_timer">
        <bpmn:timeDate xsi:type="bpmn:tFormalExpression">{}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="attempt"/>
    <bpmn:sequenceFlow id="f2" sourceRef="attempt" targetRef="end"/>""",
}
for hook in ("preScript", "postScript"):
    BODY[hook] = """    <bpmn:task id="attempt"><bpmn:extensionElements>
      <spiffworkflow:%s>{}</spiffworkflow:%s></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:task>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="attempt"/>
    <bpmn:sequenceFlow id="f2" sourceRef="attempt" targetRef="end"/>""" % (hook, hook)
TAIL = "\n  </bpmn:process>\n</bpmn:definitions>\n"
# The line of the element holding the expression under test.
EXPRESSION_LINE = {kind: HEAD.count("\n") + body.split("{}")[0].count("\n") + 1 for kind, body in BODY.items()}


def diagram(kind, source):
    if kind == "script" and "\n" not in source and not re.match(r"(import|from|class|while|def) ", source):
        source = f"y = {source}"
    return HEAD + BODY[kind].format(escape(source)) + TAIL


def lint(kind, source):
    return lint_expressions("escape.bpmn", etree.fromstring(diagram(kind, source).encode()))


def specs(kind, source):
    parser = workflow.new_parser()
    parser.add_bpmn_xml(etree.fromstring(diagram(kind, source).encode()), filename="escape.bpmn")
    return workflow.serializer.spec_to_json(parser.get_spec("escape"), parser.get_subprocess_specs("escape"))


def run(kind, source, data=DATA, effects=None):
    """Straight into the engine: parsed and started without the check (and a task with pre/post
    scripts, a manual task, completed)."""
    spec_json, subs_json = specs(kind, source)
    wf = workflow.start(f"sandbox-{kind}-{source}", spec_json, subs_json, dict(data),
                        make_script_engine([] if effects is None else effects))
    for task in workflow.ready_human_tasks(wf):
        workflow.run_human_task(wf, workflow.find_task(wf, task.id), {})
    return wf


def refused_at_run_time(kind, source, message, data=DATA):
    t0 = time.perf_counter()
    with pytest.raises(WorkflowTaskException) as err:
        run(kind, source, data)
    # Generous, so that a loaded machine cannot fail it: it is here to catch a refusal that hangs or loops.
    assert time.perf_counter() - t0 < 10, "a refusal must be fast"
    assert err.value.task_spec.bpmn_id in ("attempt", "gate")      # a condition fails on its gateway
    assert re.search(message, str(err.value)), str(err.value)
    return err.value


# ---- the escape attempts -----------------------------------------------------------------------------
S, C, T = "script", "condition", "timer"
ALL = (S, C, T)
# (id, source, kinds, what the check says (None: not visible in the text), what the run says)
ESCAPES = [
    # imports
    ("import", "import os", (S,), "import is not allowed", "import is not allowed"),
    ("from-import", "from os import system", (S,), "import is not allowed", "import is not allowed"),
    ("dunder-import", "__import__('os').system('id')", ALL, '"__import__" is an invalid variable name', "__import__"),
    ("builtins-dict", "__builtins__['__import__']('os')", ALL, '"__builtins__" is an invalid', "__builtins__"),
    # __class__ / __subclasses__ chains
    ("subclasses", "().__class__.__bases__[0].__subclasses__()", ALL, '"__subclasses__" is an invalid attribute',
     "__subclasses__"),
    ("mro-chain", "''.__class__.__mro__[1].__subclasses__()", ALL, '"__mro__" is an invalid attribute', "__mro__"),
    ("mro-method", "bool.mro()[-1]", ALL, 'the attribute ".mro" is not allowed', r"\.mro"),
    ("from-bytes", "x.from_bytes(s.encode() * 300000, 'big')", ALL, r'the attribute "\.from_bytes"', "from_bytes"),
    ("helper-globals", "hours_after.__globals__['__builtins__']", ALL, '"__globals__" is an invalid', "__globals__"),
    ("code-object", "now_iso.__code__", ALL, '"__code__" is an invalid', "__code__"),
    ("dunder-key", "items[0] if {}['__class__'] else 0", ALL, "'__class__' is not allowed", "__class__"),
    ("built-dunder-key", "{'a': 1}['__cl' + 'ass__']", ALL, None, "dunder item access"),
    # getattr and the other doors, with built strings
    ("getattr-built", "getattr(x, '__cl' + 'ass__')", ALL, 'the name "getattr" is not available', "getattr"),
    ("type", "type(x).__subclasses__", ALL, 'the name "type" is not available', "type"),
    ("vars", "vars()", ALL, 'the name "vars" is not available', "vars"),
    ("globals", "globals()['__builtins__']", ALL, 'the name "globals" is not available', "globals"),
    ("open", "open('/etc/passwd').read()", ALL, 'the name "open" is not available', "open"),
    ("eval", "eval('1 + 1')", ALL, "Eval calls are not allowed", "Eval calls"),
    ("exec", "exec('y = 1')", ALL, "Exec calls are not allowed", "Exec calls"),
    ("compile", "compile('1', 'f', 'eval')", ALL, 'the name "compile" is not available', "compile"),
    ("dir", "dir(x)", ALL, 'the name "dir" is not available', "dir"),
    ("print", "print(x)", (S,), 'the name "print" is not available', "print"),
    ("private-name", "_getattr_ = None", (S,), '"_getattr_" is an invalid variable name', "_getattr_"),
    # str.format reaching attributes by name
    ("str-format", "'{0.__class__.__mro__}'.format(x)", ALL, r'the attribute "\.format" is not allowed',
     r"\.format"),
    ("format-map", "'{a.__class__}'.format_map({'a': x})", ALL, r'the attribute "\.format_map"', r"\.format_map"),
    ("str-type-format", "str.format('{0.__class__}', x)", ALL, r'the attribute "\.format"', r"\.format"),
    ("format-builtin", "format(x, '')", ALL, 'the name "format" is not available', "format"),
    ("f-string-dunder", "f'{x.__class__}'", ALL, '"__class__" is an invalid attribute', "__class__"),
    # generators, frames, tracebacks
    ("gi-frame", "(i for i in [1]).gi_frame.f_back.f_globals", ALL, '"gi_frame" is a restricted name', "gi_frame"),
    ("gi-code", "(i for i in [1]).gi_code", ALL, '"gi_code" is a restricted name', "gi_code"),
    ("traceback", "try:\n    1 / 0\nexcept Exception as e:\n    y = e.__traceback__.tb_frame.f_globals", (S,),
     '"__traceback__" is an invalid attribute', "__traceback__"),
    ("generator-function", "def g():\n    yield 1\ny = sum(g())", (S,), r"generators \(yield\) are not allowed",
     "yield"),
    ("lambda-code", "(lambda: 0).__code__", ALL, '"__code__" is an invalid', "__code__"),
    ("class", "class C:\n    pass", (S,), "class definitions are not allowed", "class definitions"),
    ("while", "while True:\n    pass", (S,), "while loops are not allowed", "while loops"),
    ("global", "def f():\n    global x\n    x = 2\nf()", (S,), "global statements are not allowed", "global"),
    ("deep-nesting", "-" * 100_000 + "1", ALL, "nested too deeply", "nested too deeply"),
    # resource bombs: written as constants the check computes them; fed by data only the run sees them
    ("huge-power", "10 ** 10 ** 10", ALL, "bits; the limit is 4,096", "bits; the limit is 4,096"),
    ("huge-power-data", "ten ** n", ALL, None, "bits; the limit is 4,096"),
    ("huge-string", "'a' * 10 ** 10", ALL, "characters; the limit is 1,000,000", "characters; the limit"),
    ("huge-string-data", "s * n", ALL, None, "characters; the limit is 1,000,000"),
    ("huge-list", "[0] * 10 ** 9", ALL, "items; the limit is 1,000,000", "items; the limit"),
    ("shift", "1 << 10 ** 10", ALL, "bits; the limit", "bits; the limit"),
    ("shift-data", "x << n", ALL, None, "bits; the limit"),
    ("pow-builtin", "pow(10, 10 ** 10)", ALL, "bits; the limit", "bits; the limit"),
    ("pow-builtin-data", "pow(ten, n)", ALL, None, "bits; the limit"),
    ("range", "len(range(10 ** 10))", ALL, "numbers; the limit is 100,000", "numbers; the limit"),
    ("range-data", "len(range(n))", ALL, None, "numbers; the limit is 100,000"),
    ("format-width", "f'{x:>{10 ** 9}}'", ALL, "in the format spec", "in the format spec"),
    ("format-width-data", "f'{x:>{n}}'", ALL, None, "in the format spec"),
    ("percent-star", "'%*d' % (10 ** 9, 1)", ALL, r"'\*' width", r"'\*' width"),
    ("percent-width", "'%1000000000d' % 1", ALL, "in %-formatting is over the limit", "in %-formatting"),
    ("ljust", "s.ljust(n)", ALL, None, r"\.ljust\(\) would have 10,000,000,000"),
    ("zfill", "s.zfill(n)", ALL, None, r"\.zfill\(\) would have"),
    ("replace", "(s * 1000).replace('', s * 1000)", ALL, None, r"\.replace\(\) would have"),
    ("join", "','.join(s * 100000 for i in range(1000))", ALL, None, "more than 20,000,000 characters"),
    ("to-bytes", "x.to_bytes(n, 'big')", ALL, None, r"\.to_bytes\(\) would have"),
    ("round-digits", "round(x, -n)", ALL, None, r"round\(\) to"),
    ("int-parse", "int('f' * 100000, 16)", ALL, None, "400,000 bits"),
    ("sum-lists", "sum([[0]] * 1000, [])", ALL, None, r"sum\(\) adds numbers only"),
    ("nested-loops", "len([1 for i in range(100000) for j in range(100000)])", ALL, None,
     "more than 100,000 loop items"),
    ("lambda-recursion", "(lambda f: f(f, 60))(lambda f, k: 0 if k == 0 else f(f, k - 1) + f(f, k - 1))", ALL,
     None, "more than 100,000 loop items, items or calls"),
    ("print-shared", "str([s * 100000] * 100)", ALL, None, "when printed"),
    ("deep-print", "str(d)", ALL, None, "nested more than 100 levels"),
    ("recursion", "def f(k):\n    return 0 if k == 0 else f(k - 1) + f(k - 1)\ny = f(60)", (S,), None,
     "more than 100,000 loop items, items or calls"),
    ("doubling", "y = s\nfor i in range(40):\n    y = y + y", (S,), None, "items; the limit is 1,000,000"),
    ("allocation", "l = []\nfor i in range(100000):\n    l.append(s * 100000)", (S,), None,
     "produced more than 20,000,000"),
    ("slices", "t = s * 300000\nl = [t[1:] for i in range(100000)]", (S,), None, "produced more than 20,000,000"),
    ("stored-data", "l = [s * 300000]\nfor i in range(10):\n    l.append(l[0])", (S,), None,
     "process data after this script"),
    ("caught-refusal", "try:\n    y = s * n\nexcept Exception:\n    y = 0", (S,), None, "characters; the limit"),
    ("unpack-copies", "d = {}.fromkeys(range(100000))\nl = [{**d} for i in range(100000)]", (S,), None,
     "MB of memory|s of CPU time"),
    ("strftime", "due.strftime('%c' * 100000)", ALL, None, r"\.strftime\(\) would have"),
    ("spec-length", "f'{due:{s * 1000}}'", ALL, None, "a format spec of 3,000 characters"),
    ("kept-set", "st = {1, 2}", (S,), None, "a set cannot be kept in the process data"),
    ("kept-generator", "g = (i for i in items)", (S,), None, "a generator cannot be kept"),
    ("kept-function-in-list", "fs = [lambda: 0]", (S,), None, "a function inside a list or dict cannot be kept"),
    ("kept-helper-in-dict", "fs = {'h': hours_after}", (S,), None, "a function inside a list or dict cannot be kept"),
    ("kept-huge-int", "y = 2\nfor i in range(5000):\n    y = y + y", (S,), None, "an int of 5,002 bits cannot be kept"),
    ("message-fields", "notify_customer('x', body=s * 300000)", (S,), None, "fields of message"),
    ("message-date", "notify_customer('x', when=due)", (S,), None, "a date cannot be a message field"),
    ("far-deadline", "working_days_after(received_at, 10 ** 9)", (S, T), None, "more than the limit 1,000"),
    ("condition-mutates", "items.append(1) or True", (C, T), None, "may not change data"),
]
DEEP = {"d": None}
for _ in range(150):
    DEEP = {"d": DEEP}
CASES = [(f"{name}-{kind}", source, kind, at_check, at_run)
         for name, source, kinds, at_check, at_run in ESCAPES for kind in kinds]


@pytest.mark.parametrize("case, source, kind, at_check, at_run", CASES, ids=[c[0] for c in CASES])
def test_every_escape_fails_at_run_time_even_without_the_check(case, source, kind, at_check, at_run):
    refused_at_run_time(kind, source, at_run, {**DATA, "d": DEEP} if case.startswith("deep-print") else DATA)


@pytest.mark.parametrize("case, source, kind, at_check, at_run", [c for c in CASES if c[3]],
                         ids=[c[0] for c in CASES if c[3]])
def test_every_escape_visible_in_the_text_fails_the_check_with_element_line_and_construct(
        case, source, kind, at_check, at_run):
    problems = lint(kind, source)
    assert problems, "the check let it through"
    assert {p.element_id for p in problems} == {"attempt"} and {p.file for p in problems} == {"escape.bpmn"}
    assert any(re.search(at_check, p.message) for p in problems), [p.message for p in problems]
    first, last = EXPRESSION_LINE[kind], EXPRESSION_LINE[kind] + source.count("\n")
    assert all(first <= p.line <= last for p in problems), [(p.line, p.message) for p in problems]
    if "\n" not in source:
        assert {p.line for p in problems} == {first}


@pytest.mark.parametrize("hook", ["preScript", "postScript"])
@pytest.mark.parametrize("source, at_check, at_run", [
    ("import os", "import is not allowed", "import is not allowed"),
    ("y = hours_after.__globals__", '"__globals__" is an invalid', "__globals__"),
    ("y = 'a' * 10 ** 10", "characters; the limit", "characters; the limit"),
    ("y = s * n", None, "characters; the limit"),
])
def test_pre_and_post_scripts_are_checked_and_sandboxed_too(hook, source, at_check, at_run):
    problems = lint(hook, source)
    assert [(p.element_id, p.line) for p in problems] == ([("attempt", EXPRESSION_LINE[hook])] if at_check else [])
    assert not at_check or at_check in problems[0].message and problems[0].message.startswith("script: ")
    refused_at_run_time(hook, source, at_run)


def test_a_problem_is_on_the_line_of_the_construct_within_a_script():
    [problem] = lint(S, "y = 1\nz = 2\nimport os")
    assert problem.line == EXPRESSION_LINE[S] + 2 and problem.message.startswith("script: import is not allowed")
    [problem] = lint(C, "\n   x == 1 and getattr(x, 'y')")      # an expression starts at its first line of text
    assert problem.line == EXPRESSION_LINE[C] + 1 and "getattr" in problem.message


def test_a_refusal_cannot_be_caught_and_the_run_time_is_bounded_by_cpu(monkeypatch):
    monkeypatch.setattr(guards, "CPU_SECONDS", 0.05)
    refused_at_run_time(S, "l = list(range(50000))\ny = [i in l for i in range(40000)]", "s of CPU time")
    refused_at_run_time(S, "try:\n    y = s.ljust(n)\nexcept Exception:\n    y = 1", r"\.ljust")


# ---- what a process owner may write ------------------------------------------------------------------
WORKS = [
    (C, "decision == 'reject'", {"decision": "reject"}),
    (C, "compensation_amount > 50000 or risk_level == 'high'", {"compensation_amount": 1, "risk_level": "high"}),
    (C, "round == 1 or needs_investigation", {"round": 1, "needs_investigation": False}),
    (C, "any(i > 2 for i in items) and len(s) == 3 and isinstance(s, str) and isinstance(items, (list, dict))", {}),
    (C, "sorted(items, key=lambda i: -i)[0] == 3 and max(items) == 3 and sum(items) == 6", {}),
    (T, "hours_after(received_at, 24)", {}),
    (T, "working_days_after(received_at, 3)", {}),
    (T, "f'{due:%Y-%m-%d}T00:00:00+00:00'", {}),
    (T, "due.strftime('%Y-%m-%dT09:00:00+08:00')", {}),
    (T, "'2030-01-01T00:00:00+00:00'", {}),
    (S, "round = 0\nround = round + 1\nround += 1\nacknowledged_at = now_iso()\nnotify_customer('acknowledgement')",
     {}),
    (S, "d = {'a': 1}\nd['b'] = 2\nitems.append(4)\nfirst, second = items[:2]\ntotal = 0\nfor k, v in d.items():\n"
        "    total += v\nsquares = [i * i for i in items if i > 1]\nlabel = f'{total:,} / {1234.5:.1f} / {s!r:>8}'\n"
        "text = '%s-%d' % (s, total)\ndef twice(v):\n    return 2 * v\nz = twice(21)\ntry:\n    q = 1 / 0\n"
        "except ZeroDivisionError:\n    q = None\nbig = 2 ** 4000 > 10 ** 1000\nr = list(range(1000))[-1]", {}),
]


@pytest.mark.parametrize("kind, source, extra", WORKS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(WORKS)])
def test_ordinary_expressions_pass_the_check_and_run(kind, source, extra):
    assert lint(kind, source) == []
    effects = []
    wf = run(kind, source, {**DATA, **extra}, effects)
    if kind == S:
        data = wf.last_task.data
        assert "_getiter_" not in data and "__builtins__" not in data and "twice" not in data
        if "twice" in source:
            assert data["z"] == 42 and data["squares"] == [4, 9, 16] and data["total"] == 3 and data["q"] is None
            assert data["label"] == "3 / 1234.5 /    'abc'" and data["text"] == "abc-3" and data["r"] == 999
            assert data["items"] == [1, 2, 3, 4] and (data["first"], data["second"]) == (1, 2) and data["big"]
        else:
            assert data["round"] == 2 and effects == [{"kind": "notify_customer", "template": "acknowledgement",
                                                       "fields": {}}]


def test_data_cannot_override_the_guards():
    wf = run(S, "y = s * 2", {**DATA, "_binop_": "not a guard", "_getiter_": 1, "__builtins__": {}})
    assert wf.last_task.data["y"] == "abcabc"


def test_every_expression_in_processes_passes_the_sandbox_check():
    tree = etree.parse(str(REAL))
    paths = {"//bpmn:conditionExpression": "eval", "//bpmn:timeDate|//bpmn:timeDuration|//bpmn:timeCycle": "eval",
             "//bpmn:scriptTask/bpmn:script": "exec", "//spiffworkflow:preScript|//spiffworkflow:postScript": "exec"}
    found = [(node.text, mode) for path, mode in paths.items() for node in tree.xpath(path, namespaces=NS)]
    assert len(found) >= 15
    assert [(source, check(source, mode)) for source, mode in found if check(source, mode)] == []


# ---- the check on real files: flask processes check, load_with_upload, the upload page ---------------
def with_script(xml, script):
    return xml.replace("<bpmn:script>accepted_at = now_iso()</bpmn:script>",
                       f"<bpmn:script>accepted_at = now_iso()\n{escape(script)}</bpmn:script>")


def line_of(xml, needle):
    return next(i for i, line in enumerate(xml.splitlines(), 1) if needle in line)


def test_the_cli_check_and_an_upload_refuse_an_unsafe_diagram(tmp_path):
    from app import create_app
    from app.config import TestConfig
    (tmp_path / "processes").mkdir()
    unsafe = with_script(BPMN, "import os")
    (tmp_path / "processes" / "complaint_handling.bpmn").write_text(unsafe, encoding="utf-8")
    app = create_app(TestConfig, PROCESSES_DIR=tmp_path / "processes")
    result = app.test_cli_runner().invoke(args=["processes", "check"])
    line = line_of(unsafe, "accepted_at = now_iso()") + 1
    assert result.exit_code == 1
    assert f"complaint_handling.bpmn:{line}: [accept_complaint] script: import is not allowed" in result.output

    bundles, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                         with_script(BPMN, "y = ().__class__").encode())
    assert bundles == [] and [(p.element_id, p.line) for p in problems] == [("accept_complaint", line)]
    assert '"__class__" is an invalid attribute name' in problems[0].message


def test_the_upload_page_lists_a_forbidden_construct_and_deploys_nothing(browser, people):
    owner = as_(browser, "process_owner")
    unsafe = with_script(BPMN, "y = getattr(accepted_at, '__cl' + 'ass__')")
    r = owner.post("/procedure/complaint_handling/upload",
                   {"bpmn": (io.BytesIO(unsafe.encode()), "complaint_handling.bpmn")},
                   page="/procedure/complaint_handling", content_type="multipart/form-data")
    assert r.status_code == 422
    rows = re.findall(r'data-testid="problem" data-element-id="([^"]*)" data-line="([^"]*)"', r.text)
    assert rows == [("accept_complaint", str(line_of(unsafe, "accepted_at = now_iso()") + 1))]
    assert 'the name "getattr" is not available' in text(r) and 'data-testid="deploy-form"' not in r.text
    fresh()
    assert db.session.execute(select(func.count()).select_from(ProcessVersion).where(
        ProcessVersion.process_id == "complaint_handling")).scalar_one() == 1


# ---- run time through the runtime: a version deployed without the check --------------------------------
@pytest.mark.parametrize("kind, source", [(S, "import os"), (C, "().__class__"), (T, "'a' * n")])
def test_a_version_deployed_without_the_check_fails_as_a_process_error_and_saves_nothing(app, kind, source):
    spec_json, subs_json = specs(kind, source)
    bundle = Bundle(process_id="escape", name="escape", files={"escape.bpmn": diagram(kind, source)}, forms={},
                    lanes={}, spec_json=spec_json, subprocess_specs_json=subs_json)
    deploy(db.session, [bundle], "intruder")
    audit_before = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    with pytest.raises(ProcessError) as err:
        app.extensions["runtime"].start("escape", {"n": 10 ** 10}, "someone")
    assert err.value.code == "process_error" and err.value.fields.get("element_id") in ("attempt", "gate")
    assert re.search("import is not allowed|__class__|characters; the limit", err.value.message)
    fresh()
    assert db.session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == audit_before


# ---- files that are not UTF-8 -----------------------------------------------------------------------
def gbk(xml):
    return xml.replace('encoding="UTF-8"', 'encoding="GBK"', 1).encode("gbk")


def test_a_gbk_diagram_is_read_per_its_declaration_deployed_and_read_back_as_utf8(app):
    changed = BPMN.replace(">hours_after(received_at, 24)<", ">hours_after(received_at, 36)<")
    bundles, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                         gbk(changed))
    assert problems == []
    assert bundles[0].files["complaint_handling.bpmn"] == changed     # declaration back to UTF-8, text intact
    assert [r for r in deploy(db.session, bundles, "owner") if r[2]] == [("complaint_handling", 2, True)]
    stored = db.session.execute(select(ProcessVersion).where(ProcessVersion.version == 2)).scalar_one()
    assert "初步审核" in stored.bpmn_files["complaint_handling.bpmn"]
    assert stored.bpmn_files["complaint_handling.bpmn"].startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_a_gbk_file_in_processes_is_read_per_its_declaration(tmp_path):
    shutil.copytree(ROOT / "processes" / "messages", tmp_path / "processes" / "messages")   # the templates it names
    shutil.copy(ROOT / "processes" / "management_decision.dmn", tmp_path / "processes")    # the table it calls
    shutil.copytree(ROOT / "processes" / "vocabularies", tmp_path / "processes" / "vocabularies")  # its forms' codes
    (tmp_path / "processes" / "complaint_handling.bpmn").write_bytes(gbk(BPMN))
    bundles, problems = load_processes(tmp_path / "processes", ROOT / "forms", LANES)
    assert problems == [] and bundles[0].files["complaint_handling.bpmn"] == BPMN


@pytest.mark.parametrize("content, detail, line", [
    (BPMN.encode("gbk"), "byte 0x", 3),                                    # says UTF-8, is GBK
    (BPMN.replace('encoding="UTF-8"', 'encoding="x-no-such"', 1).encode(), "unknown encoding 'x-no-such'", None),
    (BPMN.replace('encoding="UTF-8"', 'encoding="ascii"', 1).encode(), "is not valid ascii", 3),
])
def test_bytes_not_valid_in_the_declared_encoding_are_a_clear_problem(content, detail, line):
    bundles, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                         content)
    assert bundles == []
    [problem] = problems
    assert problem.file == "complaint_handling.bpmn" and problem.message.startswith(NOT_DECODABLE)
    assert detail in problem.message
    first_non_ascii = next(i for i, l in enumerate(BPMN.splitlines(), 1) if not l.isascii())
    assert problem.line == (first_non_ascii if line else None)


def test_the_upload_page_reads_gbk_and_refuses_invalid_bytes_clearly(browser, people):
    owner = as_(browser, "process_owner")

    def upload(content):
        return owner.post("/procedure/complaint_handling/upload",
                          {"bpmn": (io.BytesIO(content), "complaint_handling.bpmn")},
                          page="/procedure/complaint_handling", content_type="multipart/form-data")
    assert 'data-testid="no-change"' in upload(gbk(BPMN)).text       # the same diagram, only GBK-encoded
    r = upload(BPMN.encode("gbk"))
    assert r.status_code == 422 and "文件不是有效的 UTF-8（或其 XML 声明所指定的编码）" in text(r)

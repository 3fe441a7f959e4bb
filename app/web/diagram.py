"""What the diagram pages need from a deployed version's BPMN XML, read with lxml (never SpiffWorkflow,
never a workflow): each element's documentation, clauses, lane, timer and condition; the sequence
flows; the path a complaint took (from element_visit rows); and the colour scale of the overlays.

Versions are immutable, so the parsed XML is cached per version id; everything language-dependent
(deadlines in words, labels) is computed per request."""
import ast
import math
import re
from collections import Counter

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l, ngettext
from lxml import etree
from sqlalchemy import select

from ..engine.registry import NS
from ..extensions import db
from ..models import ProcessInstance, ProcessVersion
from ..trace import CLAUSE

BPMN = NS["bpmn"]
DEFINITION_PARTS = ("timeDate", "timeDuration", "timeCycle")
ISO_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")

KIND_LABELS = {
    "startEvent": _l("Start event"), "endEvent": _l("End event"), "userTask": _l("User task"),
    "manualTask": _l("Manual task"), "scriptTask": _l("Script task"), "serviceTask": _l("Service task"),
    "sendTask": _l("Send task"), "receiveTask": _l("Receive task"), "businessRuleTask": _l("Business rule task"),
    "task": _l("Task"), "exclusiveGateway": _l("Exclusive gateway"), "parallelGateway": _l("Parallel gateway"),
    "inclusiveGateway": _l("Inclusive gateway"), "eventBasedGateway": _l("Event-based gateway"),
    "boundaryEvent": _l("Boundary event"), "intermediateCatchEvent": _l("Intermediate event"),
    "intermediateThrowEvent": _l("Intermediate event"), "callActivity": _l("Call activity"),
    "subProcess": _l("Subprocess"), "sequenceFlow": _l("Sequence flow"), "lane": _l("Lane"),
    "participant": _l("Pool"), "process": _l("Process"),
}
# Elements a reader may point at in the viewer (DI, definitions and expressions are not).
SHOWN = set(KIND_LABELS)
# Elements that carry documentation but live outside a process (the traceability page names them too).
COLLABORATION_LABELS = {"messageFlow": _l("Message flow"), "collaboration": _l("Collaboration")}


def kind_label(kind) -> str:
    return str(KIND_LABELS.get(kind, kind))


def kind_labels(files: dict) -> dict:
    """element id -> its kind in words (e.g. 用户任务, 消息流) of every element of these BPMN files whose
    kind has words; read with lxml, for pages that name elements outside the viewer."""
    labels = {**KIND_LABELS, **COLLABORATION_LABELS}
    out = {}
    for xml in files.values():
        for node in etree.fromstring(xml.encode("utf-8")).iter():
            if isinstance(node.tag, str) and node.get("id") and etree.QName(node).namespace == BPMN:
                kind = etree.QName(node).localname
                if kind in labels:
                    out[node.get("id")] = str(labels[kind])
    return out


def _doc(node) -> tuple[str, list]:
    """(documentation without its leading clause ids, the clause ids)."""
    texts = [d.text or "" for d in node.findall(f"{{{BPMN}}}documentation")]
    text = "\n".join(t.strip() for t in texts if t.strip())
    clauses = list(dict.fromkeys(CLAUSE.findall(text)))
    shown = re.sub(r"^(\s*\[C-[0-9.]+\])+\s*", "", text)
    return shown, clauses


def parse(files: dict, main_process: str) -> dict:
    """{"elements": {id: {...}}, "flows": {id: {...}}, "main_file": name, "files": [names]} of one
    version's BPMN files. Elements: kind, name, process, lane, doc, clauses, and per kind the
    timer, attachment, called process, condition, default flow, incoming and outgoing flows."""
    elements, flows, main_file = {}, {}, None
    for file_name, xml in sorted(files.items()):
        tree = etree.fromstring(xml.encode("utf-8"))
        for process in tree.iter(f"{{{BPMN}}}process"):
            pid = process.get("id")
            if pid == main_process:
                main_file = file_name
            lanes = {}
            for lane in process.iter(f"{{{BPMN}}}lane"):
                for ref in lane.findall(f"{{{BPMN}}}flowNodeRef"):
                    lanes[(ref.text or "").strip()] = lane.get("name")
            for node in process.iter():
                if not isinstance(node.tag, str) or etree.QName(node).namespace != BPMN:
                    continue
                kind = etree.QName(node).localname
                if kind not in SHOWN or not node.get("id"):
                    continue
                doc, clauses = _doc(node)
                info = {"id": node.get("id"), "kind": kind, "name": node.get("name") or "", "process": pid,
                        "file": file_name, "lane": lanes.get(node.get("id")) if kind != "lane" else node.get("name"),
                        "doc": doc, "clauses": clauses,
                        "incoming": [(i.text or "").strip() for i in node.findall(f"{{{BPMN}}}incoming")],
                        "outgoing": [(o.text or "").strip() for o in node.findall(f"{{{BPMN}}}outgoing")]}
                if kind == "sequenceFlow":
                    condition = node.find(f"{{{BPMN}}}conditionExpression")
                    info.update(source=node.get("sourceRef"), target=node.get("targetRef"),
                                condition=(condition.text or "").strip() if condition is not None else None)
                    flows[info["id"]] = info
                if kind == "boundaryEvent":
                    info.update(attached_to=node.get("attachedToRef"),
                                interrupting=node.get("cancelActivity", "true") != "false")
                if kind == "callActivity":
                    info["called"] = node.get("calledElement")
                if kind.endswith("Gateway"):
                    info["default"] = node.get("default")
                timer = node.find(f"{{{BPMN}}}timerEventDefinition")
                if timer is not None:
                    for part in DEFINITION_PARTS:
                        expr = timer.find(f"{{{BPMN}}}{part}")
                        if expr is not None:
                            info["timer"] = {"kind": part, "expression": (expr.text or "").strip()}
                elements[info["id"]] = info
        for participant in tree.iter(f"{{{BPMN}}}participant"):
            ref = participant.get("processRef")
            process_info = elements.get(ref, {})
            elements[participant.get("id")] = {
                "id": participant.get("id"), "kind": "participant", "name": participant.get("name") or "",
                "process": ref, "file": file_name, "lane": None, "doc": process_info.get("doc", ""),
                "clauses": process_info.get("clauses", []), "incoming": [], "outgoing": []}
    for info in list(elements.values()):
        if info["kind"] == "boundaryEvent" and info.get("attached_to") in elements:
            elements[info["attached_to"]].setdefault("boundary", []).append(info["id"])
    return {"elements": elements, "flows": flows, "main_file": main_file or (sorted(files)[0] if files else None),
            "files": sorted(files)}


def of_version(version) -> dict:
    """parse() of a ProcessVersion, or of a row with its id and process_id (`version_row`), cached for good
    (versions are immutable): a row's BPMN files are read only the first time."""
    cache = current_app.extensions.setdefault("web_diagrams", {})
    if version.id not in cache:
        files = version.bpmn_files if isinstance(version, ProcessVersion) else db.session.execute(
            select(ProcessVersion.bpmn_files).where(ProcessVersion.id == version.id)).scalar_one()
        cache[version.id] = parse(files, version.process_id)
    return cache[version.id]


def version_row(instance_id):
    """(id, process_id, version) of the version an instance runs on, or None: what the diagram of a complaint
    needs, without the instance's workflow or the version's BPMN, spec and forms (some 250 KB a page)."""
    return db.session.execute(select(ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.version)
                              .join(ProcessInstance, ProcessInstance.version_id == ProcessVersion.id)
                              .where(ProcessInstance.id == instance_id)).first() if instance_id else None


def versions_of_complaint(number, main_instance_id) -> list:
    """version_row of every instance of the complaint (its main one and those beside it: a review, a call), the main
    instance's last: what names the steps and deadlines of its case file."""
    rows = db.session.execute(select(ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.version,
                                     ProcessInstance.id.label("instance_id"))
                              .join(ProcessInstance, ProcessInstance.version_id == ProcessVersion.id)
                              .where(ProcessInstance.business_key == number)).all()
    return sorted(rows, key=lambda row: (row.instance_id == main_instance_id, row.instance_id))


# ---- deadlines in words ------------------------------------------------------------------------------
def timer_words(timer: dict) -> str:
    """A timer definition as a sentence: `hours_after(received_at, 24)` -> "24 hours after received_at";
    `working_days_after(round_started_at, 3)` -> "3 working days after round_started_at"; ISO
    durations and dates too. Anything else is shown as the expression it is."""
    if not timer:
        return ""
    kind, expression = timer.get("kind"), timer.get("expression") or ""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return _("expression: %(expr)s", expr=expression)
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and len(tree.args) == 2 \
            and isinstance(tree.args[1], ast.Constant) and isinstance(tree.args[1].value, (int, float)):
        start = ast.unparse(tree.args[0])
        amount = tree.args[1].value
        if tree.func.id == "hours_after":
            return ngettext("%(num)s hour after %(start)s", "%(num)s hours after %(start)s", amount, start=start)
        if tree.func.id == "working_days_after":
            return ngettext("%(num)s working day after %(start)s (end of that day, Beijing time)",
                            "%(num)s working days after %(start)s (end of that day, Beijing time)",
                            amount, start=start)
    if isinstance(tree, ast.Constant) and isinstance(tree.value, str):
        literal = tree.value.strip()
        duration = iso_duration_words(literal)
        if kind == "timeDuration" and duration:
            return _("%(duration)s after the step starts", duration=duration)
        if kind == "timeCycle":
            return _("repeating: %(cycle)s", cycle=literal)
        if kind == "timeDate":
            return _("at %(time)s", time=literal)
    return _("expression: %(expr)s", expr=expression)


def iso_duration_words(text: str):
    found = ISO_DURATION.match(text)
    if not found or text in ("P", "PT"):
        return None
    years, months, weeks, days, hours, minutes, seconds = (int(x) if x else 0 for x in found.groups())
    parts = [ngettext("%(num)d year", "%(num)d years", years) if years else "",
             ngettext("%(num)d month", "%(num)d months", months) if months else "",
             ngettext("%(num)d week", "%(num)d weeks", weeks) if weeks else "",
             ngettext("%(num)d day", "%(num)d days", days) if days else "",
             ngettext("%(num)d hour", "%(num)d hours", hours) if hours else "",
             ngettext("%(num)d minute", "%(num)d minutes", minutes) if minutes else "",
             ngettext("%(num)d second", "%(num)d seconds", seconds) if seconds else ""]
    parts = [p for p in parts if p]
    return " ".join(parts) if parts else None


# ---- where complaints are: the colour scale of the overlays -------------------------------------------
LEVELS = 4


def load_levels(stats: dict) -> tuple[dict, list]:
    """(element id -> level 1..4 by complaints waiting, the legend [(level, low, high)]): level k holds
    the counts in ((k-1)/4 * max, k/4 * max]; a level with no whole number in its range is left out."""
    peak = max((row["waiting"] for row in stats.values()), default=0)
    if peak <= 0:
        return {}, []
    levels = {eid: max(1, math.ceil(LEVELS * row["waiting"] / peak)) for eid, row in stats.items() if row["waiting"]}
    legend = []
    for k in range(1, LEVELS + 1):
        low, high = math.floor((k - 1) * peak / LEVELS) + 1, math.floor(k * peak / LEVELS)
        if low <= high:
            legend.append((k, low, high))
    return levels, legend


def hours_text(hours) -> str:
    if hours is None:
        return "—"
    if hours >= 48:
        return _("%(num)s days", num=f"{hours / 24:.1f}")
    return _("%(num)s h", num=f"{hours:.1f}")


# ---- one complaint's path ----------------------------------------------------------------------------
def path(parsed: dict, visits, current=()) -> dict:
    """From the element_visit rows (in order): visit counts per element, the sequence flows taken (with
    counts), and the ordered steps with the how-many-th visit each was. A row repeating an engine task
    already seen (same task id) is the same pass and is skipped.

    A visit of T took the flow S->T whose source S was visited last before it in the same process
    (the branch the token came along), so a direct flow is not marked when the path went round it."""
    elements, flows = parsed["elements"], parsed["flows"]
    incoming = {}
    for flow in flows.values():
        incoming.setdefault(flow["target"], []).append(flow)
    counts, taken, steps = Counter(), Counter(), []
    last_seen = {}                      # (process, element id) -> position of its last visit
    seen_tasks = set()
    for position, visit in enumerate(visits):
        # One engine task is one pass, however often it was recorded (a change recorded within the same
        # clock tick as the one before it records that one's elements again; see the report on
        # workflow.visited_elements).
        if visit.task_id in seen_tasks:
            continue
        seen_tasks.add(visit.task_id)
        element_id = visit.element_id
        candidates = [(last_seen[(visit.process_id, f["source"])], f["id"]) for f in incoming.get(element_id, [])
                      if (visit.process_id, f["source"]) in last_seen]
        if candidates:
            taken[max(candidates)[1]] += 1
        counts[element_id] += 1
        last_seen[(visit.process_id, element_id)] = position
        info = elements.get(element_id)
        steps.append({"element_id": element_id, "name": (info or {}).get("name") or element_id,
                      "kind": (info or {}).get("kind"), "at": visit.at, "nth": counts[element_id],
                      "in_diagram": info is not None})
    # The steps it is at now were reached along a flow too (they are recorded once they are done).
    for element_id in current:
        process = (elements.get(element_id) or {}).get("process")
        candidates = [(last_seen[(process, f["source"])], f["id"]) for f in incoming.get(element_id, [])
                      if (process, f["source"]) in last_seen]
        if candidates:
            taken[max(candidates)[1]] += 1
    return {"counts": dict(counts), "taken": dict(taken), "steps": steps}


def containing_calls(parsed: dict, element_ids) -> set:
    """The call activities whose called process holds one of these elements (where the complaint is,
    seen from the calling pool)."""
    elements = parsed["elements"]
    processes = {elements[e]["process"] for e in element_ids if e in elements}
    return {e["id"] for e in elements.values() if e["kind"] == "callActivity" and e.get("called") in processes}

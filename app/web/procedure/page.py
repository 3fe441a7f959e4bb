"""What the procedure page shows beside the diagram: each element's documentation for the side panel
(name, kind, clauses, lane and role, form fields, deadlines, conditions), where complaints are on
it (app.stats: waiting, overdue, median time spent, and the load level that colours each element),
and the decision tables the version holds (drawn by the dmn-js viewer)."""
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l, ngettext
from lxml import etree

from ... import trace
from ...engine.registry import DMN_SUFFIX, NS
from ...extensions import db
from ...models import ProcessVersion
from ...stats import element_stats
from ...timeutil import utcnow
from .. import diagram, formrender
from ..ui import lang, role_label, step_label

FIELD_KINDS = {"text": _l("Text"), "textarea": _l("Long text"), "number": _l("Number"), "date": _l("Date"),
               "datetime": _l("Date and time"), "radio": _l("One choice"), "select": _l("One choice"),
               "checkboxes": _l("Several choices"), "yesno": _l("Yes or no"), "confirm": _l("Confirmation")}


def diagram_files(version: ProcessVersion) -> list[str]:
    """The BPMN files of a version, for the diagram viewer (its decision tables are shown apart)."""
    return sorted(name for name in version.bpmn_files if not name.endswith(DMN_SUFFIX))


def _decision_callers(files: dict) -> dict:
    """decision id -> [(element id, name)] of the business-rule tasks calling it."""
    callers = {}
    for name, xml in sorted(files.items()):
        if name.endswith(DMN_SUFFIX):
            continue
        for task in etree.fromstring(xml.encode("utf-8")).xpath("//bpmn:businessRuleTask", namespaces=NS):
            for ref in task.xpath(".//spiffworkflow:calledDecisionId/text()", namespaces=NS):
                callers.setdefault(ref.strip(), []).append((task.get("id"), task.get("name") or task.get("id")))
    return callers


def decision_tables(version: ProcessVersion) -> list[dict]:
    """The decision tables (DMN files) a version holds: file, decision id and name, and the
    business-rule tasks of the diagram that call it."""
    callers = _decision_callers(version.bpmn_files)
    tables = []
    for name, xml in sorted(version.bpmn_files.items()):
        if not name.endswith(DMN_SUFFIX):
            continue
        for decision in etree.fromstring(xml.encode("utf-8")).xpath("*[local-name()='decision']"):
            decision_id = decision.get("id")
            tables.append({"file": name, "id": decision_id, "name": decision.get("name") or decision_id,
                           "callers": callers.get(decision_id, [])})
    return tables


def overlay_data(version: ProcessVersion, days: int, scope: str) -> dict:
    """Where complaints are, per element, from app.stats (the indexed human_task table): waiting now,
    overdue, and the median hours spent over the last `days` days, with the load level (1..4) that
    colours the element, for complaints on every version of the process or on this one."""
    now = utcnow()
    stats = element_stats(db.session, version.process_id, now, now - timedelta(days=days), now,
                          version_id=version.id if scope == "version" else None)
    levels, legend = diagram.load_levels(stats)
    rows = []
    for element_id, row in sorted(stats.items()):
        # "≈": a median from the daily summaries (app.stats): approximate, usually within 1%.
        median = ("" if row["median_exact"] else "≈ ") + diagram.hours_text(row["median_hours"])
        rows.append({"id": element_id, "waiting": row["waiting"], "overdue": row["overdue"],
                     "completed": row["completed"], "median_hours": row["median_hours"],
                     "median_exact": row["median_exact"], "median": median,
                     "level": levels.get(element_id, 0),
                     "waiting_text": _("%(num)d waiting", num=row["waiting"]),
                     "overdue_text": _("%(num)d overdue", num=row["overdue"]),
                     "median_text": _("median %(time)s", time=median),
                     "title": ngettext("%(num)d complaint finished this step in the last %(days)d days; "
                                       "median time spent: %(time)s.",
                                       "%(num)d complaints finished this step in the last %(days)d days; "
                                       "median time spent: %(time)s.", row["completed"], days=days, time=median)})
    return {"process_id": version.process_id, "version": version.version, "days": days, "scope": scope,
            "since": (now - timedelta(days=days)).isoformat(), "until": now.isoformat(),
            "elements": rows, "legend": legend}


def _clauses() -> dict:
    path = current_app.config["PROCESSES_DIR"] / "clauses.json"
    try:
        return {c["id"]: c for c in trace.load_clauses(path)}
    except (OSError, ValueError, KeyError):
        return {}


def _lane_roles() -> dict:
    return {spec["lane"]: code for code, spec in current_app.config["ROLES"].items() if spec.get("lane")}


def element_docs(parsed: dict, forms: dict) -> list[dict]:
    """What the side panel says about each element, in the page's language."""
    elements, clauses, lane_roles = parsed["elements"], _clauses(), _lane_roles()
    name_of = lambda eid: step_label(eid, (elements.get(eid) or {}).get("name") or None, forms)   # noqa: E731
    out = []
    for info in elements.values():
        name = step_label(info["id"], info["name"] or None, forms)
        doc = {"id": info["id"], "name": name, "diagram_name": info["name"] if info["name"] != name else "",
               "kind": diagram.kind_label(info["kind"]),
               "raw_kind": info["kind"], "text": info["doc"],
               "clauses": [(c, clauses.get(c, {})) for c in info["clauses"]],
               "lane": info["lane"], "role": role_label(lane_roles[info["lane"]]) if info["lane"] in lane_roles
               else None, "fields": [], "deadlines": [], "flows": []}
        schema = forms.get(info["id"]) if info["kind"] == "userTask" else None
        if schema:
            doc["form_title"] = formrender.titles(schema, lang())[0]
            doc["fields"] = [{**f, "kind": str(FIELD_KINDS.get(f["widget"], f["widget"]))}
                             for f in formrender.fields(schema, lang=lang())]
        for boundary_id in info.get("boundary", []):
            boundary = elements[boundary_id]
            if boundary.get("timer"):
                doc["deadlines"].append({"id": boundary_id, "name": boundary["name"] or boundary_id,
                                         "words": diagram.timer_words(boundary["timer"]),
                                         "expression": boundary["timer"]["expression"],
                                         "interrupting": boundary["interrupting"]})
        if info.get("timer"):
            doc["timer"] = {"words": diagram.timer_words(info["timer"]), "expression": info["timer"]["expression"],
                            "interrupting": info.get("interrupting", True)}
        if info.get("attached_to"):
            doc["attached_to"] = {"id": info["attached_to"], "name": name_of(info["attached_to"])}
        if info.get("called"):
            doc["called"] = info["called"]
        if info["kind"] == "sequenceFlow":
            doc["from"], doc["to"] = name_of(info["source"]), name_of(info["target"])
            doc["condition"] = info["condition"]
        if info["kind"].endswith("Gateway"):
            for flow_id in info["outgoing"]:
                flow = parsed["flows"].get(flow_id)
                if flow:
                    doc["flows"].append({"name": flow["name"], "to": name_of(flow["target"]),
                                         "condition": flow["condition"], "default": info.get("default") == flow_id})
        out.append(doc)
    return out

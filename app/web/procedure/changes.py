"""Checking a changed diagram before it is deployed: registry.load_with_upload with the other files,
then per changed process the difference to the current version (workflow.spec_changes, with element
names) and, per running complaint, whether it could move onto it (a dry run that writes nothing)."""
import copy

from flask import current_app
from lxml import etree
from sqlalchemy import select

from ... import avoidance, known_lanes
from ...engine import registry, workflow
from ...extensions import db
from ...models import Complaint, ProcessInstance, ProcessVersion
from .. import diagram
from ..common import runtime
from ..migration_text import reason_text
from ..ui import me

def _changed_bundles(bundles):
    """(bundle, current version or None, the older version that already holds this content or None) of
    every bundle whose content is not the current version's, compared as the registry compares it (a
    diagram saved again by a modeler with its shapes in another order is no change)."""
    out = []
    for bundle in bundles:
        current = registry.latest_version(db.session, bundle.process_id)
        earlier = registry.version_with_content(db.session, bundle)
        if current is not None and earlier is not None and earlier.id == current.id:
            continue
        out.append((bundle, current, earlier))
    return out


def _changes(current: ProcessVersion, bundle) -> list[dict]:
    """spec_changes between the current version and the uploaded bundle, with element names."""
    old = workflow.specs(current.content_hash, current.spec_json, current.subprocess_specs_json)
    new = workflow.specs(bundle.content_hash, bundle.spec_json, bundle.subprocess_specs_json)
    old_names = diagram.parse(current.bpmn_files, current.process_id)["elements"]
    new_names = diagram.parse(bundle.files, bundle.process_id)["elements"]
    name = lambda names, eid: (names.get(eid) or {}).get("name") or ""      # noqa: E731
    out = []
    for process, change in workflow.spec_changes(*old, *new).items():
        if change.get("process added") or change.get("process removed"):
            out.append({"process": process, "whole": "added" if change.get("process added") else "removed"})
            continue
        out.append({"process": process, "whole": None,
                    "added": [(e, name(new_names, e)) for e in change.get("added", [])],
                    "removed": [(e, name(old_names, e)) for e in change.get("removed", [])],
                    "changed": [(e, name(new_names, e) or name(old_names, e), attrs)
                                for e, attrs in change.get("changed", {}).items()]})
    return out


def _preview_migration(bundle) -> list[dict]:
    """Per running complaint of the process: would it move onto the uploaded (not yet deployed) diagram?
    Nothing is written; the migrate page asks runtime.migrate(dry_run=True) again once it is deployed."""
    rows = db.session.execute(select(ProcessInstance, Complaint.number).outerjoin(
        Complaint, Complaint.instance_id == ProcessInstance.id).where(
        ProcessInstance.process_id == bundle.process_id, ProcessInstance.status == "running",
        ProcessInstance.id.not_in(avoidance.avoided_instances(me().username)))
        .order_by(ProcessInstance.id)).all()
    out = []
    for inst, number in rows:
        reasons = runtime().preview_migration(inst.id, bundle.content_hash, bundle.spec_json,
                                              bundle.subprocess_specs_json)
        out.append({"instance_id": inst.id, "number": number or inst.business_key, "version": inst.version.version,
                    "reasons": [reason_text(r) for r in reasons]})
    return out


def upload_preview(file_name, content):
    """load_with_upload, then either the problems or, per changed process, the diff and the dry run."""
    bundles, problems = registry.load_with_upload(current_app.config["PROCESSES_DIR"],
                                                  current_app.config["FORMS_DIR"], known_lanes(current_app),
                                                  file_name, content)
    if problems:
        return {"problems": problems, "changes": [], "bundles": []}
    changes = []
    for bundle, current, earlier in _changed_bundles(bundles):
        entry = {"bundle": bundle, "current": current, "earlier": earlier, "diff": [], "dry_run": []}
        if earlier is None and current is not None:
            entry["diff"] = _changes(current, bundle)
            entry["moved"] = diagram_diff(current, bundle)["moved"]
            entry["dry_run"] = _preview_migration(bundle)
        changes.append(entry)
    return {"problems": [], "changes": changes, "bundles": bundles}


def expected_key(changes) -> str:
    """What the check found to deploy (process and content hash of each new bundle): the deploy form
    carries it back, and nothing is deployed unless the files still give the same."""
    return ",".join(sorted(f"{c['bundle'].process_id}:{c['bundle'].content_hash}" for c in changes
                           if c["earlier"] is None))


# ---- what a version changed, drawn on its diagram ----------------------------------------------------
BPMN_MODEL = registry.NS["bpmn"]
DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DERIVED = {f"{{{BPMN_MODEL}}}incoming", f"{{{BPMN_MODEL}}}outgoing"}     # follow from the flows' own ends
_DIFFS = {}       # (old content hash, new content hash) -> diagram_diff (versions never change)


def _own_content(element) -> str:
    """An element's canonical form without the elements inside it that have ids of their own (they are
    compared on their own) and without its incoming/outgoing references."""
    own = copy.deepcopy(element)
    for inner in [n for n in own.iterdescendants(etree.Element) if n.get("id") is not None or n.tag in DERIVED]:
        if inner.getparent() is not None:
            inner.getparent().remove(inner)
    own.tail = None
    return registry.canonical_xml(etree.tostring(own, encoding="unicode"))


def _elements(files: dict) -> dict:
    """id -> {name, own, layout} of every element of the version's diagrams (its decision tables apart)."""
    out = {}
    for name, xml in sorted(files.items()):
        if name.endswith(registry.DMN_SUFFIX):
            continue
        root = etree.fromstring(xml.encode("utf-8"))
        for element in root.iter(f"{{{BPMN_MODEL}}}*"):
            if element.get("id") is not None:
                out[element.get("id")] = {"name": element.get("name") or "", "own": _own_content(element), "layout": ""}
        for drawn in root.xpath("//bpmndi:BPMNShape|//bpmndi:BPMNEdge", namespaces={"bpmndi": DI_NS}):
            if drawn.get("bpmnElement") in out:
                out[drawn.get("bpmnElement")]["layout"] += registry.canonical_xml(etree.tostring(drawn, encoding="unicode"))
    return out


def _files(version) -> dict:
    """The BPMN/DMN files of a deployed version or of a bundle not deployed yet."""
    return version.bpmn_files if isinstance(version, ProcessVersion) else version.files


def diagram_diff(old, new) -> dict:
    """What version `new` changed in the diagrams of version `old`, element by element: added, removed,
    changed (anything of its own: name, documentation, condition, timer, properties, lane membership) and
    moved (only its layout: shape bounds, edge waypoints). Each as [(id, name)], sorted by name."""
    key = (old.content_hash, new.content_hash)
    if key not in _DIFFS:
        before, after = _elements(_files(old)), _elements(_files(new))
        named = lambda ids, side: sorted(((i, side[i]["name"]) for i in ids), key=lambda e: (e[1], e[0]))  # noqa: E731
        common = before.keys() & after.keys()
        _DIFFS[key] = {
            "added": named(after.keys() - before.keys(), after),
            "removed": named(before.keys() - after.keys(), before),
            "changed": named({i for i in common if before[i]["own"] != after[i]["own"]}, after),
            "moved": named({i for i in common if before[i]["own"] == after[i]["own"]
                            and before[i]["layout"] != after[i]["layout"]}, after)}
    return _DIFFS[key]

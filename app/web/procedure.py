"""The procedure pages: the deployed diagram (bpmn-js) with each element's documentation and where
complaints are on it, its versions and their BPMN files, the traceability of the written procedure,
and — for process owners — uploading a changed diagram, deploying it and migrating running
complaints onto it. Every change goes through the engine (registry.deploy, runtime.migrate), which
writes the audit trail; these pages only read the flat tables and the stored XML."""
import base64
import binascii
import re
from datetime import timedelta
from urllib.parse import quote

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l, ngettext
from sqlalchemy import func, select
from werkzeug.http import dump_options_header

from .. import avoidance, known_lanes, trace
from ..config import ROOT
from ..engine import registry, workflow
from ..errors import AppError
from ..extensions import db
from ..models import Complaint, Deadline, ElementVisit, HumanTask, ProcessInstance, ProcessVersion, User
from ..permissions import PROCEDURE_READERS, PROCESS_OWNERS
from ..security import cacheable
from ..stats import element_stats
from ..timeutil import utcnow
from . import bp, diagram, formrender
from .routes import roles_required, runtime
from .ui import has_any, lang, me, role_label, step_label

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
# The upload travels back to the server in the confirm form (base64, in a form field that Flask caps
# at MAX_FORM_MEMORY_SIZE, 500 kB by default): the diagram itself may be at most this big.
UPLOAD_LIMIT = 350 * 1024


FIELD_KINDS = {"text": _l("Text"), "textarea": _l("Long text"), "number": _l("Number"), "date": _l("Date"),
               "datetime": _l("Date and time"), "radio": _l("One choice"), "select": _l("One choice"),
               "checkboxes": _l("Several choices"), "yesno": _l("Yes or no"), "confirm": _l("Confirmation")}


def attachment(filename: str) -> str:
    """A Content-Disposition header for a download; a non-ASCII name (an uploaded file may have one)
    as RFC 5987 beside an ASCII fallback."""
    try:
        filename.encode("ascii")
        return dump_options_header("attachment", {"filename": filename})
    except UnicodeEncodeError:
        fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
        return dump_options_header("attachment", {"filename": fallback, "filename*": f"UTF-8''{quote(filename)}"})


# ---- versions ----------------------------------------------------------------------------------------
def _versions(process_id) -> list[ProcessVersion]:
    versions = db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
                                  .order_by(ProcessVersion.version.desc())).scalars().all()
    if not versions:
        abort(404, description=_("No procedure %(process)s is deployed.", process=process_id))
    return versions


def _version_of(versions, number) -> ProcessVersion:
    found = next((v for v in versions if v.version == number), None)
    if found is None:
        abort(404, description=_("There is no version %(num)s of this procedure.", num=number))
    return found


def _display_names(usernames) -> dict:
    rows = db.session.execute(select(User.username, User.display_name).where(
        User.username.in_(sorted(u for u in usernames if u)))).all()
    return dict(rows)


def _top_process_ids() -> list[str]:
    return db.session.execute(select(ProcessVersion.process_id).distinct()
                              .order_by(ProcessVersion.process_id)).scalars().all()


@bp.get("/procedure")
@roles_required(*PROCEDURE_READERS)
def procedures():
    """The deployed processes; with one (the usual case), straight to its page."""
    ids = _top_process_ids()
    if not ids:
        abort(404, description=_("No procedure is deployed yet."))
    if len(ids) == 1:
        return redirect(url_for("web.procedure", process_id=ids[0]))
    latest = [registry.latest_version(db.session, pid) for pid in ids]
    return render_template("web/procedures.html", versions=latest)


# ---- the procedure page ------------------------------------------------------------------------------
@bp.get("/procedure/<process_id>")
@roles_required(*PROCEDURE_READERS)
def procedure(process_id):
    versions = _versions(process_id)
    return _procedure_page(versions, versions[0])


@bp.get("/procedure/<process_id>/v<int:number>")
@roles_required(*PROCEDURE_READERS)
def procedure_version(process_id, number):
    versions = _versions(process_id)
    return _procedure_page(versions, _version_of(versions, number))


def _period_args():
    try:
        days = int(request.args.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    scope = request.args.get("scope") if request.args.get("scope") in ("all", "version") else "all"
    return (days if days in PERIODS else DEFAULT_PERIOD), scope


def overlay_data(version: ProcessVersion, days: int, scope: str) -> dict:
    """Where complaints are, per element, from app.stats (the indexed human_task table): waiting now,
    overdue, and the median hours spent over the last `days` days, with the load level (1..4) that
    colours the element, for complaints on every version of the process or on this one."""
    now = utcnow()
    instances = select(ProcessInstance.id).where(ProcessInstance.process_id == version.process_id)
    if scope == "version":
        instances = instances.where(ProcessInstance.version_id == version.id)
    stats = element_stats(db.session, instances, now, now - timedelta(days=days), now)
    levels, legend = diagram.load_levels(stats)
    rows = []
    for element_id, row in sorted(stats.items()):
        median = diagram.hours_text(row["median_hours"])
        rows.append({"id": element_id, "waiting": row["waiting"], "overdue": row["overdue"],
                     "completed": row["completed"], "median_hours": row["median_hours"], "median": median,
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


@bp.get("/procedure/<process_id>/v<int:number>/stats.json")
@roles_required(*PROCEDURE_READERS)
def procedure_stats(process_id, number):
    """The overlay data of the procedure page as JSON (the browser session, not an API token)."""
    version = _version_of(_versions(process_id), number)
    days, scope = _period_args()
    return overlay_data(version, days, scope)


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


def _procedure_page(versions, version):
    days, scope = _period_args()
    parsed = diagram.of_version(version)
    file_name = request.args.get("file") if request.args.get("file") in version.bpmn_files else parsed["main_file"]
    overlays = overlay_data(version, days, scope)
    in_diagram = {e["id"] for e in overlays["elements"] if e["id"] in parsed["elements"]}
    latest = versions[0]
    owner = has_any(me(), PROCESS_OWNERS)
    to_migrate = 0
    if owner:
        to_migrate = db.session.execute(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.process_id == latest.process_id, ProcessInstance.status == "running",
            ProcessInstance.version_id != latest.id)).scalar_one()
    selected = request.args.get("element")
    if (parsed["elements"].get(selected) or {}).get("kind") == "process":      # drawn as its pool
        selected = next((e["id"] for e in parsed["elements"].values()
                         if e["kind"] == "participant" and e["process"] == selected), selected)
    docs = element_docs(parsed, version.forms or {})
    data = {"mode": "procedure", "xml_url": url_for("web.procedure_file", process_id=version.process_id,
                                                     number=version.version, file_name=file_name, inline=1),
            "overlays": [e for e in overlays["elements"] if e["id"] in in_diagram],
            "select": selected if selected in parsed["elements"] else None}
    return render_template(
        "web/procedure.html", version=version, versions=versions, latest=latest, file_name=file_name,
        docs=docs, docs_by_id={d["id"]: d for d in docs}, overlays=overlays, data=data,
        stats_by_id={row["id"]: row for row in overlays["elements"]},
        elsewhere=[e for e in overlays["elements"] if e["id"] not in in_diagram],
        names=_display_names({v.deployed_by for v in versions}), periods=PERIODS, is_owner=owner,
        to_migrate=to_migrate, upload_limit_kb=UPLOAD_LIMIT // 1024)


@bp.get("/procedure/<process_id>/v<int:number>/<file_name>")
@roles_required(*PROCEDURE_READERS)
@cacheable
def procedure_file(process_id, number, file_name):
    """The BPMN file of any deployed version, as stored (a download; `inline=1` for the viewer)."""
    version = _version_of(_versions(process_id), number)
    if file_name not in version.bpmn_files:
        abort(404, description=_("Version %(num)s has no file %(file)s.", num=number, file=file_name))
    headers = {"Cache-Control": "private, max-age=3600"}     # versions never change
    if request.args.get("inline") != "1":
        headers["Content-Disposition"] = attachment(f"{process_id}-v{number}-{file_name}")
    return Response(version.bpmn_files[file_name], mimetype="application/xml", headers=headers)


# ---- traceability ------------------------------------------------------------------------------------
def trace_rows():
    """The rows of `flask processes trace` (deployed versions), and the versions they were read from."""
    versions = [registry.latest_version(db.session, pid) for pid in _top_process_ids()]
    bpmn, process_of_file = {}, {}
    for v in versions:
        for name, xml in v.bpmn_files.items():
            bpmn[name] = xml
            process_of_file[name] = v
    clauses = trace.load_clauses(current_app.config["PROCESSES_DIR"] / "clauses.json")
    rows = trace.trace(clauses, trace.clause_elements(bpmn), trace.clause_tests(ROOT / "tests"))
    return rows, versions, process_of_file


@bp.get("/traceability")
@roles_required(*PROCEDURE_READERS)
def traceability():
    rows, versions, process_of_file = trace_rows()
    if not versions:
        abort(404, description=_("No procedure is deployed yet."))
    label = ", ".join(f"{v.process_id} version {v.version}" for v in versions)
    if request.args.get("format") == "md":
        return Response(trace.to_markdown(rows, label), mimetype="text/markdown",
                        headers={"Content-Disposition": 'attachment; filename="traceability.md"'})
    gaps = [r["id"] for r in rows if r["gap"]]
    return render_template("web/traceability.html", rows=rows, versions=versions, gaps=gaps,
                           process_of_file=process_of_file)


# ---- changing the procedure (process owners) ---------------------------------------------------------
REASONS = (
    (re.compile(r"^its current step (.+) was removed$"), lambda m: _("its current step %(step)s was removed",
                                                                     step=m[1])),
    (re.compile(r"^its completed step (.+) was removed$"), lambda m: _("its completed step %(step)s was removed",
                                                                       step=m[1])),
    (re.compile(r"^the called process (.+) does not exist in the new version$"),
     lambda m: _("the called process %(process)s does not exist in the new version", process=m[1])),
    (re.compile(r"^the step (.+) has no counterpart in the new version$"),
     lambda m: _("the step %(step)s has no counterpart in the new version", step=m[1])),
    (re.compile(r"^it already runs on version (\d+)$"), lambda m: _("it already runs on version %(num)s", num=m[1])),
    (re.compile(r"^it is (completed|error)$"), lambda m: _("it is no longer running (%(status)s)", status=m[1])),
)


def reason_text(reason: str) -> str:
    """The engine's reason a complaint cannot be migrated, in the page's language (unknown ones as they are)."""
    for pattern, words in REASONS:
        found = pattern.match(reason)
        if found:
            return words(found)
    return reason


def _changed_bundles(bundles):
    """(bundle, current version or None, the version that already holds this content or None) of every
    bundle whose content is not the current version's."""
    out = []
    for bundle in bundles:
        current = registry.latest_version(db.session, bundle.process_id)
        if current is not None and current.content_hash == bundle.content_hash:
            continue
        out.append((bundle, current, registry.version_with_content(db.session, bundle)))
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
        ProcessInstance.id.not_in(avoidance.avoided_instances(me())))
        .order_by(ProcessInstance.id)).all()
    out = []
    for inst, number in rows:
        reasons = runtime().preview_migration(inst.id, bundle.content_hash, bundle.spec_json,
                                              bundle.subprocess_specs_json)
        out.append({"instance_id": inst.id, "number": number or inst.business_key, "version": inst.version.version,
                    "reasons": [reason_text(r) for r in reasons]})
    return out


def _upload_preview(file_name, content):
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
            entry["dry_run"] = _preview_migration(bundle)
        changes.append(entry)
    return {"problems": [], "changes": changes, "bundles": bundles}


def _expected(changes) -> str:
    return ",".join(sorted(f"{c['bundle'].process_id}:{c['bundle'].content_hash}" for c in changes
                           if c["earlier"] is None))


@bp.post("/procedure/<process_id>/upload")
@roles_required(*PROCESS_OWNERS)
def procedure_upload(process_id):
    """Check an uploaded .bpmn with the other files (nothing is deployed): its problems, or the
    difference to the current version and which running complaints could move onto it."""
    versions = _versions(process_id)
    upload = request.files.get("bpmn")
    if upload is None or not upload.filename:
        flash(_("Choose a .bpmn file to upload."), "error")
        return redirect(url_for("web.procedure", process_id=process_id))
    content = upload.read(UPLOAD_LIMIT + 1)
    if len(content) > UPLOAD_LIMIT:
        flash(_("The file is larger than %(num)d kB.", num=UPLOAD_LIMIT // 1024), "error")
        return redirect(url_for("web.procedure", process_id=process_id))
    preview = _upload_preview(upload.filename, content)
    status = 422 if preview["problems"] else 200
    return render_template("web/procedure_upload.html", process_id=process_id, latest=versions[0],
                           file_name=upload.filename, preview=preview, expected=_expected(preview["changes"]),
                           content_b64=base64.b64encode(content).decode("ascii")), status


@bp.post("/procedure/<process_id>/deploy")
@roles_required(*PROCESS_OWNERS)
def procedure_deploy(process_id):
    """Deploy the previewed upload: checked again, and deployed only if it still makes exactly the
    changes that were shown."""
    _versions(process_id)
    file_name = request.form.get("file_name", "")
    try:
        content = base64.b64decode(request.form.get("content", ""), validate=True)
    except (binascii.Error, ValueError):
        abort(400)
    preview = _upload_preview(file_name, content)
    if preview["problems"] or _expected(preview["changes"]) != request.form.get("expected", "") \
            or not request.form.get("expected"):
        flash(_("The procedure files changed since the check; nothing was deployed. Check the differences "
                "again."), "error")
        return render_template("web/procedure_upload.html", process_id=process_id,
                               latest=registry.latest_version(db.session, process_id), file_name=file_name,
                               preview=preview, expected=_expected(preview["changes"]),
                               content_b64=base64.b64encode(content).decode("ascii")), 409
    results = registry.deploy(db.session, preview["bundles"], me().username)
    for pid, number, new in results:
        if new:
            flash(_("%(process)s version %(num)s is deployed; new complaints start on it.", process=pid,
                    num=number), "success")
    return redirect(url_for("web.procedure_migrate", process_id=process_id))


def _target(versions):
    number = request.values.get("to", type=int)
    return _version_of(versions, number) if number else versions[0]


def _running_elsewhere(target):
    """The running instances on other versions that the current user may see and move (not under 回避)."""
    return db.session.execute(select(ProcessInstance.id, ProcessInstance.business_key, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
                              .where(ProcessInstance.process_id == target.process_id,
                                     ProcessInstance.status == "running", ProcessInstance.version_id != target.id,
                                     ProcessInstance.id.not_in(avoidance.avoided_instances(me())))
                              .order_by(ProcessInstance.id)).all()


@bp.route("/procedure/<process_id>/migrate", methods=["GET", "POST"])
@roles_required(*PROCESS_OWNERS)
def procedure_migrate(process_id):
    """Bulk migration, as `flask processes migrate`: GET is the dry run (runtime.migrate with
    dry_run=True per running complaint on an older version); POST moves the complaints ticked there
    and shows what became of each."""
    versions = _versions(process_id)
    target = _target(versions)
    actor = me().username
    rows = []
    if request.method == "POST":
        chosen = {int(i) for i in request.form.getlist("instance") if i.isdigit()}
        for instance_id, key, number in _running_elsewhere(target):
            if instance_id not in chosen:
                continue
            rows.append(_migrate_one(instance_id, key, number, target, actor, dry_run=False))
        moved = sum(1 for r in rows if r["ok"])
        flash(_("%(moved)d of %(total)d complaints moved to version %(num)s.", moved=moved, total=len(rows),
                num=target.version), "success" if moved == len(rows) else "error")
    else:
        for instance_id, key, number in _running_elsewhere(target):
            rows.append(_migrate_one(instance_id, key, number, target, actor, dry_run=True))
    return render_template("web/procedure_migrate.html", process_id=process_id, target=target, versions=versions,
                           rows=rows, done=request.method == "POST")


def _migrate_one(instance_id, key, number, target, actor, dry_run) -> dict:
    try:
        reasons = runtime().migrate(instance_id, target, actor, dry_run=dry_run)
    except AppError as err:
        db.session.rollback()
        reasons = [err.message]
    return {"instance_id": instance_id, "number": key, "version": number, "ok": not reasons,
            "reasons": [reason_text(r) for r in reasons]}


# ---- one complaint on its diagram --------------------------------------------------------------------
def complaint_diagram(complaint) -> dict:
    """The complaint's own version's diagram with what to mark: completed elements, current ones,
    deadlines missed and still running, visit counts and the sequence flows taken (element_visit rows,
    never the workflow)."""
    inst = db.session.get(ProcessInstance, complaint.instance_id) if complaint.instance_id else None
    if inst is None:
        return {}
    version = inst.version
    parsed = diagram.of_version(version)
    visits = db.session.execute(select(ElementVisit).where(ElementVisit.instance_id == inst.id)
                                .order_by(ElementVisit.id)).scalars().all()
    current = set(db.session.execute(select(HumanTask.element_id).where(
        HumanTask.instance_id == inst.id, HumanTask.state == "open")).scalars())
    walked = diagram.path(parsed, visits, current)
    current |= diagram.containing_calls(parsed, current)
    deadlines = db.session.execute(select(Deadline.element_id, Deadline.state).where(
        Deadline.instance_id == inst.id)).all()
    missed = sorted({e for e, state in deadlines if state == "missed"})
    waiting = sorted({e for e, state in deadlines if state == "open"})
    known = parsed["elements"]
    marks = {"done": sorted(e for e in walked["counts"] if e in known),
             "current": sorted(e for e in current if e in known),
             "missed": [e for e in missed if e in known], "deadline_open": [e for e in waiting if e in known],
             "taken": sorted(f for f in walked["taken"] if f in parsed["flows"]),
             "counts": {e: n for e, n in walked["counts"].items() if e in known and n > 1}}
    data = {"mode": "complaint", "marks": marks,
            "xml_url": url_for("web.procedure_file", process_id=version.process_id, number=version.version,
                               file_name=parsed["main_file"], inline=1)}
    return {"version": version, "data": data, "steps": walked["steps"], "marks": marks,
            "procedure_url": url_for("web.procedure_version", process_id=version.process_id,
                                     number=version.version)}

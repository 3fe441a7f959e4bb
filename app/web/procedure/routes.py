"""The procedure pages: the deployed diagram (bpmn-js) with each element's documentation and where
complaints are on it, its versions and their BPMN files, the traceability of the written procedure,
and — for process owners — uploading a changed diagram, deploying it and migrating running
complaints onto it. Every change goes through the engine (registry.deploy, runtime.migrate), which
writes the audit trail; these pages only read the flat tables and the stored XML."""
import base64
import binascii
from collections import Counter

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ... import avoidance, trace
from ...config import ROOT
from ...engine import registry
from ...errors import AppError
from ...extensions import db
from ...jobs import migration, store as jobs_store
from ...models import ProcessInstance, ProcessVersion
from ...permissions import PROCEDURE_READERS, PROCESS_OWNERS
from ...security import cacheable
from .. import diagram
from ..common import attachment, display_names, roles_required, runtime
from ..ui import has_any, me
from . import bp
from ..migration_text import reason_text
from .changes import diagram_diff, expected_key, upload_preview
from .page import decision_tables, diagram_files, element_docs, overlay_data
from .problems import problem_text

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
# The upload travels back to the server in the confirm form (base64, in a form field that Flask caps
# at MAX_FORM_MEMORY_SIZE, 500 kB by default): the diagram itself may be at most this big.
UPLOAD_LIMIT = 350 * 1024


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
        return redirect(url_for("procedure.procedure", process_id=ids[0]))
    latest = [registry.latest_version(db.session, pid) for pid in ids]
    return render_template("procedure/procedures.html", versions=latest)


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


@bp.get("/procedure/<process_id>/v<int:number>/stats.json")
@roles_required(*PROCEDURE_READERS)
def procedure_stats(process_id, number):
    """The overlay data of the procedure page as JSON (the browser session, not an API token)."""
    version = _version_of(_versions(process_id), number)
    days, scope = _period_args()
    return overlay_data(version, days, scope)


def _procedure_page(versions, version):
    days, scope = _period_args()
    parsed = diagram.of_version(version)
    diagrams = diagram_files(version)
    file_name = request.args.get("file") if request.args.get("file") in diagrams else parsed["main_file"]
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
    previous = next((v for v in versions if v.version < version.version), None)
    diff = diagram_diff(previous, version) if previous and request.args.get("changes") == "1" else None
    data = {"mode": "procedure",
            "xml_url": url_for("procedure.procedure_file", process_id=version.process_id, number=version.version,
                               file_name=file_name, inline=1),
            # The diagram's colours say one thing at a time: what changed, or where complaints are.
            "overlays": [] if diff else [e for e in overlays["elements"] if e["id"] in in_diagram],
            "select": selected if selected in parsed["elements"] else None}
    return render_template(
        "procedure/procedure.html", version=version, versions=versions, latest=latest, file_name=file_name,
        diagram_files=diagrams, decisions=decision_tables(version),
        docs=docs, docs_by_id={d["id"]: d for d in docs}, overlays=overlays, data=data,
        stats_by_id={row["id"]: row for row in overlays["elements"]},
        elsewhere=[e for e in overlays["elements"] if e["id"] not in in_diagram],
        names=display_names({v.deployed_by for v in versions}), periods=PERIODS, is_owner=owner,
        to_migrate=to_migrate, upload_limit_kb=UPLOAD_LIMIT // 1024, previous=previous, diff=diff,
        diff_data=_diff_data(diff))


def _diff_data(diff):
    """What app/static/diagram_diff.js draws: the element ids per kind of change, and the badges' words."""
    if diff is None:
        return None
    return {"marks": {kind: [eid for eid, _name in diff[kind]] for kind in ("added", "changed", "moved")},
            "labels": {"added": _("added"), "changed": _("changed"), "moved": _("moved")}}


@bp.get("/procedure/<process_id>/v<int:number>/<file_name>")
@roles_required(*PROCEDURE_READERS)
@cacheable
def procedure_file(process_id, number, file_name):
    """A BPMN or DMN file of any deployed version, as stored (a download; `inline=1` for the viewers)."""
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
    # What a reader sees is in the page's language: an element by its name from the diagram (or, unnamed,
    # by its kind) and its kind in words, never the engine's words; the application's part translated.
    kinds = diagram.kind_labels({name: xml for v in versions for name, xml in v.bpmn_files.items()})
    rows = [{**r, "app": _(r["app"]) if r.get("app") else None} for r in rows]
    return render_template("procedure/traceability.html", rows=rows, versions=versions, gaps=gaps,
                           process_of_file=process_of_file, kinds=kinds)


# ---- changing the procedure (process owners) ---------------------------------------------------------
@bp.post("/procedure/<process_id>/upload")
@roles_required(*PROCESS_OWNERS)
def procedure_upload(process_id):
    """Check an uploaded .bpmn (a diagram) or .dmn (a decision table) with the other files (nothing is
    deployed): its problems, or the difference to the current version and which running complaints
    could move onto it."""
    versions = _versions(process_id)
    upload = request.files.get("bpmn")
    if upload is None or not upload.filename:
        flash(_("Choose a .bpmn or .dmn file to upload."), "error")
        return redirect(url_for("procedure.procedure", process_id=process_id))
    content = upload.read(UPLOAD_LIMIT + 1)
    if len(content) > UPLOAD_LIMIT:
        flash(_("The file is larger than %(num)d kB.", num=UPLOAD_LIMIT // 1024), "error")
        return redirect(url_for("procedure.procedure", process_id=process_id))
    preview = upload_preview(upload.filename, content)
    status = 422 if preview["problems"] else 200
    return render_template("procedure/upload.html", process_id=process_id, latest=versions[0],
                           file_name=upload.filename, preview=preview, expected=expected_key(preview["changes"]),
                           content_b64=base64.b64encode(content).decode("ascii"), problem_text=problem_text), status


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
    preview = upload_preview(file_name, content)
    if preview["problems"] or expected_key(preview["changes"]) != request.form.get("expected", "") \
            or not request.form.get("expected"):
        flash(_("The procedure files changed since the check; nothing was deployed. Check the differences "
                "again."), "error")
        return render_template("procedure/upload.html", process_id=process_id,
                               latest=registry.latest_version(db.session, process_id), file_name=file_name,
                               preview=preview, expected=expected_key(preview["changes"]),
                               content_b64=base64.b64encode(content).decode("ascii"), problem_text=problem_text), 409
    results = registry.deploy(db.session, preview["bundles"], me().username)
    for pid, number, new in results:
        if new:
            flash(_("%(process)s version %(num)s is deployed; new complaints start on it.", process=pid,
                    num=number), "success")
    return redirect(url_for("procedure.procedure_migrate", process_id=process_id))


def _target(versions):
    number = request.values.get("to", type=int)
    return _version_of(versions, number) if number else versions[0]


def _running_elsewhere(target):
    """The running instances on other versions that the current user may see and move (not under 回避)."""
    return db.session.execute(select(ProcessInstance.id, ProcessInstance.business_key, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
                              .where(ProcessInstance.process_id == target.process_id,
                                     ProcessInstance.status == "running", ProcessInstance.version_id != target.id,
                                     ProcessInstance.id.not_in(avoidance.avoided_instances(me().username)))
                              .order_by(ProcessInstance.id)).all()


@bp.route("/procedure/<process_id>/migrate", methods=["GET", "POST"])
@roles_required(*PROCESS_OWNERS)
def procedure_migrate(process_id):
    """Bulk migration, as `flask processes migrate`: GET is the dry run (runtime.migrate with
    dry_run=True per running complaint on an older version); POST moves the complaints ticked there
    and shows what became of each. Beyond JOBS_MIGRATE_INLINE_MAX complaints both run as a background
    job (app/jobs/migration.py) and the page links to its progress and result list."""
    versions = _versions(process_id)
    target = _target(versions)
    actor = me().username
    elsewhere = _running_elsewhere(target)
    inline_max = current_app.config["JOBS_MIGRATE_INLINE_MAX"]
    rows = []
    if request.method == "POST":
        chosen = {int(i) for i in request.form.getlist("instance") if i.isdigit()}
        picked = [row for row in elsewhere if request.form.get("all") == "1" or row[0] in chosen]
        if request.form.get("dry_run") == "1" or len(picked) > inline_max:
            return _migration_job(target, picked, dry_run=request.form.get("dry_run") == "1")
        for instance_id, key, number in picked:
            rows.append(_migrate_one(instance_id, key, number, target, actor, dry_run=False))
        moved = sum(1 for r in rows if r["ok"])
        flash(_("%(moved)d of %(total)d complaints moved to version %(num)s.", moved=moved, total=len(rows),
                num=target.version), "success" if moved == len(rows) else "error")
    elif len(elsewhere) <= inline_max:
        for instance_id, key, number in elsewhere:
            rows.append(_migrate_one(instance_id, key, number, target, actor, dry_run=True))
    return render_template("procedure/migrate.html", process_id=process_id, target=target, versions=versions,
                           rows=rows, done=request.method == "POST", many=len(elsewhere) > inline_max,
                           waiting=len(elsewhere), by_version=Counter(number for _i, _k, number in elsewhere),
                           jobs=_my_migration_jobs(process_id))


def _migration_job(target, picked, dry_run):
    """Queue the move (or the check) of the picked complaints as a background job, and show it."""
    if not picked:
        flash(_("No complaint is ticked that could move."), "error")
        return redirect(url_for("procedure.procedure_migrate", process_id=target.process_id, to=target.version))
    job = jobs_store.create(db.session, migration.KIND, me().username, migration.params(target, dry_run),
                            migration.items(picked))
    db.session.commit()
    flash(_("%(num)d complaints are checked in the background.", num=len(picked)) if dry_run else
          _("%(num)d complaints are moved in the background.", num=len(picked)), "success")
    return redirect(url_for("jobs.job", job_id=job.id))


def _my_migration_jobs(process_id) -> list:
    """The current user's recent migration jobs of this process, with their progress."""
    found = [j for j in jobs_store.of_user(db.session, me().username, migration.KIND, limit=20)
             if j.params.get("process_id") == process_id][:5]
    return [(j, jobs_store.progress(db.session, j)) for j in found]


def _migrate_one(instance_id, key, number, target, actor, dry_run) -> dict:
    try:
        reasons = runtime().migrate(instance_id, target, actor, dry_run=dry_run)
    except AppError as err:
        db.session.rollback()
        reasons = [err.message]
    return {"instance_id": instance_id, "number": key, "version": number, "ok": not reasons,
            "reasons": [reason_text(r) for r in reasons]}

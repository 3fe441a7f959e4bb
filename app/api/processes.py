"""Deployed processes: versions, their BPMN files, and where complaints are on them."""
from datetime import timedelta

from flask import Response, request
from sqlalchemy import select

from ..errors import AppError, NotFound
from ..extensions import db
from ..models import ProcessVersion
from ..permissions import READERS
from ..stats import element_stats
from ..timeutil import parse_iso, utcnow
from . import bp
from .auth import require


def _versions(process_id):
    versions = db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
                                  .order_by(ProcessVersion.version.desc())).scalars().all()
    if not versions:
        raise NotFound(f"no process {process_id}")
    return versions


@bp.get("/processes/<process_id>")
@require(*READERS, "process_owner")
def process_versions(process_id):
    return {"process_id": process_id, "versions": [
        {"version": v.version, "name": v.name, "content_hash": v.content_hash, "files": sorted(v.bpmn_files),
         "deployed_by": v.deployed_by, "deployed_at": v.deployed_at.isoformat()} for v in _versions(process_id)]}


@bp.get("/processes/<process_id>/versions/<int:number>/<file_name>")
@require(*READERS, "process_owner")
def process_file(process_id, number, file_name):
    """Download the BPMN file of any deployed version."""
    version = next((v for v in _versions(process_id) if v.version == number), None)
    if version is None or file_name not in version.bpmn_files:
        raise NotFound(f"no file {file_name} in {process_id} version {number}")
    return Response(version.bpmn_files[file_name], mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{process_id}-v{number}-{file_name}"'})


@bp.get("/processes/<process_id>/stats")
@require(*READERS, "process_owner")
def process_stats(process_id):
    """Per element: complaints waiting now, overdue, and the median hours spent over [since, until)."""
    now = utcnow()
    try:
        until = parse_iso(request.args["until"]) if "until" in request.args else now
        since = parse_iso(request.args["since"]) if "since" in request.args else until - timedelta(days=90)
    except (ValueError, OverflowError) as exc:      # OverflowError: year 1 minus 90 days
        raise AppError(f"since/until must be ISO times with a zone: {exc}", code="bad_query")
    elements = element_stats(db.session, process_id, now, since, until)
    if elements is None:
        raise NotFound(f"no process {process_id}")
    return {"process_id": process_id, "since": since.isoformat(), "until": until.isoformat(), "elements": elements}

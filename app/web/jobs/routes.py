"""/jobs: the user's own background jobs. A job is seen, followed, downloaded and cancelled by the user who
started it only (someone else's is as good as none: 404), and only while they hold a role of its kind."""
import io

from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...analysis import export
from ...extensions import db
from ...jobs import store
from ...jobs.kinds import KINDS, starter_roles
from ...jobs.files import JobFiles
from ...models import BackgroundJob, BackgroundJobItem
from ..common import page_arg, roles_required
from ..ui import has_any, me
from . import bp, text

STARTERS = starter_roles()
PER_PAGE = 100
MIMETYPES = {"csv": export.CSV_MIME, "xlsx": export.XLSX_MIME}


def _mine_or_404(job_id) -> BackgroundJob:
    job = db.session.get(BackgroundJob, job_id)
    if job is None or job.started_by != me().username or job.kind not in KINDS:
        abort(404, description=_("You have no background job %(num)s.", num=job_id))
    if not has_any(me(), KINDS[job.kind].roles):
        abort(403)
    return job


@bp.get("/jobs")
@roles_required(*STARTERS)
def jobs():
    mine = store.of_user(db.session, me().username)
    return render_template("jobs/jobs.html", jobs=mine, text=text)


@bp.get("/jobs/<int:job_id>")
@roles_required(*STARTERS)
def job(job_id):
    found = _mine_or_404(job_id)
    kind = KINDS[found.kind]
    pages = max((found.total + PER_PAGE - 1) // PER_PAGE, 1)
    page = min(page_arg(), pages)
    items = store.items(db.session, found.id, page, PER_PAGE) if kind.lists_items else []
    return render_template("jobs/job.html", job=found, kind=kind, progress=_progress(found), text=text,
                           items=[(item, text.outcome(found, item)) for item in items], page=page, pages=pages,
                           rows=_rows_written(found) if not kind.lists_items else None)


def _rows_written(job) -> int:
    """An export's rows so far (each slice's outcome message is its count)."""
    counts = db.session.execute(select(BackgroundJobItem.message).where(
        BackgroundJobItem.job_id == job.id, BackgroundJobItem.outcome.is_not(None))).scalars()
    return sum(int(n) for n in counts if n and n.isdigit())


def _progress(job) -> dict:
    found = store.progress(db.session, job)
    ready = job.state == "done" and job.result_file is not None
    return {**found, "state_label": text.state(job), "summary": text.summary(job, found["outcomes"]),
            "page_url": url_for("jobs.job", job_id=job.id),
            "download_url": url_for("jobs.download", job_id=job.id) if ready else None,
            "expires_at": job.expires_at.isoformat() if ready and job.expires_at else None}


@bp.get("/jobs/<int:job_id>.json")
@roles_required(*STARTERS)
def progress(job_id):
    """The progress bar's figures, for the job page's script (the browser session, not an API token)."""
    return _progress(_mine_or_404(job_id))


@bp.get("/jobs/<int:job_id>/download")
@roles_required(*STARTERS)
def download(job_id):
    """The job's result file, to the user who started it, while it is kept."""
    found = _mine_or_404(job_id)
    if found.state != "done" or not found.result_file:
        abort(404, description=_("This job has no file to download: it is not done, or its file was deleted "
                                 "after the time it is kept. Export again."))
    content = JobFiles(db.session).read(found.id, found.result_file)
    if content is None:
        abort(404, description=_("This job's file is gone. Export again."))
    # Wrapped, so that send_file streams the content instead of copying it to learn its size (BytesIO.getbuffer).
    response = send_file(io.BufferedReader(io.BytesIO(content)), as_attachment=True,
                         download_name=found.params.get("name") or found.result_file,
                         mimetype=MIMETYPES.get(found.params.get("format"), "application/octet-stream"), max_age=0)
    response.content_length = len(content)
    return response


@bp.post("/jobs/<int:job_id>/cancel")
@roles_required(*STARTERS)
def cancel(job_id):
    found = _mine_or_404(job_id)
    if store.cancel(db.session, found.id, me().username):
        flash(_("The job is cancelled. What it had done stays done; the rest is left as it was."), "success")
    else:
        flash(_("The job had finished already."), "error")
    return redirect(url_for("jobs.job", job_id=job_id))

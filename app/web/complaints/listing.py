"""The complaint list (/complaints): find by a term, filter, page, save a filter, export (app.complaint_list).

Filters travel in the query string (a link, a bookmark, a saved filter carry them). The search box posts
its term, so a name, phone or ID number never sits in a URL or an access log; a GET with ?q= finds by
complaint, policy or claim number only."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import audit, complaint_list, complaints, queues
from ...analysis.dimensions import FilterError, dimensions
from ...analysis.periods import PeriodError
from ...extensions import db
from ...jobs import list_export, store as jobs
from ...models import Complaint, SavedFilter
from ...permissions import LIST_EXPORTERS, READERS
from ...timeutil import business_now, utcnow
from .. import diagram, formrender_codes
from ..common import page_arg, roles_required
from ..downloads import download
from ..filter_messages import filter_message, period_message
from ..ui import (CHANNEL_LABELS, OUTCOME_LABELS, channel_label, has_any, latest_forms, me, newest_versions,
                  outcome_label, pii_roles, status_label, step_label)
from . import bp

SAVED_MAX = 20           # saved filters per user
NAME_MAX = 80


def _asked():
    """(ListQuery or None, what is wrong or None, the term) of this request."""
    personal = request.method == "POST"
    term = ((request.form if personal else request.args).get("q") or "").strip()
    try:
        return complaint_list.from_args(request.args, term, personal, names=has_any(me(), pii_roles())), None, term
    except PeriodError as err:
        return None, period_message(err), term
    except complaint_list.ListError as err:
        return None, list_message(err), term


def list_message(err) -> str:
    if err.code == "too_long":
        return _("The search term or a filter is too long: at most %(limit)d characters.", limit=err.params["limit"])
    if err.code == "bad_status":
        return _("Choose the status from its list.")
    return _("“Overdue only” is on or off.")


def _conditions(asked):
    """(SQL conditions, None) or (None, what is wrong)."""
    try:
        return complaint_list.where(db.session, me(), asked, dimensions(db.session), utcnow()), None
    except FilterError as err:
        return None, filter_message(err)


@bp.route("/complaints", methods=["GET", "POST"])
@roles_required(*READERS)
def search():
    asked, error, term = _asked()
    found = None
    if asked is not None:
        conditions, error = _conditions(asked)
        if conditions is not None:
            found = complaint_list.page(db.session, conditions, page_arg(), current_app.config["WEB_PER_PAGE"])
    if found and term and found["total"] == 1 and found["rows"][0].number == term:
        return redirect(url_for("complaints.complaint", number=term))
    pii, now = has_any(me(), pii_roles()), _step_labels()
    items = [{"c": c, "customer": c.customer_name if pii else complaints.mask_name(c.customer_name),
              "phone": complaints.mask_phone(c.phone), "now": list_export.steps_text(c.current_step, now)}
             for c in (found or {}).get("rows", [])]
    args = asked.args if asked is not None else _filter_args()
    return render_template("complaints/search.html", q=term, personal=request.method == "POST", items=items,
                           found=found, error=error, args=args, options=_options(), saved=_saved_of_me(),
                           may_export=has_any(me(), LIST_EXPORTERS)), 422 if error else 200


def _options() -> dict:
    """The choices of the filter form: codes of the vocabularies, channels, the steps complaints wait at, handlers."""
    forms = latest_forms()
    return {"category": formrender_codes.filter_options("category") or [],
            "product_line": formrender_codes.filter_options("product_line") or [],
            "channel": list(CHANNEL_LABELS.items()),
            "step": [(e, step_label(e, n, forms)) for e, n in queues.waiting_steps(db.session)],
            "handler": [(u.username, u.display_name) for u in complaints.claim_handlers(db.session)]}


def _step_labels() -> dict:
    """What list_export.steps_text needs to say the steps complaints wait at in this page's language: the diagram
    name of every user task in the newest version of each process (the complaint process's last) and its label.
    A background export keeps them in its params, for complaints that move on before it reads them."""
    forms, names = latest_forms(), {}
    for version in newest_versions():
        for element in diagram.of_version(version)["elements"].values():
            if element["kind"] == "userTask" and element["name"]:
                names[element["name"]] = step_label(element["id"], element["name"], forms)
    return {"names": names, "joiner": _(", ")}


def _filter_args() -> dict:
    """The filters of the query string, none empty (what a link, a saved filter and an export carry)."""
    return {k: v for k, v in request.args.items() if k in complaint_list.FILTER_ARGS and v.strip()}


# ---- saved filters ------------------------------------------------------------------------------------------
def _saved_of_me() -> list:
    return db.session.execute(select(SavedFilter).where(SavedFilter.user_id == me().id)
                              .order_by(SavedFilter.name)).scalars().all()


@bp.post("/complaints/saved")
@roles_required(*READERS)
def save_filter():
    """Save the filters in the query string under the name in the form (the same name replaces its filters)."""
    name = (request.form.get("name") or "").strip()
    args = _filter_args()
    back = url_for("complaints.search", **args)
    asked, error, _term = _asked()
    if error is None:
        error = _conditions(asked)[1]
    if error:                               # a filter saved must ask for a list that can be shown
        flash(error, "error")
        return redirect(back)
    if not name or len(name) > NAME_MAX:
        flash(_("Give the filter a name of at most %(limit)d characters.", limit=NAME_MAX), "error")
        return redirect(back)
    if not args:
        flash(_("Choose at least one filter to save."), "error")
        return redirect(back)
    mine = _saved_of_me()
    same = next((s for s in mine if s.name == name), None)
    if same is None and len(mine) >= SAVED_MAX:
        flash(_("You have %(limit)d saved filters: delete one first.", limit=SAVED_MAX), "error")
        return redirect(back)
    if same is None:
        db.session.add(SavedFilter(user_id=me().id, name=name, args=args))
    else:
        same.args = args
    try:
        db.session.commit()
    except IntegrityError:                  # the same name saved twice at once: the other one stands
        db.session.rollback()
    flash(_("The filter “%(name)s” is saved.", name=name), "success")
    return redirect(back)


@bp.post("/complaints/saved/<int:filter_id>/delete")
@roles_required(*READERS)
def delete_filter(filter_id):
    found = db.session.get(SavedFilter, filter_id)
    if found is None or found.user_id != me().id:      # another user's is as good as none
        flash(_("There is no such saved filter."), "error")
        return redirect(url_for("complaints.search"))
    db.session.delete(found)
    db.session.commit()
    flash(_("The filter “%(name)s” is deleted.", name=found.name), "success")
    return redirect(url_for("complaints.search"))


# ---- export -------------------------------------------------------------------------------------------------
EXPORT_COLUMNS = list_export.COLUMNS


@bp.route("/complaints/export.csv", methods=["GET", "POST"], defaults={"fmt": "csv"})
@bp.route("/complaints/export.xlsx", methods=["GET", "POST"], defaults={"fmt": "xlsx"})
@roles_required(*LIST_EXPORTERS)
def export(fmt):
    """Every complaint of the list, streamed; names masked as on the page, no phone or ID number. The export
    is written to the audit trail (its filters, and whether a term was given: never the term). A list longer
    than JOBS_EXPORT_INLINE_MAX rows, or one asked for with background=1, is written by a background job
    (app/jobs/list_export.py) into a file that only this user may download, for a limited time."""
    asked, error, term = _asked()
    conditions = None
    if asked is not None:
        conditions, error = _conditions(asked)
    if error:
        flash(error, "error")
        return redirect(url_for("complaints.search", **_filter_args()))
    inline_max = current_app.config["JOBS_EXPORT_INLINE_MAX"]
    if request.values.get("background") == "1" \
            or complaint_list.count_upto(db.session, conditions, inline_max + 1) > inline_max:
        return _export_job(fmt, asked, term, conditions)
    audit.record(db.session, me().username, "complaints_exported",
                 data={"format": fmt, "filters": asked.args, "term": bool(term)})
    db.session.commit()
    cells = list_export.Cells(_export_labels(), has_any(me(), pii_roles()))
    rows = _rows(current_app._get_current_object(), conditions, cells)
    return download(fmt, [(_("Complaints"), _export_header(), rows)], f"complaints-{business_now():%Y%m%d-%H%M}")


def _export_job(fmt, asked, term, conditions):
    """The export as a job: the complaints the list holds now (ids, newest first: the term is not kept), the
    labels in this page's language; audited as the direct export is, with the job's id."""
    ids = db.session.execute(select(Complaint.id).where(*conditions).order_by(*complaint_list.NEWEST_FIRST)) \
        .scalars().all()
    name = f"complaints-{business_now():%Y%m%d-%H%M}.{fmt}"
    params = list_export.params(fmt, name, str(_("Complaints")), _export_header(), _export_labels(),
                                has_any(me(), pii_roles()), asked.args, bool(term))
    job = jobs.create(db.session, list_export.KIND, me().username, params, list_export.items(ids))
    audit.record(db.session, me().username, "complaints_exported",
                 data={"format": fmt, "filters": asked.args, "term": bool(term), "job": job.id})
    db.session.commit()
    flash(_("The export of %(num)d complaints is written in the background; download it here when it is done.",
            num=len(ids)), "success")
    return redirect(url_for("jobs.job", job_id=job.id))


def _export_header() -> list:
    return [_("Complaint"), _("Received"), _("Customer"), _("Channel"), _("Category"), _("Product line"),
            _("Status"), _("Now"), _("Decision due"), _("Outcome"), _("Closed at")]


def _rows(app, conditions, cells):
    """The complaints' cells, read in batches in an app context of the stream's own."""
    with app.app_context():
        for row in complaint_list.stream(db.session, conditions, EXPORT_COLUMNS):
            yield cells.of(row)


def _export_labels() -> dict:
    """Every code's label as this request says it (its language, the vocabularies in force), so that the
    stream, or a background job, needs no request context."""
    return {"category": {code: str(text) for code, text in formrender_codes.filter_options("category") or []},
            "product_line": {code: str(text) for code, text in formrender_codes.filter_options("product_line") or []},
            "channel": {code: str(channel_label(code)) for code in CHANNEL_LABELS},
            "status": {code: str(status_label(code, "complaint")) for code in complaint_list.STATUSES},
            "outcome": {code: str(outcome_label(code)) for code in OUTCOME_LABELS},
            "now": _step_labels()}

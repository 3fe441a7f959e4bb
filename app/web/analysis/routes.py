"""The analysis page, the complaints behind a figure, the stored reports and the exports. Every view
reads its selection from the query string (GETs only: filters are bookmarkable and need no CSRF token);
bad input shows the page again with a sentence saying what is wrong (422), never an error page."""
from flask import abort, current_app, render_template
from flask_babel import gettext as _

from ... import analysis, quarterly
from ...analysis import drilldown, export
from ...analysis.dimensions import FilterError, dimensions
from ...avoidance import visible_to
from ...complaints import CHANNELS
from ...extensions import db
from ...permissions import ANALYSTS, READERS, REVIEW_STARTERS
from ..common import page_arg, roles_required
from ..downloads import download as _download
from ..filter_messages import filter_message
from ..formrender_codes import label as code_label
from ..ui import OUTCOME_LABELS, channel_label, has_any, me, outcome_label, status_label
from . import bp
from .charts import all_charts
from .selection import Selection, from_request, of_report, quarter_choices
from .tables import DIMENSION_TITLES, all_tables



def _analysed(selection: Selection):
    """(analysis data, None) or (None, what is wrong with the selection)."""
    if selection.error:
        return None, selection.error
    try:
        return analysis.of_period(db.session, selection.period, selection.filters), None
    except FilterError as err:
        return None, filter_message(err)


def _page(template, selection, data=None, error=None, **context):
    tables = all_tables(data, selection) if data else []
    by_key = {t.key: t for t in tables}
    dims = dimensions(db.session)
    options = {name: _options(dims, name) for name in DIMENSION_TITLES}
    return render_template(template, selection=selection, data=data, error=error, tables=by_key,
                           charts=all_charts(data, by_key) if data else [], quarters=quarter_choices(),
                           dimension_titles=DIMENSION_TITLES, options=options, **context), 422 if error else 200


def _options(dims, name):
    """(code, label) of a dimension's filter list: every code (groups, retired ones too), then "uncoded"."""
    if name == "channel":
        return [(code, channel_label(code)) for code in CHANNELS]
    return [(code, code_label(name, code)) for code in dims[name].codes()] + [(analysis.UNCODED, _("Uncoded"))]


@bp.get("/analysis")
@roles_required(*ANALYSTS)
def page():
    selection = from_request()
    data, error = _analysed(selection)
    review = quarterly.review_of(db.session, selection.period) if selection.period else None
    return _page("analysis/page.html", selection, data, error, review=review,
                 may_start_review=has_any(me(), REVIEW_STARTERS),
                 period_over=bool(selection.period) and quarterly.is_over(selection.period))


@bp.get("/analysis/reports/<int:report_id>")
@roles_required(*ANALYSTS)
def report(report_id):
    found = _report_or_404(report_id)
    return _page("analysis/page.html", of_report(found), found.data, stored=found)


def _report_or_404(report_id):
    found = analysis.report(db.session, report_id)
    if found is None:
        abort(404, description=_("There is no stored analysis %(id)s.", id=report_id))
    return found


# ---- exports of the tables ----------------------------------------------------------------------------------
@bp.get("/analysis/export.csv", defaults={"fmt": "csv"})
@bp.get("/analysis/export.xlsx", defaults={"fmt": "xlsx"})
@roles_required(*ANALYSTS)
def export_tables(fmt):
    selection = from_request()
    data, error = _analysed(selection)
    if error:
        return _page("analysis/page.html", selection, error=error)
    return _tables_download(data, selection, fmt, f"analysis-{_name(selection)}")


@bp.get("/analysis/reports/<int:report_id>/export.csv", defaults={"fmt": "csv"})
@bp.get("/analysis/reports/<int:report_id>/export.xlsx", defaults={"fmt": "xlsx"})
@roles_required(*ANALYSTS)
def export_report(report_id, fmt):
    found = _report_or_404(report_id)
    return _tables_download(found.data, of_report(found), fmt, f"analysis-report-{found.id}-{_name(of_report(found))}")


def _tables_download(data, selection, fmt, name):
    """The tables, every label translated now (the stream runs after the request's context is gone)."""
    tables = [(str(t.title), [export.cell(h) for h in t.header], [[export.cell(v) for v in row] for row in t.rows])
              for t in all_tables(data, selection)]
    return _download(fmt, tables, name)


def _name(selection) -> str:
    """The period in a file name (no personal data): 2026Q4, or 2026-10-01_2026-11-15."""
    return selection.period.label.replace("..", "_")


# ---- the complaints behind a figure ---------------------------------------------------------------------------
def _complaints_query(selection):
    """(SELECT of the complaints, None) or (None, what is wrong)."""
    if selection.error:
        return None, selection.error
    try:
        return drilldown.query(dimensions(db.session), selection.period, selection.filters,
                               extra=[visible_to(me())]), None
    except FilterError as err:
        return None, filter_message(err)


@bp.get("/analysis/complaints")
@roles_required(*ANALYSTS)
def complaints():
    selection = from_request()
    stmt, error = _complaints_query(selection)
    found = drilldown.page(db.session, stmt, page_arg()) if stmt is not None else None
    return _complaints_page(selection, found, error)


def _complaints_page(selection, found, error):
    # A number links to the complaint only for a reader who may open it (a process owner analyses, reads none).
    return render_template("analysis/complaints.html", selection=selection, error=error, found=found,
                           dimension_titles=DIMENSION_TITLES, may_open=has_any(me(), READERS)), \
        422 if error else 200


@bp.get("/analysis/complaints.csv", defaults={"fmt": "csv"})
@bp.get("/analysis/complaints.xlsx", defaults={"fmt": "xlsx"})
@roles_required(*ANALYSTS)
def export_complaints(fmt):
    selection = from_request()
    stmt, error = _complaints_query(selection)
    if error:
        return _complaints_page(selection, None, error)
    header = [_("Complaint"), _("Received"), _("Category"), _("Product line"), _("Channel"), _("Status"), _("Outcome")]
    rows = _complaint_rows(current_app._get_current_object(), stmt, RowLabels())
    return _download(fmt, [(_("Complaints"), header, rows)], f"analysis-complaints-{_name(selection)}")


def _complaint_rows(app, stmt, labels):
    """The complaints' cells, read in batches in an app context of the stream's own."""
    with app.app_context():
        for row in drilldown.stream(db.session, stmt):
            yield labels.cells(row)


class RowLabels:
    """The labels a complaint row is exported with, worked out in the request (its language, the
    vocabularies in force) so that the stream needs no request context."""

    def __init__(self):
        dims = dimensions(db.session)
        self.codes = {column: dict(_options(dims, column)) for column in ("category", "product_line")}
        self.not_coded = _("%(value)s (not coded)")          # formatted per value below
        self.channel = {code: str(channel_label(code)) for code in CHANNELS}
        self.status = {code: str(status_label(code, "complaint")) for code in ("open", "closed")}
        self.outcome = {code: str(outcome_label(code)) for code in OUTCOME_LABELS}

    def code(self, column, value):
        if value in (None, ""):
            return "—"
        return str(self.codes[column].get(value) or self.not_coded % {"value": value})

    def cells(self, row) -> list:
        return [row.number, row.received_at, self.code("category", row.category),
                self.code("product_line", row.product_line), self.channel.get(row.channel, row.channel),
                self.status.get(row.status, row.status), self.outcome.get(row.outcome, row.outcome or "—")]

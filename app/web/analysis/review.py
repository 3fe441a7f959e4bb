"""Starting the quarterly review of the period shown (management, C-5.4): the scheduler starts each
quarter's review itself; this is for any other period, or a quarter whose review was not started."""
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from ... import quarterly
from ...errors import AppError
from ...extensions import db
from ...permissions import REVIEW_STARTERS
from ..common import roles_required, runtime
from ..ui import error_message, me
from . import bp
from .selection import from_request


@bp.post("/analysis/review")
@roles_required(*REVIEW_STARTERS)
def start_review():
    """Start the review of the period in the query string (the page's own; its filters do not apply:
    a review covers every complaint of its period)."""
    selection = from_request()
    back = url_for("analysis.page", **request.args)
    if selection.error:
        flash(selection.error, "error")
        return redirect(back)
    try:
        quarterly.start_review(runtime(), selection.period, me().username)
    except AppError as err:
        db.session.rollback()
        if err.code == quarterly.REVIEW_EXISTS:
            flash(_("The quarterly review of %(label)s has already been started.", label=selection.period.label),
                  "error")
        elif err.code == quarterly.PERIOD_NOT_OVER:
            flash(_("The review of %(label)s can start once the period has ended.", label=selection.period.label),
                  "error")
        else:
            flash(error_message(err), "error")
    else:
        flash(_("The quarterly review of %(label)s has started: its analysis is attached and the review meeting is "
                "in management's queue.", label=selection.period.label), "success")
    return redirect(back)

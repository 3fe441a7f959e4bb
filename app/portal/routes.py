"""The customer's pages. Every route is public in the permission sense (app/permissions.py): the
portal checks its own cookie (access.py) instead of a staff login. Every change goes through the
runtime's customer verbs, or for the survey is written here, and is audited as the customer."""
from functools import wraps

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError

from .. import audit, customer_requests, portal_links
from ..complaints import mask_name, mask_phone
from ..errors import AppError, Conflict, InvalidData
from ..extensions import db
from ..forms import drop_inapplicable, validate
from ..models import Complaint, SurveyResponse
from ..permissions import public
from ..timeutil import utcnow
from ..web import formrender
from ..web.ui import fmt_datetime
from . import access, bp
from ..engine.runtime import CUSTOMER
from .page import Case

REASON_MAX = customer_requests.REASON_MAX


# ---- plumbing -------------------------------------------------------------------------------------------
def customer_page(view):
    """A portal route: public to the permission check, answered in the customer's language."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        with force_locale(access.locale()):
            return view(*args, **kwargs)
    return public(wrapped)


def needs_link(view):
    """The view gets the customer's Case; without a valid cookie, a page saying how to get in."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        visit = access.visit()
        if visit.state != "ok":
            return no_access(visit.state)
        return view(Case(visit.complaint), *args, **kwargs)
    return wrapped


def runtime():
    return current_app.extensions["runtime"]


def lang() -> str:
    return access.language()


def render(template, status=200, **context):
    return render_template(template, **context), status


def problem(reason, status, **context):
    """A page saying what went wrong and what to do; nothing was changed."""
    return render("portal/problem.html", status, reason=reason, **context)


def is_portal_path(path: str) -> bool:
    return path == "/my" or path.startswith("/my/")


def problem_outside(reason, status):
    """The problem page for a request under /my/ that no portal view answers (an address no route matches, input
    the app's guard refused before any view): in the customer's language, with the context the portal's views get."""
    with force_locale(access.locale()):
        return problem(reason, status, **portal_context())


def refused(err, too_late):
    """The page for a runtime verb's refusal (it rolled its change back): `too_late` names what a
    Conflict means here, unless it was only a concurrent change."""
    db.session.rollback()
    if isinstance(err, Conflict):
        return problem("busy" if err.code == "concurrent_change" else too_late, 409)
    return problem("not_possible", 403)


def done(what, **context):
    return render("portal/done.html", what=what, **context)


def no_access(state):
    response = current_app.make_response(problem("expired_link" if state == "expired" else "no_access",
                                                 410 if state == "expired" else 403))
    return access.clear_cookie(response) if state in ("bad", "expired") else response


@bp.context_processor
def portal_context():
    return {"when": fmt_datetime, "portal_lang": lang(), "hotline": current_app.config["SERVICE_HOTLINE"],
            "company": current_app.config["COMPANY_NAME"], "reason_max": REASON_MAX,
            "form_title": lambda schema: formrender.titles(schema, lang())[0],
            "form_help": lambda schema: formrender.describe(schema, lang())}


@bp.after_request
def private_headers(response):
    """The page's address and content go nowhere else: no Referer, no search engine."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.errorhandler(CSRFError)
def csrf_refused(_err):
    with force_locale(access.locale()):
        return problem("form_expired", 400)


# ---- coming in by a link -----------------------------------------------------------------------------
@bp.route("/<token>")
@customer_page
def enter(token):
    """The link in a message: remember it in the cookie and show the page without the token in the
    address. Bad links are counted per address; over the limit the bad ones get a 429 for a while (a
    valid link still opens: customers behind one address are not locked out by someone guessing)."""
    link, state = portal_links.find(db.session, token)
    until = access.refused_until() if state != "ok" else None
    if until is not None:
        response = current_app.make_response(problem("too_many", 429, until=until))
        response.headers["Retry-After"] = str(max(int((until - utcnow()).total_seconds()), 1))
        return response
    if state != "ok":
        complaint = db.session.get(Complaint, link.complaint_id) if link is not None else None
        access.count_bad_link()
        with force_locale(access.locale(complaint)):
            return problem("expired_link" if state == "expired" else "unknown_link",
                           410 if state == "expired" else 404)
    link.last_used_at = utcnow()
    db.session.commit()
    return access.set_cookie(redirect(url_for("portal.home")), link_id=link.id)


@bp.route("/language/<code>")
@customer_page
def language(code):
    response = redirect(url_for("portal.home"))
    return access.set_cookie(response, lang=code) if code in access.LANGUAGES else response


@bp.route("/leave", methods=["POST"])
@customer_page
def leave():
    """Forget the link on this device (e.g. a shared phone)."""
    return access.clear_cookie(current_app.make_response(done("left")))


# ---- the page -----------------------------------------------------------------------------------------
@bp.route("/")
@customer_page
@needs_link
def home(case):
    complaint = case.complaint
    return render("portal/home.html", case=case, complaint=complaint, now=utcnow(),
                  name=mask_name(complaint.customer_name), phone=mask_phone(complaint.phone),
                  review=case.review(utcnow()))


# ---- answering a task of the procedure -------------------------------------------------------------------
@bp.route("/answer/<task_id>", methods=["GET", "POST"])
@customer_page
@needs_link
def answer(case, task_id):
    found = case.customer_task(task_id)
    if found is None:
        return problem("already_recorded", 409) if case.answered_task(task_id) else problem("not_found", 404)
    errors, raw, status = {}, None, 200
    if request.method == "POST":
        data, raw = formrender.coerce(found.schema, request.form)
        try:
            runtime().complete_for_customer(found.task.id, data)
        except InvalidData as err:
            db.session.rollback()
            errors, status = formrender.explain(found.schema, err.fields) or {"_": _("Please check your answers.")}, 422
        except AppError as err:
            return refused(err, "already_recorded")
        else:
            return done("answered", summary=formrender.describe_data(found.shown, drop_inapplicable(found.schema, data),
                                                                     lang()))
    return render("portal/form.html", status, action=url_for("portal.answer", task_id=task_id),
                  form=found.shown, fields=formrender.fields(found.shown, raw, errors, lang()),
                  errors=errors, due=found.task.due_at, testid="answer-form")


# ---- the satisfaction survey (C-5.1) -------------------------------------------------------------------
@bp.route("/survey", methods=["GET", "POST"])
@customer_page
@needs_link
def survey(case):
    offered = case.survey
    if offered is None:
        return problem("not_found", 404)
    if offered.answered:
        return problem("survey_answered", 409)
    errors, raw, status = {}, None, 200
    if request.method == "POST":
        data, raw = formrender.coerce(offered.schema, request.form)
        try:
            save_survey(case, offered, validate(offered.schema, data))
        except InvalidData as err:
            errors, status = formrender.explain(offered.schema, err.fields), 422
        except IntegrityError:                 # a second submit won the race
            db.session.rollback()
            return problem("survey_answered", 409)
        else:
            return done("survey")
    return render("portal/form.html", status, action=url_for("portal.survey"), form=offered.schema,
                  fields=formrender.fields(offered.schema, raw, errors, lang()), errors=errors,
                  testid="survey-form")


def save_survey(case, offered, answers):
    """One response per complaint (a unique row): the answers as given, audited without them."""
    db.session.add(SurveyResponse(complaint_id=case.complaint.id, form=offered.form, answers=answers))
    audit.record(db.session, CUSTOMER, "survey_answered", instance_id=offered.message.instance_id,
                 business_key=case.complaint.number, data={"form": offered.form})
    db.session.commit()


# ---- withdrawing the complaint --------------------------------------------------------------------------
@bp.route("/withdraw", methods=["GET", "POST"])
@customer_page
@needs_link
def withdraw(case):
    if not case.may_withdraw:
        return problem("withdrawn" if case.status == "withdrawn" else "too_late_to_withdraw", 409)
    reason, error = posted_reason(required=False)
    if request.method == "POST" and error is None:
        try:
            customer_requests.withdraw(runtime(), db.session, case.complaint, reason, customer_requests.BY_CUSTOMER,
                                       actor=CUSTOMER)
        except AppError as err:
            return refused(err, "too_late_to_withdraw")
        return done("withdrawn")
    return render("portal/withdraw.html", 422 if error else 200, reason=reason, error=error)


def posted_reason(required):
    """(the reason typed, an error message or None); a GET has neither."""
    if request.method != "POST":
        return "", None
    reason, problem = customer_requests.clean_reason(request.form.get("reason", ""), required)
    if problem == "required":
        return reason, _("Please tell us why.")
    if problem == "too_long":
        return reason, _("At most %(num)d characters.", num=REASON_MAX)
    return reason, None


# ---- asking for a review (核查) of the decision ------------------------------------------------------------
@bp.route("/review", methods=["GET", "POST"])
@customer_page
@needs_link
def review(case):
    state = case.review(utcnow())
    if state != "open":
        return problem({"requested": "review_requested", "ended": "review_ended"}.get(state, "not_found"),
                       404 if state is None else 409, until=case.complaint.review_until)
    reason, error = posted_reason(required=True)
    if request.method == "POST" and error is None:
        return request_review(case, reason)
    return render("portal/review.html", 422 if error else 200, reason=reason, error=error,
                  until=case.complaint.review_until)


def request_review(case, reason):
    try:
        customer_requests.request_review(runtime(), db.session, case.complaint, reason,
                                         customer_requests.BY_CUSTOMER, actor=CUSTOMER)
    except Conflict as err:
        db.session.rollback()
        return problem(REVIEW_PROBLEMS.get(err.code, "busy" if err.code == "concurrent_change" else "not_possible"),
                       409, until=case.complaint.review_until)
    except AppError as err:
        return refused(err, "not_possible")
    db.session.commit()
    return done("review")


REVIEW_PROBLEMS = {"review_requested": "review_requested", "review_ended": "review_ended",
                   "review_not_modelled": "review_by_phone"}

"""Register a complaint, find one, a complaint with its deadlines, timeline and diagram, and its case file
(C-3.5.1, from app.casefile.case_file) as a printable page and as a JSON download. Personal data is shown
as complaints.personal_view allows: in full only for the roles that need it, and every full view audited."""
import json
import tempfile
import zipfile

from flask import Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ... import case_events, complaints, customer_requests
from ...avoidance import facts_of
from ...api.schemas import ComplaintOut
from ...casefile import case_file, deliveries_by_message
from ...errors import AppError, InvalidData
from ...forms import validate
from ...extensions import db
from ...models import AuditEvent, Deadline, OutboxMessage, ProcessInstance
from ...evidence import files as evidence_files
from ...permissions import EVIDENCE_READERS, HANDLERS, NOTE_WRITERS, READERS, REGISTRARS
from ...timeutil import utcnow
from .. import diagram, formrender
from ..common import (attachment, colleagues, display_names, readable_or_abort, roles_required, runtime,
                      task_read_refusal)
from ..evidence_ui import case_of_complaint, listing, read_refusal, size_text, store as evidence_store
from ..timeline import HIDDEN_BY_DEFAULT, ROUTINE, timeline
from ..ui import (error_message, fmt_datetime, forms_of_version, forms_of_versions, has_any, lang, me, message_label,
                  pii_roles, step_label)
from . import bp
from .forms import intake_errors, intake_schema
from .marks import complaint_diagram




# ---- register a complaint ------------------------------------------------------------------------------
@bp.route("/complaints/new", methods=["GET", "POST"])
@roles_required(*REGISTRARS)
def register():
    schema = intake_schema()
    raw, errors, status = {"received_at": formrender.iso_to_local(utcnow())}, {}, 200
    if request.method == "POST":
        data, raw = formrender.coerce(schema, request.form)
        try:
            complaint, _change = complaints.register(runtime(), db.session, data, me(),
                                                     current_app.config["COMPLAINT_PROCESS"],
                                                     current_app.config["COMPLAINT_NUMBER_FORMAT"])
        except InvalidData as err:
            db.session.rollback()
            errors, status = intake_errors(schema, err.fields), 422
        except AppError as err:
            db.session.rollback()
            flash(error_message(err), "error")
            status = err.status
        else:
            _flash_registered(complaint)
            return redirect(url_for("complaints.complaint", number=complaint.number))
    by_name = {f["name"]: f for f in formrender.fields(schema, raw, errors, None)}
    return render_template("complaints/register.html", by=by_name, errors=errors), status


def _flash_registered(complaint):
    session["registered"] = complaint.number
    flash(_("Complaint %(number)s is registered; its initial review is in the queue.",
            number=complaint.number), "success")
    for deadline in complaints.missed_at_registration(db.session, complaint):
        flash(_("The time received is already past the deadline “%(name)s” (due %(time)s): it is "
                "recorded as missed.", name=deadline.name, time=fmt_datetime(deadline.due_at)), "error")


# ---- a complaint (the list and its search: listing.py) -----------------------------------------------------
@bp.get("/complaints/<number>")
@roles_required(*READERS)
def complaint(number):
    user = me()
    found = readable_or_abort(number)
    person, full = complaints.personal_view(db.session, user, found, {k: getattr(found, k) for k in complaints.PERSONAL},
                                            pii_roles())
    tasks = complaints.tasks_of(db.session, found)
    # The complaint's main instance and the processes beside it (a call, a review): their forms, and what 回避
    # reads of each (app.avoidance.FACTS) for the tasks the page links.
    instances = db.session.execute(select(ProcessInstance.id, ProcessInstance.business_key, ProcessInstance.process_id,
                                          ProcessInstance.version_id)
                                   .where(ProcessInstance.business_key == found.number)).all()
    forms = forms_of_versions([i.version_id for i in instances])
    deadlines = db.session.execute(select(Deadline).where(Deadline.instance_id.in_(complaints.instances_of(found)))
                                   .order_by(Deadline.due_at, Deadline.id)).scalars().all()
    show_all = request.args.get("all") == "1"
    messages = customer_messages(db.session, found)
    events = db.session.execute(select(AuditEvent).where(AuditEvent.business_key == found.number)
                                .order_by(AuditEvent.id)).scalars().all()
    folded = set() if show_all else HIDDEN_BY_DEFAULT | ROUTINE
    shown = [e for e in events if e.action not in folded]
    hidden = len(events) - len(shown)
    supervisor = runtime().is_supervisor(user)
    open_tasks = [t for t in tasks if t.state == "open"]
    return render_template(
        "complaints/complaint.html", c=found, person=person, full_personal=full, forms=forms,
        diagram=complaint_diagram(found),
        open_tasks=open_tasks, tasks=tasks, openable=openable_tasks(user, found, tasks, supervisor, instances),
        deadlines=deadlines, messages=messages,
        entries=timeline(shown, forms),
        hidden=hidden, show_all=show_all, names=display_names({e.actor for e in events}),
        just_registered=session.pop("registered", None) == found.number, is_supervisor=supervisor,
        takes_requests=has_any(user, REGISTRARS), may_withdraw=customer_requests.may_withdraw(db.session, found),
        review_state=customer_requests.review_state(db.session, found),
        actions=[(e.name, formrender.titles(e.schema, lang())[0]) for e in case_events.available(db.session, user, found)],
        colleagues={t.id: colleagues(t) for t in open_tasks} if supervisor else {},
        evidence=listing(evidence_files.files_of(db.session, found.number), user),
        may_attach=has_any(user, HANDLERS), may_note=has_any(user, NOTE_WRITERS),
        max_mb=current_app.config["EVIDENCE_MAX_BYTES"] // (1024 * 1024))


def openable_tasks(user, found, tasks, supervisor, instances) -> set:
    """The ids of the tasks whose page `user` may open (the task page's own check), the only ones linked. What
    回避 reads of each instance comes from the rows the page read (`instances`) and the complaint, not a query."""
    facts = {i.id: facts_of(i, found) for i in instances}
    return {t.id for t in tasks if not task_read_refusal(user, t, supervisor, facts.get(t.instance_id))}


def customer_messages(session, found) -> list[dict]:
    """The messages to the customer, oldest first, each with its deliveries (one per channel)."""
    rows = session.execute(select(OutboxMessage).where(OutboxMessage.business_key == found.number)
                           .order_by(OutboxMessage.id)).scalars().all()
    by_message = deliveries_by_message(session, rows)
    return [{"message": m, "deliveries": by_message.get(m.id, [])} for m in rows]


# ---- what the customer asked by phone: withdrawal, review (核查) -----------------------------------------
REQUESTS = {"withdraw": {"required": False, "send": customer_requests.withdraw},
            "review": {"required": True, "send": customer_requests.request_review}}


def request_schema(kind) -> dict:
    """The one-field form of a request taken by phone, described like a task form for the same macros."""
    reason = {"type": "string", "maxLength": customer_requests.REASON_MAX, "x-widget": "textarea",
              "title": _("Reason the customer gave") if kind == "review" else _("Reason the customer gave (optional)")}
    return {"type": "object", "properties": {"reason": reason},
            "required": ["reason"] if REQUESTS[kind]["required"] else []}


def request_open(kind, found) -> bool:
    if kind == "withdraw":
        return customer_requests.may_withdraw(db.session, found)
    return customer_requests.review_state(db.session, found) == "open"


@bp.route("/complaints/<number>/withdraw", methods=["GET", "POST"], defaults={"kind": "withdraw"},
          endpoint="withdraw")
@bp.route("/complaints/<number>/review-request", methods=["GET", "POST"], defaults={"kind": "review"},
          endpoint="review_request")
@roles_required(*REGISTRARS)
def customer_request(number, kind):
    """Customer service records what the customer asked by phone or letter; the diagrams take it from
    there exactly as when the customer asks on their own page (app.customer_requests)."""
    found = readable_or_abort(number)
    schema = request_schema(kind)
    raw, errors, status = {}, {}, 200
    if request.method == "POST":
        data, raw = formrender.coerce(schema, request.form)
        try:
            data = validate(schema, data)
            REQUESTS[kind]["send"](runtime(), db.session, found, (data.get("reason") or "").strip(),
                                   customer_requests.BY_PHONE, actor=me().username)
            db.session.commit()
        except InvalidData as err:
            errors, status = formrender.explain(schema, err.fields), 422
        except AppError as err:
            db.session.rollback()
            flash(error_message(err), "error")
            return redirect(url_for("complaints.complaint", number=found.number))
        else:
            flash(_("The withdrawal is recorded: the handling has ended and the customer is told.") if kind == "withdraw"
                  else _("The review request is recorded and the review has started."), "success")
            return redirect(url_for("complaints.complaint", number=found.number))
    elif not request_open(kind, found):
        flash(_("This complaint can no longer be withdrawn: it is closed or its handling has ended. Nothing was "
                "changed.") if kind == "withdraw" else _("A review cannot be requested for this complaint now."),
              "error")
        return redirect(url_for("complaints.complaint", number=found.number))
    return render_template("complaints/customer_request.html", c=found, kind=kind, errors=errors,
                           fields=formrender.fields(schema, raw, errors, lang())), status


# ---- what a handler tells the procedure besides a task: more time, an external appraisal -----------------
@bp.route("/complaints/<number>/actions/<name>", methods=["GET", "POST"])
@roles_required(*HANDLERS)
def case_action(number, name):
    """One of the actions the complaint's diagram waits for now (app.case_events): its form, and sending it."""
    found = readable_or_abort(number)
    try:
        event = case_events.find(db.session, me(), found, name)
    except AppError as err:
        flash(error_message(err), "error")
        return redirect(url_for("complaints.complaint", number=found.number))
    raw, errors, status = {}, {}, 200
    if request.method == "POST":
        data, raw = formrender.coerce(event.schema, request.form)
        try:
            case_events.send(runtime(), db.session, me(), found, name, data)
        except InvalidData as err:
            errors, status = formrender.explain(event.schema, err.fields), 422
        except AppError as err:
            db.session.rollback()
            flash(error_message(err), "error")
            return redirect(url_for("complaints.complaint", number=found.number))
        else:
            flash(_("Done: %(action)s.", action=formrender.titles(event.schema, lang())[0]), "success")
            return redirect(url_for("complaints.complaint", number=found.number))
    title, subtitle = formrender.titles(event.schema, lang())
    return render_template("complaints/case_action.html", c=found, title=title, subtitle=subtitle,
                           description=formrender.describe(event.schema, lang()), errors=errors,
                           fields=formrender.fields(event.schema, raw, errors, lang())), status


# ---- the case file -------------------------------------------------------------------------------------
def _case_file(found) -> dict:
    values, full = complaints.personal_view(db.session, me(), found, ComplaintOut().dump(found), pii_roles())
    return case_file(db.session, found, {**values, "personal_data": "full" if full else "masked"})


@bp.get("/complaints/<number>/case-file.json")
@roles_required(*READERS)
def case_file_json(number):
    found = readable_or_abort(number)
    body = json.dumps(_case_file(found), ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": attachment(f"case-file-{found.number}.json")})


@bp.get("/complaints/<number>/case-file")
@roles_required(*READERS)
def case_file_page(number):
    found = readable_or_abort(number)
    record = _case_file(found)
    forms, names = {}, {}
    for version in diagram.versions_of_complaint(found.number, found.instance_id):
        forms.update(forms_of_version(version.id))
        names.update(diagram.of_version(version)["elements"])
    label = lambda eid: step_label(eid, (names.get(eid) or {}).get("name"), forms) if eid else "—"  # noqa: E731
    decisions = [{**d, "label": step_label(d["element_id"], d["step"], forms),
                  "rows": formrender.describe_data(forms.get(d["element_id"]) or {}, d["data"] or {}, lang())}
                 for d in record["decisions"]]
    deadlines = [{**d, "task_label": label(d["task"])} for d in record["deadlines"]]
    actors = {e["actor"] for e in record["audit"]} | {d["completed_by"] for d in record["decisions"]} | \
        {f["uploaded_by"] for f in record["evidence"]}
    return render_template("complaints/case_file.html", c=found, record=record, decisions=decisions,
                           deadlines=deadlines, people=display_names(actors), label=label, now=utcnow(),
                           message_label=message_label, size_text=size_text,
                           may_open_evidence=has_any(me(), EVIDENCE_READERS))


@bp.get("/complaints/<number>/case-file.zip")
@roles_required(*EVIDENCE_READERS)
def case_file_zip(number):
    """The case file (as the JSON download) with every evidence file, each checked against its hash and
    its hand-out recorded; built in a temporary file, so memory stays small whatever the files weigh."""
    found = readable_or_abort(number)
    record = _case_file(found)
    rows = {f.id: f for f in evidence_files.files_of(db.session, found.number)}
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("case-file.json", json.dumps(record, ensure_ascii=False, indent=2))
        for entry in record["evidence"]:
            try:
                content = evidence_files.read(evidence_store(), rows[entry["id"]])
            except AppError as err:
                if err.status == 503:
                    abort(503, description=read_refusal(err))
                abort(409, description=_("The file %(name)s of this case is missing or does not match its recorded "
                                         "hash; the case file cannot be exported. Tell an administrator.",
                                         name=entry["name"]))
            archive.writestr(f"evidence/{entry['id']}-{entry['name']}", content)
            evidence_files.record_view(db.session, me().username, rows[entry["id"]], case_of_complaint(found))
    db.session.commit()
    out.seek(0)
    return Response(out, mimetype="application/zip",
                    headers={"Content-Disposition": attachment(f"case-file-{found.number}.zip"),
                             "Cache-Control": "private, no-store"})

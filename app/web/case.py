"""A complaint's case file (C-3.5.1) from app.casefile.case_file: a printable page and the same dict as
a JSON download, with personal data as the complaint page shows it (complaints.personal_view: in full
only for the roles that need it, and every full view audited)."""
import json

from flask import Response, render_template
from sqlalchemy import select

from .. import complaints
from ..api.schemas import ComplaintOut
from ..casefile import case_file
from ..extensions import db
from ..models import ProcessInstance, User
from ..permissions import READERS
from ..timeutil import utcnow
from . import bp, diagram, formrender
from .procedure import attachment
from .routes import readable_or_abort, roles_required
from .ui import forms_of_version, lang, me, message_label, pii_roles, step_label


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
    inst = db.session.get(ProcessInstance, found.instance_id)
    forms = forms_of_version(inst.version_id)
    names = diagram.of_version(inst.version)["elements"]
    label = lambda eid: step_label(eid, (names.get(eid) or {}).get("name"), forms) if eid else "—"  # noqa: E731
    decisions = [{**d, "label": step_label(d["element_id"], d["step"], forms),
                  "rows": formrender.describe_data(forms.get(d["element_id"]) or {}, d["data"] or {}, lang())}
                 for d in record["decisions"]]
    deadlines = [{**d, "task_label": label(d["task"])} for d in record["deadlines"]]
    actors = {e["actor"] for e in record["audit"]} | {d["completed_by"] for d in record["decisions"]}
    people = dict(db.session.execute(select(User.username, User.display_name).where(
        User.username.in_(sorted(a for a in actors if a)))).all())
    return render_template("web/case_file.html", c=found, record=record, decisions=decisions,
                           deadlines=deadlines, people=people, label=label, now=utcnow(),
                           message_label=message_label)

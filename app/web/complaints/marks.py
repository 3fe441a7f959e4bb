"""A complaint on its version's diagram, for the complaint page: the elements it went through, where it
is now, its deadlines missed and still running, visit counts and the sequence flows taken, and where the
diagram opens — from the element_visit, human_task and deadline rows, never the workflow."""
from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...extensions import db
from ...models import Deadline, ElementVisit, HumanTask
from .. import diagram


def complaint_diagram(complaint) -> dict:
    """The complaint's own version's diagram and what to mark on it ({} without a process instance)."""
    version = diagram.version_row(complaint.instance_id)
    if version is None:
        return {}
    parsed = diagram.of_version(version)
    visits = db.session.execute(select(ElementVisit).where(ElementVisit.instance_id == complaint.instance_id)
                                .order_by(ElementVisit.id)).scalars().all()
    current = set(db.session.execute(select(HumanTask.element_id).where(
        HumanTask.instance_id == complaint.instance_id, HumanTask.state == "open")).scalars())
    walked = diagram.path(parsed, visits, current)
    opens_on = focus(parsed, walked["steps"], current)
    current |= diagram.containing_calls(parsed, current)
    deadlines = db.session.execute(select(Deadline.element_id, Deadline.state).where(
        Deadline.instance_id == complaint.instance_id)).all()
    missed = sorted({e for e, state in deadlines if state == "missed"})
    waiting = sorted({e for e, state in deadlines if state == "open"})
    known = parsed["elements"]
    marks = {"done": sorted(e for e in walked["counts"] if e in known),
             "current": sorted(e for e in current if e in known),
             "missed": [e for e in missed if e in known], "deadline_open": [e for e in waiting if e in known],
             "taken": sorted(f for f in walked["taken"] if f in parsed["flows"]),
             "counts": {e: n for e, n in walked["counts"].items() if e in known and n > 1}}
    data = {"mode": "complaint", "marks": marks, "focus": opens_on,
            "labels": {"whole": _("Whole diagram"), "whole_title": _("Show the whole diagram"),
                       "focus": _("Where it ended") if complaint.status == "closed" else _("Current step"),
                       "focus_title": _("Back to where the complaint is now")},
            "xml_url": url_for("procedure.procedure_file", process_id=version.process_id, number=version.version,
                               file_name=parsed["main_file"], inline=1)}
    return {"version": version, "data": data, "steps": walked["steps"], "marks": marks,
            "procedure_url": url_for("procedure.procedure_version", process_id=version.process_id,
                                     number=version.version)}


def focus(parsed, steps, open_ids) -> list:
    """The elements the diagram opens on, zoomed in so that their names can be read: the steps it is at
    now (its open tasks, or the call activities around them when those are drawn in another file), else
    the end it reached or, still running with no task open, the last element it passed. Only elements
    of the drawn file; [] opens the whole diagram."""
    elements, drawn = parsed["elements"], parsed["main_file"]
    for here in (open_ids, diagram.containing_calls(parsed, open_ids)):
        shown = sorted(e for e in here if elements.get(e, {}).get("file") == drawn)
        if shown:
            return shown
    passed = [s["element_id"] for s in steps if elements.get(s["element_id"], {}).get("file") == drawn]
    ends = [e for e in passed if elements[e]["kind"] == "endEvent"]
    return (ends or passed)[-1:]

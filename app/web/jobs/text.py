"""A job as the pages say it, in the page's language: its title, its state, each item's outcome."""
from flask_babel import gettext as _, lazy_gettext as _l, ngettext

from ...jobs import list_export, migration
from ...jobs.kinds import ALREADY, DONE, FAILED, REFUSED
from ..migration_text import reason_text

STATES = {"queued": _l("Waiting to start"), "running": _l("Running"), "done": _l("Done"), "failed": _l("Failed"),
          "cancelled": _l("Cancelled")}
FORMATS = {"csv": "CSV", "xlsx": "Excel"}


def title(job) -> str:
    p = job.params
    if job.kind == migration.KIND:
        if p.get("dry_run"):
            return _("Check which complaints can move to version %(num)s of %(process)s", num=p["version"],
                     process=p["process_id"])
        return _("Move complaints to version %(num)s of %(process)s", num=p["version"], process=p["process_id"])
    if job.kind == list_export.KIND:
        return _("Export of the complaint list (%(format)s)", format=FORMATS.get(p.get("format"), p.get("format")))
    return job.kind


def state(job) -> str:
    return str(STATES.get(job.state, job.state))


def summary(job, outcomes: dict) -> str:
    """The counts beside the progress bar."""
    done = _("%(done)d of %(total)d done", done=job.done_count, total=job.total)
    if job.kind != migration.KIND:
        return done
    dry = job.params.get("dry_run")
    parts = [ngettext("%(num)d can move", "%(num)d can move", outcomes[DONE]) if dry else
             ngettext("%(num)d moved", "%(num)d moved", outcomes[DONE]),
             _("%(num)d already there", num=outcomes[ALREADY]),
             ngettext("%(num)d cannot move", "%(num)d cannot move", outcomes[REFUSED]) if dry else
             ngettext("%(num)d refused", "%(num)d refused", outcomes[REFUSED])]
    if outcomes[FAILED]:
        parts.append(ngettext("%(num)d failed", "%(num)d failed", outcomes[FAILED]))
    return f"{done} · {' · '.join(parts)}"


def outcome(job, item) -> dict:
    """{ok: True/False/None, text, reasons} of one item of a migration's result list."""
    dry, number = job.params.get("dry_run"), job.params.get("version")
    if item.outcome == DONE:
        return {"ok": True, "text": _("can move") if dry else _("moved to version %(num)s", num=number), "reasons": []}
    if item.outcome == ALREADY:
        return {"ok": True, "text": _("already on version %(num)s", num=number), "reasons": []}
    if item.outcome == REFUSED:
        return {"ok": False, "text": _("cannot move") if dry else _("not moved"),
                "reasons": [reason_text(r) for r in (item.message or "").split("\n") if r]}
    if item.outcome == FAILED:
        return {"ok": False, "text": _("failed: an unexpected error (%(error)s); see the log", error=item.message),
                "reasons": []}
    waiting = job.state in ("queued", "running")
    return {"ok": None, "text": _("waiting") if waiting else _("not done"), "reasons": []}

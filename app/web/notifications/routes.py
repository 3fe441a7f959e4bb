"""The notifications page and the digest settings."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ... import accounts, contact_rules, notifications
from ...extensions import db
from ...permissions import WORKERS
from ...timeutil import utcnow
from ..common import roles_required, runtime
from ..ui import forms_of_instances, me
from . import bp


@bp.get("/notifications")
@roles_required(*WORKERS)
def page():
    """The lists as of now; what is new is new since the last look, and this look is the last from now on."""
    user, now = me(), utcnow()
    last_seen, lists = user.notifications_seen_at, _lists(user, now)
    notifications.mark_seen(db.session, user, now)
    db.session.commit()
    return _render(user, lists, last_seen, {"email": user.email or "", "digest": user.digest})


def _lists(user, now) -> dict:
    """What the page lists as of `now`: the found tasks, their forms (for the steps' names) and whether the
    user supervises (and so also sees the overdue tasks nobody holds and those nobody may work)."""
    supervisor = runtime().is_supervisor(user)
    found = notifications.digest(db.session, user, now, since=user.notifications_seen_at, supervisor=supervisor,
                                 independent=current_app.config["INDEPENDENT_PROCESSES"])
    everything = found.new + found.due_soon + found.overdue + found.unassigned_overdue + found.unstaffed
    return {"found": found, "forms": forms_of_instances({t.instance_id for t in everything}), "supervisor": supervisor}


def _render(user, lists, last_seen, settings_form, error=None):
    """The page; `settings_form` ({"email", "digest"}) fills the digest form, `error` is said beside its address."""
    return render_template("notifications/page.html", **lists, last_seen=last_seen, user=user,
                           settings_form=settings_form, error=error), 422 if error else 200


@bp.get("/notifications/settings")
@roles_required(*WORKERS)
def settings_page():
    """Where a refused save was shown (e.g. the language switch's way back to it): the page's settings."""
    return redirect(url_for("notifications.page", _anchor="settings"))


@bp.post("/notifications/settings")
@roles_required(*WORKERS)
def settings():
    """Save the digest settings; input that is refused is shown again as typed, with why, and nothing is saved
    (nor does the page shown again count as a look)."""
    user = me()
    email = (request.form.get("email") or "").strip()
    wants_digest = request.form.get("digest") == "on"
    error = _settings_problem(email, wants_digest)
    if error:
        typed = {"email": request.form.get("email") or "", "digest": wants_digest}
        return _render(user, _lists(user, utcnow()), user.notifications_seen_at, typed, error)
    accounts.set_email(db.session, user.username, user, email, wants_digest)
    db.session.commit()
    flash(_("Saved: the daily digest goes to %(email)s on working mornings.", email=user.email) if wants_digest
          else _("Saved: no daily digest."), "success")
    return redirect(url_for("notifications.page", _anchor="settings"))


def _settings_problem(email: str, wants_digest: bool):
    """Why the digest settings cannot be saved, in the page's language, or None."""
    if email and contact_rules.email_problem(email):
        return _("Not a valid e-mail address. Nothing was changed.")
    if wants_digest and not email:
        return _("Give the address the digest goes to. Nothing was changed.")
    return None

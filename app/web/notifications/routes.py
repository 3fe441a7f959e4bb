"""The notifications page and the digest settings."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ... import contact_rules, notifications
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
    supervisor = runtime().is_supervisor(user)
    found = notifications.digest(db.session, user, now, since=user.notifications_seen_at, supervisor=supervisor,
                                 independent=current_app.config["INDEPENDENT_PROCESSES"])
    everything = found.new + found.due_soon + found.overdue + found.unassigned_overdue + found.unstaffed
    forms = forms_of_instances({t.instance_id for t in everything})
    last_seen = user.notifications_seen_at
    notifications.mark_seen(db.session, user, now)
    db.session.commit()
    return render_template("notifications/page.html", found=found, forms=forms, last_seen=last_seen, user=user,
                           supervisor=supervisor)


@bp.post("/notifications/settings")
@roles_required(*WORKERS)
def settings():
    user = me()
    email = (request.form.get("email") or "").strip()
    wants_digest = request.form.get("digest") == "on"
    if email and contact_rules.email_problem(email):
        flash(_("Not a valid e-mail address. Nothing was changed."), "error")
        return redirect(url_for("notifications.page", _anchor="settings"))
    if wants_digest and not email:
        flash(_("Give the address the digest goes to. Nothing was changed."), "error")
        return redirect(url_for("notifications.page", _anchor="settings"))
    user.email = contact_rules.stored_email(email) if email else None
    user.digest = wants_digest
    db.session.commit()
    flash(_("Saved: the daily digest goes to %(email)s on working mornings.", email=user.email) if wants_digest
          else _("Saved: no daily digest."), "success")
    return redirect(url_for("notifications.page", _anchor="settings"))

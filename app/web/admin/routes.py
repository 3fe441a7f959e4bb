"""The admin pages. Every change goes through app.accounts (audited there) and is committed here; a
generated password or a reset link is shown once, on the page that answers the POST, never in a URL, a
flash message or a log."""
from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ... import accounts
from ...extensions import db
from ...models import User
from ...passwords import Policy
from ...permissions import ADMINS
from ...timeutil import utcnow
from ..account_messages import account_message
from ..common import page_arg, roles_required
from ..ui import me
from . import bp

PER_PAGE = 50


def _user_or_404(user_id) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, description=_("There is no such user."))
    return user


def _details(form) -> dict:
    return {"display_name": form.get("display_name", ""), "roles": form.getlist("roles"),
            "email": form.get("email", "")}


@bp.get("/admin/users")
@roles_required(*ADMINS)
def users():
    term, role, state = (request.args.get(k, "").strip() for k in ("q", "role", "state"))
    query = accounts.users_query(current_app.config["ROLES"], utcnow(), term=term, role=role, state=state)
    total = db.session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    page = page_arg()
    rows = db.session.execute(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).scalars().all()
    return render_template("admin/users.html", rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PER_PAGE)), term=term, role=role, state=state,
                           states=accounts.STATES, now=utcnow())


@bp.route("/admin/users/new", methods=["GET", "POST"])
@roles_required(*ADMINS)
def new():
    error, form = None, request.form
    if request.method == "POST":
        try:
            user, password = accounts.create(db.session, me().username, Policy.from_config(current_app.config),
                                             current_app.config["ROLES"], username=form.get("username", ""),
                                             **_details(form))
        except accounts.AccountError as err:
            db.session.rollback()
            error = account_message(err)
        else:
            db.session.commit()
            return render_template("admin/secret.html", user=user, password=password, link=None)
    return render_template("admin/edit.html", user=None, form=form, error=error), 422 if error else 200


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(*ADMINS)
def edit(user_id):
    user, error = _user_or_404(user_id), None
    form = request.form if request.method == "POST" else \
        {"display_name": user.display_name, "email": user.email or "", "roles": sorted(user.roles)}
    if request.method == "POST":
        try:
            changed = accounts.update_details(db.session, me().username, user, current_app.config["ROLES"],
                                              **_details(request.form))
        except accounts.AccountError as err:
            db.session.rollback()
            error = account_message(err)
        else:
            db.session.commit()
            flash(_("Saved %(username)s.", username=user.username) if changed else
                  _("Nothing was changed: %(username)s is as it was.", username=user.username), "success")
            return redirect(url_for("admin.edit", user_id=user.id))
    return render_template("admin/edit.html", user=user, form=form, error=error, now=utcnow(),
                           tokens=accounts.api_token_count(db.session, user)), 422 if error else 200


@bp.post("/admin/users/<int:user_id>/enable", defaults={"action": "enable"})
@bp.post("/admin/users/<int:user_id>/disable", defaults={"action": "disable"})
@bp.post("/admin/users/<int:user_id>/unlock", defaults={"action": "unlock"})
@roles_required(*ADMINS)
def switch(user_id, action):
    user = _user_or_404(user_id)
    try:
        if action == "unlock":
            accounts.unlock(db.session, me().username, user)
        else:
            accounts.set_active(db.session, me().username, user, action == "enable")
    except accounts.AccountError as err:
        db.session.rollback()
        flash(account_message(err) + " " + _("Nothing was changed."), "error")
    else:
        db.session.commit()
        flash({"enable": _("%(username)s may log in again."),
               "disable": _("%(username)s is disabled: their sessions and API tokens stopped working."),
               "unlock": _("%(username)s is unlocked.")}[action] % {"username": user.username}, "success")
    return redirect(url_for("admin.edit", user_id=user.id))


@bp.post("/admin/users/<int:user_id>/password")
@roles_required(*ADMINS)
def password(user_id):
    """A generated password, or a one-time link for the user to set one: shown on this page only."""
    user, hours = _user_or_404(user_id), current_app.config["RESET_LINK_HOURS"]
    try:
        if request.form.get("method") == "link":
            token = accounts.reset_link_token(db.session, me().username, user, timedelta(hours=hours))
            link, password = _site_url(url_for("account.reset", token=token)), None
        else:
            link, password = None, accounts.reset_password(db.session, me().username, user)
    except accounts.AccountError as err:
        db.session.rollback()
        flash(account_message(err) + " " + _("Nothing was changed."), "error")
        return redirect(url_for("admin.edit", user_id=user.id))
    db.session.commit()
    return render_template("admin/secret.html", user=user, password=password, link=link, hours=hours)


def _site_url(path) -> str:
    """`path` on the site's public address (PUBLIC_BASE_URL), not on whatever Host this request named."""
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    return base.rstrip("/") + path


@bp.post("/admin/users/<int:user_id>/second-factor/reset")
@roles_required(*ADMINS)
def second_factor_reset(user_id):
    user = _user_or_404(user_id)
    accounts.reset_second_factor(db.session, me().username, user)
    db.session.commit()
    flash(_("The second factor of %(username)s is removed; they set up a new one if their role requires it.",
            username=user.username), "success")
    return redirect(url_for("admin.edit", user_id=user.id))

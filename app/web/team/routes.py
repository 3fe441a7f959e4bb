"""Team tasks: the open tasks of every lane (GET /team) and bulk assign / release (POST /team/bulk).

The list is the queues' kind of read (app.queues: human_task joined to its complaint by business key,
one page at a time, never a workflow), under the same 回避 conditions as the supervisor's own queues:
the complaints about a claim the supervisor handled, and the reviews of complaints they took part in,
are left out. A bulk action calls the runtime's own verbs (assign, unclaim) once per task, each in its
own transaction, so the rules of a single reassignment (the task's role, 回避, the task still open)
hold for each, and a refused task changes nothing but is named in the answer."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user
from sqlalchemy import select

from ... import avoidance, queues
from ...config import Config
from ...errors import AppError
from ...extensions import db
from ...models import HumanTask, User
from ...timeutil import utcnow
from ..common import page_arg, roles_required, runtime
from ..queue_rows import CELL_COMPLAINT_COLUMNS, QueueRows
from ..ui import error_message, has_any, latest_forms, me, pii_roles, role_label, step_label
from . import bp

# The roles the configuration marks as supervisors (ROLES[…]["supervisor"]), as the runtime's
# is_supervisor reads them; the views ask the runtime too, in case an app is configured otherwise.
SUPERVISORS = tuple(sorted(code for code, spec in Config.ROLES.items() if spec.get("supervisor")))
ACTIONS = ("assign", "release")
MAX_BULK = 200                 # tasks per request: each is a transaction of its own
# A refused task is one flash line; past this many the rest are counted in one more line, so that the
# flashes stay well inside the session cookie (4 KB in browsers) even when all 200 were refused.
MAX_REFUSAL_LINES = 12
FILTERS = ("holder", "role", "step", "overdue")
UNCLAIMED = "none"             # holder=none: the tasks nobody holds


@bp.app_context_processor
def _nav():
    """Whether the top bar shows the team page's link (supervisors only)."""
    if not current_user.is_authenticated:
        return {}
    return {"sees_team": runtime().is_supervisor(me())}


def _supervisor():
    user = me()
    if not runtime().is_supervisor(user):
        abort(403, description=_("Only management can reassign tasks."))
    return user


def _filters() -> dict:
    return {"holder": (request.args.get("holder") or "").strip() or None,
            "role": request.args.get("role") or None, "step": request.args.get("step") or None,
            "overdue": request.args.get("overdue") == "1"}


def _team_queue(user, filters, now) -> queues.Queue:
    """Open tasks of every lane, less those 回避 keeps the supervisor out of, with the filters: all on
    human_task (its indexes), none on the complaint."""
    conditions = [HumanTask.state == "open", HumanTask.instance_id.not_in(avoidance.avoided_instances(user.username)),
                  avoidance.not_independent_of(user.id, user.username, current_app.config["INDEPENDENT_PROCESSES"])]
    if filters["holder"] == UNCLAIMED:
        conditions.append(HumanTask.assignee_id.is_(None))
    elif filters["holder"]:
        conditions.append(HumanTask.assignee_id.in_(select(User.id).where(User.username == filters["holder"])))
    if filters["role"]:
        conditions.append(HumanTask.role == filters["role"])
    if filters["step"]:
        conditions.append(HumanTask.element_id == filters["step"])
    if filters["overdue"]:
        conditions.append(HumanTask.due_at < now)
    return queues.Queue(tuple(conditions))


def _lane_roles() -> list:
    return [code for code, spec in current_app.config["ROLES"].items() if spec.get("lane")]


def _workers(lanes) -> list[User]:
    """The active users who hold a role with a lane: who may hold a task (the holder filter, and whom
    tasks may be given to; the runtime checks each task's own role)."""
    users = db.session.execute(select(User).where(User.active.is_(True))
                               .order_by(User.display_name, User.username)).scalars()
    return [u for u in users if u.roles & set(lanes)]


@bp.get("/team")
@roles_required(*SUPERVISORS)
def page():
    user, now, filters = _supervisor(), utcnow(), _filters()
    per_page, page_no = current_app.config["WEB_PER_PAGE"], page_arg()
    lanes = _lane_roles()
    people = _workers(lanes)
    rows, total = queues.page(db.session, _team_queue(user, filters, now), page_no, per_page,
                              complaint=CELL_COMPLAINT_COLUMNS)
    forms, roles = latest_forms(), {code: role_label(code) for code in current_app.config["ROLES"]}
    make = QueueRows(has_any(user, pii_roles()), forms, now)
    names = {u.id: u.display_name for u in people}
    select_all = request.args.get("all") == "1"
    listed = {"rows": [_row(make, task, complaint, names, roles, select_all) for task, complaint in rows],
              "total": total, "page": page_no, "pages": max((total + per_page - 1) // per_page, 1), "arg": "page"}
    steps = queues.waiting_steps(db.session)
    kept = {k: request.args[k] for k in (*FILTERS, "page") if request.args.get(k)}
    return render_template("team/page.html", list=listed, filters=filters, people=people,
                           colleagues=[(u.username, _colleague(u, roles)) for u in people],
                           roles=[(code, roles[code]) for code in lanes],
                           steps=[(e, step_label(e, n, forms)) for e, n in steps], kept=kept,
                           unknown_holder=filters["holder"] not in (None, UNCLAIMED, *(u.username for u in people)),
                           max_bulk=MAX_BULK)


def _row(make, task, complaint, names, roles, checked) -> dict:
    """The cells of a task table (app/web/queue_rows.py), and the task's role and holder."""
    holder = None
    if task.assignee_id is not None:
        holder = names.get(task.assignee_id) or task.assignee.display_name     # e.g. a deactivated holder
    return {**make.cells(task, complaint), "holder": holder, "checked": checked,
            "role": roles.get(task.role) or role_label(task.role)}     # a role no longer configured: ui's fallback


def _colleague(user, roles) -> str:
    """A "give to" option: the colleague's name and roles, e.g. 张三 · 客服人员、管理层."""
    return f"{user.display_name} · " + "、".join(roles.get(r, r) for r in sorted(user.roles))


# ---- bulk: give the selected tasks to a colleague, or release them ---------------------------------------
def _back_to_list():
    """Back to the list with the filters (and page) the user had: the form posts with its query string."""
    return redirect(url_for("team.page", **{k: request.args[k] for k in (*FILTERS, "page") if request.args.get(k)}))


@bp.post("/team/bulk")
@roles_required(*SUPERVISORS)
def bulk():
    user = _supervisor()
    action = request.form.get("action")
    if action not in ACTIONS:
        flash(_("Choose what to do with the selected tasks: give them to a colleague or release them. "
                "Nothing was changed."), "error")
        return _back_to_list()
    task_ids = list(dict.fromkeys(t.strip() for t in request.form.getlist("task_id") if t.strip()))
    if not task_ids:
        flash(_("Select at least one task. Nothing was changed."), "error")
        return _back_to_list()
    if len(task_ids) > MAX_BULK:
        flash(_("At most %(max)d tasks can be changed at a time; you selected %(num)d. Nothing was changed.",
                max=MAX_BULK, num=len(task_ids)), "error")
        return _back_to_list()
    assignee = None
    if action == "assign":
        username = (request.form.get("username") or "").strip()
        if not username:
            flash(_("Choose the colleague to give the selected tasks to. Nothing was changed."), "error")
            return _back_to_list()
        assignee = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if assignee is None:
            flash(_("There is no user %(name)s. Choose a colleague from the list. Nothing was changed.",
                    name=username[:64]), "error")
            return _back_to_list()
    done, refused = 0, []
    for task_id in task_ids:
        reason = _assign(task_id, user, assignee) if action == "assign" else _release(task_id, user)
        if reason is None:
            done += 1
        else:
            refused.append(reason)
    _flash_results(action, assignee, done, refused, len(task_ids))
    return _back_to_list()


def _label(task) -> tuple[str, str]:
    return task.business_key or "—", step_label(task.element_id, task.name)


def _assign(task_id, user, assignee):
    """None when the task is now with `assignee`, else (number, step, reason) of the refusal."""
    task = db.session.get(HumanTask, task_id)
    if task is None:
        return task_id[:64], "—", _("There is no task with this number. It may have been removed.")
    number, step = _label(task)
    try:
        runtime().assign(task_id, user, assignee)
    except AppError as err:
        db.session.rollback()
        return number, step, error_message(err, db.session.get(HumanTask, task_id), assignee)
    return None


def _release(task_id, user):
    """None when the task is back in its role's queue, else (number, step, reason) of the refusal. A task
    nobody holds is refused, not "released" again (that would write an event that changes nothing)."""
    task = db.session.get(HumanTask, task_id)
    if task is None:
        return task_id[:64], "—", _("There is no task with this number. It may have been removed.")
    number, step = _label(task)
    if task.state == "open" and task.assignee_id is None and not runtime().exclusion(user, task):
        return number, step, _("Nobody holds this task: it is already waiting in its role's queue.")
    try:
        runtime().unclaim(task_id, user)
    except AppError as err:
        db.session.rollback()
        return number, step, error_message(err, db.session.get(HumanTask, task_id))
    return None


def _flash_results(action, assignee, done, refused, asked):
    if done and action == "assign":
        flash(ngettext("%(num)d task given to %(name)s.", "%(num)d tasks given to %(name)s.", done,
                       name=assignee.display_name), "success")
    elif done:
        flash(ngettext("%(num)d task back in the open queue.", "%(num)d tasks back in the open queue.", done),
              "success")
    else:
        flash(ngettext("The selected task was not changed.", "None of the %(num)d selected tasks was changed.",
                       asked), "error")
    for number, step, reason in refused[:MAX_REFUSAL_LINES]:
        flash(_("Not changed: %(number)s · %(step)s: %(reason)s", number=number, step=step, reason=reason), "error")
    more = len(refused) - MAX_REFUSAL_LINES
    if more > 0:
        flash(ngettext("%(num)d more task was not changed; it is still in the list.",
                       "%(num)d more tasks were not changed; they are still in the list.", more), "error")

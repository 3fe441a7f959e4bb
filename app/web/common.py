"""Route helpers every feature blueprint may use (and that import none of them): the runtime, the role
check on a view, reading a complaint as a page (404 / 403 under 回避), safe redirects, the colleagues a
task may be given to, display names of users, and the Content-Disposition of a download."""
from functools import wraps
from urllib.parse import quote, urlsplit

from flask import abort, current_app, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select
from werkzeug.http import dump_options_header

from .. import complaints, queues
from ..errors import Forbidden, NotFound
from ..extensions import db
from ..models import Complaint, User
from ..permissions import allow
from .ui import has_any, me, stand_aside

STAND_ASIDE = _l("You handled the original claim of this complaint and must stand aside (回避).")


def runtime():
    return current_app.extensions["runtime"]


def roles_required(*roles):
    """Logged in, with at least one of the roles (else 403); with no roles, any logged-in user."""
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if roles and not has_any(me(), roles):
                abort(403)
            return view(*args, **kwargs)
        return allow(wrapper, roles)
    return decorator


def readable_or_abort(number) -> Complaint:
    """complaints.readable as a page: a translated 404 when there is no such complaint, 403 under 回避."""
    try:
        return complaints.readable(db.session, me(), number)
    except NotFound:
        abort(404, description=_("There is no complaint %(number)s. Check the number or search again.",
                                 number=number))
    except Forbidden:
        abort(403, description=str(STAND_ASIDE))


def excluded_reason(user, task, facts=None):
    """The exclusion rules (e.g. 回避) that keep this user off this task, as a translated sentence, or None
    (`facts`: as for runtime().exclusion)."""
    reason = runtime().exclusion(user, task, facts)
    return stand_aside(reason) if reason else None


def task_read_refusal(user, task, supervisor: bool, facts=None):
    """Why `user` (one of TASK_READERS) may not open the page of `task`, as a translated sentence, or None:
    another role's task (compliance and the supervisors, runtime().is_supervisor, read every one), or 回避,
    which closes reading as well as working. The complaint page asks it too, to link only what may be opened."""
    if task.role not in user.roles and "compliance" not in user.roles and not supervisor:
        return _("This task belongs to another role.")
    return excluded_reason(user, task, facts)


def safe_next(target, default=None):
    """Only a path on this site: never redirect to another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return default or url_for("tasks.home")


def colleagues(task) -> list[User]:
    """Whom a supervisor may give this task: active users with its role that 回避 does not exclude."""
    return runtime().eligible_users(task.role, runtime().excluded(task.instance_id))


# Who acted when no person did: the names the audit trail and the deployments record for them.
MACHINE_ACTORS = {"system": _l("System"), "scheduler": _l("Scheduler"), "cli": _l("Command line"),
                  "setup": _l("Installation (make run)"), "customer": _l("The customer")}


def display_names(usernames) -> dict:
    """{username: display name} of the given usernames (empty ones left out); the machine actors
    (MACHINE_ACTORS) by what they are, in the page's language."""
    rows = db.session.execute(select(User.username, User.display_name).where(
        User.username.in_(sorted(u for u in usernames if u)))).all()
    machines = {u: str(MACHINE_ACTORS[u]) for u in usernames if u in MACHINE_ACTORS}
    return {**machines, **dict(rows)}


def attachment(filename: str) -> str:
    """A Content-Disposition header for a download; a non-ASCII name (an uploaded file may have one)
    as RFC 5987 beside an ASCII fallback."""
    try:
        filename.encode("ascii")
        return dump_options_header("attachment", {"filename": filename})
    except UnicodeEncodeError:
        fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
        return dump_options_header("attachment", {"filename": fallback, "filename*": f"UTF-8''{quote(filename)}"})


def page_arg(name="page", default=1) -> int:
    """A page number from the query string: 1 to queues.MAX_PAGE (an OFFSET every database holds); anything
    that is no whole number (letters, "²", thousands of digits) asks for `default`."""
    try:
        return min(max(int(request.args.get(name, default)), 1), queues.MAX_PAGE)
    except ValueError:
        return default

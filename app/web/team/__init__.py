"""Team tasks (/team), for management (the supervisors): the open tasks of every lane on one page, read
from human_task and complaint only (never a workflow), filtered by holder, role, step and overdue, and
given to a colleague or released back to their role's queue in bulk (/team/bulk), each task in its own
runtime transaction, with one line per task the runtime refused."""
from ..errorpages import blueprint

bp = blueprint("team", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

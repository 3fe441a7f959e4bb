"""My work: the home page with the queues (/), a task with its form beside the complaint
(/tasks/<id>), and claim / unclaim / assign (/tasks/<id>/claim, …)."""
from ..errorpages import blueprint

bp = blueprint("tasks", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

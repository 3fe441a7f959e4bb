"""Evidence and notes: attach files to a complaint (/complaints/<number>/evidence) or to a task's case
(/tasks/<task_id>/evidence), download one (/evidence/<id>), and add an internal note to a complaint
(/complaints/<number>/notes). The complaint and task pages list them (app/web/evidence_ui.py)."""
from ..errorpages import blueprint

bp = blueprint("evidence", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

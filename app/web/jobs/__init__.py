"""The background jobs of the user (/jobs…): their list, a job's progress bar and result list, its progress as
JSON for the page's script, its result file to download, cancelling it. Jobs are started where their work is
asked for (the migration page, the complaint list's export) and worked by the scheduler (app/jobs/)."""
from ..errorpages import blueprint

bp = blueprint("jobs", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

"""The analysis page (/analysis…) for management, compliance, training, head office and process owners:
the analysis of a period (app.analysis) as charts (ECharts, vendored) with a table under each, filters
by period and dimension, the complaints behind a bar, exports to Excel and CSV, the print layout of the
quarterly report, the analyses stored by the quarterly reviews (/analysis/reports/<id>), and starting the
review of a period by hand (/analysis/review, review.py)."""
from ..errorpages import blueprint

bp = blueprint("analysis", __name__)
# Its script and print styles beside it (the page's own; static files are public, like the app's).
bp.static_folder = "static"
bp.static_url_path = "/analysis/static"

from . import review, routes  # noqa: E402,F401  (routes register on import)

"""Operations: /healthz (the process answers), /readyz (it can serve: database, migrations, the complaint
process deployed, the scheduler's heartbeat) and /metrics (Prometheus, app/metrics.py). Public, no
templates, nothing personal in their answers."""
from flask import Blueprint

bp = Blueprint("health", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

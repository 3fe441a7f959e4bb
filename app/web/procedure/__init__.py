"""The procedure pages (/procedure…): the deployed diagram with where complaints are on it, its
versions and BPMN files, the load overlays as JSON, the traceability of the written procedure
(/traceability), and for process owners upload, deploy and migrate."""
from ..errorpages import blueprint

bp = blueprint("procedure", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

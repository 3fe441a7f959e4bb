"""The language of the pages: /language/<code>, and `?lang=` on any page, for the rest of the session."""
from ..errorpages import blueprint

bp = blueprint("language", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

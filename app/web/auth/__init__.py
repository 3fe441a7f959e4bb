"""Logging in and out: /login, /logout, and the user loader of Flask-Login."""
from ..errorpages import blueprint

bp = blueprint("auth", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

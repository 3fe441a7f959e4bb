"""Notifications: what a handler is told (/notifications) — their tasks new since they last looked, due
within a day and overdue, and for supervisors the overdue tasks nobody holds and those nobody may work —
and their choice of a morning e-mail digest of the same (/notifications/settings; app/digest_mail.py)."""
from ..errorpages import blueprint

bp = blueprint("notifications", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)

"""The helpers a BPMN expression may call, and the script engine that offers them.

Deadlines are written in the diagram, e.g. ``working_days_after(round_started_at, 3)``, so a
process owner changes a deadline by editing the BPMN file, not this module.
"""
import logging
from datetime import timedelta

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from ..timeutil import parse_iso, utcnow
from .calendar import default_calendar

log = logging.getLogger(__name__)


def hours_after(ts, hours):
    """ISO time `hours` after `ts` (an ISO string or aware datetime)."""
    return (parse_iso(ts) + timedelta(hours=hours)).isoformat()


def now_iso():
    return utcnow().isoformat()


HELPER_NAMES = ("hours_after", "working_days_after", "now_iso", "notify_customer")


def make_script_engine(effects=None, calendar=None):
    """A script engine whose side effects are collected in `effects`, so that they are written in
    the same transaction as the workflow change: customer messages, and due times computed without
    an official holiday calendar (provisional)."""
    effects = [] if effects is None else effects
    calendar = calendar or default_calendar()

    def notify_customer(template, **fields):
        effects.append({"kind": "notify_customer", "template": str(template), "fields": fields})

    def working_days_after(ts, days):
        """End (Asia/Shanghai) of the `days`-th working day after the day of `ts`, as an ISO string."""
        due = calendar.add_working_days(parse_iso(ts), days)
        if due.provisional:
            log.warning("deadline %s is provisional: the holiday calendar for that year is not published", due.at)
            effects.append({"kind": "provisional_due", "due_at": due.at})
        return due.at.isoformat()

    return PythonScriptEngine(environment=TaskDataEnvironment({
        "hours_after": hours_after,
        "working_days_after": working_days_after,
        "now_iso": now_iso,
        "notify_customer": notify_customer,
    }))

"""The helpers a BPMN expression may call, and the script engine that offers them.

Deadlines are written in the diagram, e.g. ``working_days_after(round_started_at, 3)``, so a
process owner changes a deadline by editing the BPMN file, not this module. Every expression runs
in the sandbox (sandbox.py, guards.py): only these helpers and a few whitelisted builtins are available.
"""
import logging
import reprlib
from datetime import date, datetime, time, timedelta

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from ..timeutil import BUSINESS_TZ, parse_iso, utcnow
from . import guards, sandbox
from .calendar import default_calendar

log = logging.getLogger(__name__)
MAX_DEADLINE_DAYS = 1000          # working days a deadline may lie ahead (the calendar walks them)
MAX_PERIOD_DAYS = 3660            # calendar days a period may last (days_after): ten years is no complaint period
MAX_MESSAGE_SIZE = 100_000        # characters the fields of one customer message may print as


def hours_after(ts, hours):
    """ISO time `hours` after `ts` (an ISO string or aware datetime)."""
    return (parse_iso(ts) + timedelta(hours=hours)).isoformat()


def now_iso():
    return utcnow().isoformat()


class InputRejected(ValueError):
    """A helper refused a value that came from a person (a form, a handler's action), not from the
    diagram: the change is refused as invalid input (422), not as a broken procedure (500)."""


def days_spanned(start, end, after=None):
    """How many calendar days the span from `start` to `end` touches, both days counted (e.g. an
    external appraisal from 03-02 to 03-04 takes 3 days, which R-PAUSE leaves out of the period).
    With `after` (e.g. the time of receipt), only the days after that day count: a period is counted
    from the day after receipt (CC-201), so days before it cannot be left out of it. Each is a date
    (YYYY-MM-DD) or an ISO time, read as its day in Asia/Shanghai."""
    first, last = _business_day("days_spanned", start), _business_day("days_spanned", end)
    if last < first:
        raise InputRejected(f"the end {last.isoformat()} is before the start {first.isoformat()}")
    if after is not None:
        first = max(first, _business_day("days_spanned", after) + timedelta(days=1))
    days = max((last - first).days + 1, 0)
    if days > MAX_PERIOD_DAYS:
        raise InputRejected(f"{first.isoformat()} to {last.isoformat()} is more than {MAX_PERIOD_DAYS:,} days")
    return days


def _business_day(helper, value) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    return _moment(helper, value).astimezone(BUSINESS_TZ).date()


# The helpers that act (a customer message, a record written with the change), and all of them.
EFFECT_HELPERS = ("notify_customer", "attach_analysis", "track_measure")
HELPER_NAMES = ("hours_after", "working_days_after", "days_after", "days_spanned", "end_of_day", "now_iso",
                *EFFECT_HELPERS)
MEASURE_STATES = ("open", "done", "dropped")


def _day_count(helper, days, limit):
    """Refuse a count of days the helper cannot mean, with the helper's name in the message (the
    engine reports only the expression, and a diagram may call several helpers)."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError(f"{helper}: the number of days must be a whole number, got {reprlib.repr(days)}")
    if days < 0:
        raise ValueError(f"{helper}: the number of days must be 0 or more, got {days:,}")
    if days > limit:
        raise guards.NotAllowed(f"{helper}: {days:,} days is more than the limit {limit:,}")


def _moment(helper, ts):
    """`ts` as an aware datetime; an ISO text without a time zone, or not a time, is refused by name."""
    try:
        return parse_iso(ts)
    except ValueError as exc:
        raise ValueError(f"{helper}: {reprlib.repr(ts)} is not an ISO time with a time zone "
                         f"(e.g. 2026-02-13T10:00:00+08:00): {exc}") from None


def end_of_day(day):
    """End (23:59:59, Asia/Shanghai) of a business day, a date (YYYY-MM-DD) or an ISO time, as an ISO
    string: e.g. the due date a person chose for an improvement measure, as a timer."""
    first = _business_day("end_of_day", day)
    return datetime.combine(first, time(23, 59, 59), BUSINESS_TZ).isoformat()


def _period(helper, start, end) -> tuple[str, str]:
    first, last = _business_day(helper, start), _business_day(helper, end)
    if last < first:
        raise InputRejected(f"{helper}: the period ends {last.isoformat()}, before it starts {first.isoformat()}")
    if (last - first).days > MAX_PERIOD_DAYS:
        raise InputRejected(f"{helper}: {first.isoformat()} to {last.isoformat()} is more than {MAX_PERIOD_DAYS:,} days")
    return first.isoformat(), last.isoformat()


class SandboxEnvironment(TaskDataEnvironment):
    """Runs every condition, script, timer and pre/post script in the sandbox (see sandbox.py), with
    the compiled code cached per source text. Conditions and timers get read-only guards."""

    def evaluate(self, expression, context, external_context=None):
        code = sandbox.code_for(expression, "eval")
        evaluation = guards.Evaluation(read_only=True)
        result = eval(code, {**self.globals, **(external_context or {}), **context, **evaluation.globals()})
        evaluation.finish()
        return result

    def execute(self, script, context, external_context=None):
        self.check_for_overwrite(context, external_context or {})
        code = sandbox.code_for(script, "exec")
        evaluation = guards.Evaluation()
        names = evaluation.globals()
        context.update({**self.globals, **(external_context or {}), **names})
        try:
            exec(code, context)
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
            for name in names:
                context.pop(name, None)
        evaluation.finish()
        guards.check_data(context)
        return True


class SandboxScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's engine, except that a failed condition or timer says why, not only which
    expression (the stock message drops the cause). It keeps the `effects` its helpers collect, so
    that whoever writes the change back can read them from the workflow (`wf.script_engine`)."""

    def __init__(self, environment=None, effects=None):
        super().__init__(environment=environment)
        self.effects = [] if effects is None else effects

    def confirmed_dues(self) -> set:
        """Due times computed in this change on published (or admin-pinned) calendar days only: a
        provisional deadline evaluated again to one of them is final, even if its time is the same."""
        return {e["due_at"] for e in self.effects if e["kind"] == "confirmed_due"}

    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as exc:
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}': "
                                        f"{type(exc).__name__}: {exc}", task=task, exception=exc) from exc


def make_script_engine(effects=None, calendar=None):
    """A script engine whose side effects are collected in `effects`, so that they are written in
    the same transaction as the workflow change: customer messages, and due times computed without
    an official holiday calendar (provisional)."""
    effects = [] if effects is None else effects
    calendar = calendar or default_calendar()

    def notify_customer(template, **fields):
        guards.check_message_fields(template, fields, MAX_MESSAGE_SIZE)
        effects.append({"kind": "notify_customer", "template": str(template), "fields": fields})

    def attach_analysis(start, end):
        """Have the analysis of the period from `start` to `end` (business dates, both included) computed
        and attached to this instance when the change is written."""
        first, last = _period("attach_analysis", start, end)
        effects.append({"kind": "attach_analysis", "start": first, "end": last})

    def track_measure(measure, state, **fields):
        """Write an improvement measure's tracking record (its state, and e.g. evidence) when the change
        is written; `measure` is the measure's data (no, title, category, cause_code, owner, due_on)."""
        if state not in MEASURE_STATES:
            raise ValueError(f"track_measure: the state must be one of {', '.join(MEASURE_STATES)}, got {reprlib.repr(state)}")
        if not isinstance(measure, dict) or not isinstance(measure.get("no"), int):
            raise ValueError(f"track_measure: the measure must be a dict with its number 'no', got {reprlib.repr(measure)}")
        guards.check_message_fields("track_measure", fields, MAX_MESSAGE_SIZE)
        effects.append({"kind": "track_measure", "measure": dict(measure), "state": state, "fields": fields})

    def due(computed):
        """The ISO text of a computed due time, noting in `effects` whether it is provisional (the
        deadline row is flagged and recomputed later) or confirmed (a recomputed row loses the flag)."""
        if computed.provisional:      # the calendar warns once per year it lacks; the deadline row is flagged
            log.debug("deadline %s is provisional: the holiday calendar for that year is not published",
                      computed.at)
            effects.append({"kind": "provisional_due", "due_at": computed.at})
        else:
            effects.append({"kind": "confirmed_due", "due_at": computed.at})
        return computed.at.isoformat()

    def working_days_after(ts, days):
        """End (Asia/Shanghai) of the `days`-th working day after the day of `ts`, as an ISO string."""
        if isinstance(days, int) and days > MAX_DEADLINE_DAYS:
            raise guards.NotAllowed(f"working_days_after: {days:,} working days is more than the limit "
                                     f"{MAX_DEADLINE_DAYS:,}")
        return due(calendar.add_working_days(parse_iso(ts), days))

    def days_after(ts, days):
        """End (Asia/Shanghai) of a period of `days` days from `ts` as the law counts it, as an ISO
        string: the day of `ts` is not counted (CC-201), and a last day that is a rest day moves to
        the next working day (CC-203). For the sector rule's "15 days of receipt" (R-DECIDE)."""
        _day_count("days_after", days, MAX_PERIOD_DAYS)
        return due(calendar.add_period_days(_moment("days_after", ts), days))

    return SandboxScriptEngine(environment=SandboxEnvironment({
        "hours_after": hours_after,
        "working_days_after": working_days_after,
        "days_after": days_after,
        "days_spanned": days_spanned,
        "end_of_day": end_of_day,
        "now_iso": now_iso,
        "notify_customer": notify_customer,
        "attach_analysis": attach_analysis,
        "track_measure": track_measure,
    }), effects=effects)

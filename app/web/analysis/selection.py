"""What an analysis request asks for, read from its query string: the period (a quarter, or from/to dates;
by default the current quarter) and the filters per dimension; and what is wrong with it, as a sentence
in the page's language."""
from dataclasses import dataclass, field
from datetime import date

from flask import request

from ... import analysis
from ...analysis.periods import PeriodError, business_date, parse_date
from ...timeutil import utcnow
from ..filter_messages import period_message

QUARTER_CHOICES = 12            # quarters offered in the picker, the current one first


@dataclass
class Selection:
    period: object = None                 # app.analysis.Period, None when the input was bad
    filters: dict = field(default_factory=dict)
    error: str | None = None
    raw: dict = field(default_factory=dict)   # the input as typed, shown again in the form

    def args(self, **changes) -> dict:
        """Query arguments that ask for this selection again (dates, not the quarter), with `changes`."""
        out = {"from": self.period.start.isoformat(), "to": self.period.end.isoformat()} if self.period else {}
        out.update({name: value for name, value in self.filters.items() if value})
        out.update(changes)
        return out


def from_request() -> Selection:
    raw = {key: (request.args.get(key) or "").strip() for key in ("quarter", "from", "to", *analysis.DIMENSIONS)}
    filters = {name: raw[name] for name in analysis.DIMENSIONS if raw[name]}
    try:
        return Selection(_period(raw), filters, raw=raw)
    except PeriodError as err:
        return Selection(None, filters, period_message(err), raw=raw)


def _period(raw: dict):
    if raw["quarter"]:
        return analysis.quarter(raw["quarter"])
    if raw["from"] or raw["to"]:
        if not (raw["from"] and raw["to"]):
            raise PeriodError("missing_dates", "both dates are needed")
        return analysis.period(parse_date(raw["from"], "from"), parse_date(raw["to"], "to"))
    return analysis.quarter_of(business_date(utcnow()))


def of_report(report) -> Selection:
    """The selection a stored report was computed for (its drill-down links ask for it)."""
    stored = report.data.get("filters") or {}
    filters = {name: values[0] for name, values in stored.items() if values}
    return Selection(analysis.period(report.period_start, report.period_end, report.label), filters)


def quarter_choices() -> list:
    """The current quarter and the ones before it, newest first."""
    found, day = [], business_date(utcnow())
    for _i in range(QUARTER_CHOICES):
        q = analysis.quarter_of(day)
        found.append(q.label)
        day = date.fromordinal(q.start.toordinal() - 1)
    return found

"""The analysis of complaints over a period (issue 11; C-3.5.2, C-5.4): counts and trends by coded
dimension, the high-frequency problems and their rises, deadline compliance, rounds and reviews, repeat
complainants, handling time, satisfaction, outcomes and the improvement measures' effect — from indexed
columns, aggregated in SQL. One module per job: periods (business dates → UTC), dimensions (codes, labels,
filters), volume, problems, deadlines, outcomes, handling, satisfaction, repeat, measures, compute (the
whole), store (reports kept), drilldown (the complaints behind a figure) and export (CSV and Excel)."""
from .compute import compute, of_period
from .dimensions import DIMENSIONS, UNCODED, FilterError
from .periods import Period, PeriodError, period, previous_quarter, quarter, quarter_of
from .store import attach, latest_of, report, reports_of

__all__ = ["compute", "of_period", "attach", "reports_of", "latest_of", "report", "Period", "PeriodError",
           "FilterError", "period", "quarter", "quarter_of", "previous_quarter", "DIMENSIONS", "UNCODED"]

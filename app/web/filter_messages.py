"""What is wrong with a period or a filter of a list (the analysis, the complaint list), as a sentence in
the page's language."""
from flask_babel import gettext as _


def period_message(err) -> str:
    """The sentence for an app.analysis.PeriodError."""
    p = err.params
    if err.code == "reversed":
        return _("The period starts (%(start)s) after it ends (%(end)s): swap the dates.", start=p["start"], end=p["end"])
    if err.code == "too_long":
        return _("The period is %(days)d days long; at most %(limit)d days (three years) can be analysed at once.",
                 days=p["days"], limit=p["limit"])
    if err.code == "bad_quarter":
        return _("“%(value)s” is not a quarter: choose one from the list, or write it like 2026Q4.", value=p["value"])
    if err.code == "bad_date":
        return _("“%(value)s” is not a date: write it like 2026-10-01.", value=p["value"])
    return _("Give both dates of the period, or choose a quarter.")


def filter_message(err) -> str:
    p = err.params
    if err.code == "unknown_dimension":
        return _("“%(value)s” is not something the analysis can be broken down by.", value=p["dimension"])
    return _("“%(value)s” is not a value of this filter: choose one from its list.", value=p["value"])

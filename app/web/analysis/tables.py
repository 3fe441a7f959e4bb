"""The analysis as the page shows and exports it: one table per section (title, header, rows, and the
link to the complaints behind each row, if any), in the page's language. The charts (charts.py), the
page's tables and the Excel and CSV exports are all built from these, so they never disagree."""
from dataclasses import dataclass, field

from flask import url_for
from flask_babel import gettext as _, lazy_gettext as _l

from ...analysis import UNCODED
from ..ui import channel_label, lang, outcome_label, step_label

DIMENSION_TITLES = {"category": _l("Category"), "cause_code": _l("Root cause"),
                    "responsible_party": _l("Responsible party"), "channel": _l("Channel"),
                    "product_line": _l("Product line")}
MEASURE_STATES = {"open": _l("Not done yet"), "done": _l("Done"), "dropped": _l("Dropped")}


@dataclass
class Table:
    key: str
    title: str
    header: list
    rows: list = field(default_factory=list)
    links: list = field(default_factory=list)       # per row: the drill-down URL, or None
    marks: list = field(default_factory=list)       # per row: a CSS class ("" for none)


def item_label(dimension: str, item: dict) -> str:
    """A dimension value's label: the vocabulary's in the page's language, a channel's, or "Uncoded"."""
    if item is None:
        return "—"
    if item.get("uncoded") or item.get("code") == UNCODED:
        return _("Uncoded")
    if dimension == "channel" or "zh" not in item:
        return str(channel_label(item["code"]))
    text = item["en"] if lang() == "en" else item["zh"]
    return _("%(label)s (retired)", label=text) if item.get("retired") else text


def pct(value) -> str:
    return "—" if value is None else f"{value:g}%"


def signed(value) -> str:
    return "—" if value is None else f"{value:+d}"


def drill(selection, **changes) -> str:
    return url_for("analysis.complaints", **selection.args(**changes))


# ---- one builder per section -----------------------------------------------------------------------------
def trend_table(data, selection) -> Table:
    t = Table("trend", _("Complaints received over time"), [_("From"), _("To"), _("Complaints")])
    for bucket, n in zip(data["period"]["buckets"], data["totals"]["trend"]):
        t.rows.append([bucket["start"], bucket["end"], n])
        t.links.append(drill(selection, **{"from": bucket["start"], "to": bucket["end"]}) if n else None)
    return t


def dimension_table(data, selection, name) -> Table:
    t = Table(f"by_{name}", _("Complaints by %(dimension)s", dimension=DIMENSION_TITLES[name]),
              [DIMENSION_TITLES[name], _("Complaints"), _("Previous period"), _("Change"), _("Same period last year")])
    for item in data["dimensions"][name]:
        t.rows.append([item_label(name, item), item["count"], item["previous"], signed(item["count"] - item["previous"]),
                       item["year_ago"]])
        t.links.append(drill(selection, **{name: item["code"]}) if item["count"] else None)
    return t


def _change_cells(change) -> list:
    if change is None:
        return ["—", "—", "—"]
    return [change["base"], pct(change["pct"]) if change["pct"] is not None else signed(change["delta"]), change["z"]]


def top_table(data, selection, name) -> Table:
    t = Table(f"top_{name}", _("High-frequency problems: %(dimension)s", dimension=DIMENSION_TITLES[name]),
              [DIMENSION_TITLES[name], _("Complaints"), _("Previous period"), _("Change"), _("z"),
               _("Same period last year"), _("Change"), _("z"), _("Rise beyond noise")])
    for item in data["top"][name]:
        t.rows.append([item_label(name, item), item["count"], *_change_cells(item["vs_previous"]),
                       *_change_cells(item["vs_year_ago"]), _("Yes") if item["stands_out"] else _("No")])
        t.links.append(drill(selection, **{name: item["code"]}))
        t.marks.append("stands-out" if item["stands_out"] else "")
    return t


def deadline_label(step: dict) -> str:
    if lang() == "en" and step.get("host_element_id"):
        return f"{step_label(step['host_element_id'], None)} ({step['name']})"
    return step["name"] or step["element_id"]


def deadlines_table(data) -> Table:
    t = Table("deadlines", _("Deadline compliance per step"), [_("Deadline"), _("Met"), _("Missed"), _("Met in time")])
    for step in data["deadlines"]["steps"]:
        t.rows.append([deadline_label(step), step["met"], step["missed"], pct(step["rate"])])
    clock = data["deadlines"]["decision_clock"]
    t.rows.append([_("Regulatory limit for the decision"), clock["met"], clock["missed"], pct(clock["rate"])])
    return t


def outcomes_table(data) -> Table:
    closed = data["closed"]
    t = Table("outcomes", _("How the complaints closed in the period ended"), [_("Outcome"), _("Complaints"), _("Share")])
    for code, n in sorted(closed["outcomes"].items(), key=lambda kv: -kv[1]):
        share = round(100.0 * n / closed["closed"], 1) if closed["closed"] else None
        t.rows.append([outcome_label(None if code == "none" else code), n, pct(share)])
    return t


def handling_table(data) -> Table:
    h, c, r, rev = data["handling"], data["closed"], data["repeat"], data["reviews"]
    hours = lambda v: "—" if v is None else _("%(hours)s h", hours=format(v, "g"))  # noqa: E731
    t = Table("figures", _("Key figures"), [_("Figure"), _("Value")])
    t.rows = [[_("Complaints received"), data["totals"]["count"]],
              [_("Complaints closed"), c["closed"]],
              [_("Median handling time (received to closed)"), hours(h["median_hours"])],
              [_("90th percentile of handling time"), hours(h["p90_hours"])],
              [_("Malicious complaints (share of closed)"), pct(c["rates"]["malicious"])],
              [_("Not accepted (share of closed)"), pct(c["rates"]["not_accepted"])],
              [_("Handled again after the customer was dissatisfied"), f'{c["reopened"]} ({pct(c["reopened_rate"])})'],
              [_("Reviewed (核查) on the customer's request"), f'{rev["reviewed"]} ({pct(rev["rate"])})'],
              [_("Repeat complainants (2 or more complaints in 12 months)"),
               f'{r["repeat_complainants"]} / {r["complainants"]} ({pct(r["share"])})'],
              [_("Complaints from repeat complainants"), r["their_complaints"]]]
    return t


def rounds_table(data) -> Table:
    t = Table("rounds", _("Dissatisfied rounds of the complaints closed"), [_("Rounds"), _("Complaints")])
    for rounds, n in data["closed"]["rounds"].items():
        t.rows.append([_("3 or more") if rounds == "3" else rounds, n])
    return t


def satisfaction_table(data) -> Table:
    s = data["satisfaction"]
    t = Table("satisfaction", _("Satisfaction survey (1 = very dissatisfied, 5 = very satisfied)"),
              [_("Question"), _("Mean score"), _("Answers")])
    for q in s["questions"]:
        t.rows.append([q["en"] if lang() == "en" else q["zh"], "—" if q["mean"] is None else q["mean"], s["responses"]])
    return t


def measures_table(data) -> Table:
    t = Table("measures", _("Improvement measures of earlier reviews: before and after"),
              [_("Measure"), _("Category"), _("State"), _("Due"), _("Before (its period)"), _("After (this period)"),
               _("Change per day")])
    for m in data["measures"]:
        t.rows.append([m["title"], item_label("category", m["category"]), MEASURE_STATES.get(m["state"], m["state"]),
                       m["due_on"], "—" if m["before"] is None else m["before"], "—" if m["after"] is None else m["after"],
                       pct(m["change_per_day_pct"])])
        t.marks.append("escalated" if m["escalated"] else "")
    return t


def all_tables(data, selection) -> list[Table]:
    """Every table of the analysis, in the page's order."""
    return [handling_table(data), trend_table(data, selection),
            *(dimension_table(data, selection, name) for name in DIMENSION_TITLES),
            *(top_table(data, selection, name) for name in data["top"]),
            deadlines_table(data), outcomes_table(data), rounds_table(data), satisfaction_table(data),
            measures_table(data)]

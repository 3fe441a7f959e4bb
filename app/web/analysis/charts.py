"""The charts of the analysis page, as data for app/web/analysis/static/analysis.js (ECharts): each one a
kind, its categories, its series and the drill-down link of each category, read from the same tables as
the page and the exports."""
from flask_babel import gettext as _

from .tables import DIMENSION_TITLES, item_label


def _bar(key, title, categories, series, links=None, horizontal=False, stacked=False):
    return {"id": f"chart-{key}", "kind": "bar", "title": title, "categories": categories, "series": series,
            "links": links or [None] * len(categories), "horizontal": horizontal, "stacked": stacked}


def volume(data, tables) -> dict:
    trend = tables["trend"]
    chart = _bar("trend", trend.title, [row[0] for row in trend.rows],
                 [{"name": _("Complaints"), "data": [row[2] for row in trend.rows]}], trend.links)
    return {**chart, "kind": "line" if len(trend.rows) > 20 else "bar"}


def by_dimension(data, tables, name) -> dict:
    table = tables[f"by_{name}"]
    return _bar(name, table.title, [row[0] for row in table.rows],
                [{"name": _("Complaints"), "data": [row[1] for row in table.rows]}], table.links, horizontal=True)


def top_problems(data, tables, name) -> dict:
    """This period against the previous one; a rise beyond noise is marked ▲ in its label."""
    items = data["top"][name]
    labels = [item_label(name, i) + (" ▲" if i["stands_out"] else "") for i in items]
    return _bar(f"top_{name}", _("High-frequency problems: %(dimension)s", dimension=DIMENSION_TITLES[name]), labels,
                [{"name": _("This period"), "data": [i["count"] for i in items]},
                 {"name": _("Previous period"), "data": [i["previous"] for i in items]},
                 {"name": _("Same period last year"), "data": [i["year_ago"] for i in items]}],
                tables[f"top_{name}"].links, horizontal=True)


def deadlines(data, tables) -> dict:
    rows = tables["deadlines"].rows
    return _bar("deadlines", tables["deadlines"].title, [row[0] for row in rows],
                [{"name": _("Met"), "data": [row[1] for row in rows], "color": "#1f7a46"},
                 {"name": _("Missed"), "data": [row[2] for row in rows], "color": "#b42318"}],
                horizontal=True, stacked=True)


def satisfaction(data, tables) -> dict:
    overall = data["satisfaction"]["overall"]
    return _bar("satisfaction", _("Overall satisfaction: answers per score"), list(overall),
                [{"name": _("Answers"), "data": list(overall.values())}])


def all_charts(data, tables: dict) -> list[dict]:
    return [volume(data, tables), *(by_dimension(data, tables, n) for n in ("category", "channel", "product_line",
                                                                           "cause_code", "responsible_party")),
            *(top_problems(data, tables, n) for n in data["top"]), deadlines(data, tables), satisfaction(data, tables)]

"""The rows of the task tables (the queue page's web/_macros.html queue_table, and the team page), every cell
made here once per row: a page shows 25 to 75 of them, and made in the template each cell had cost a macro call
and its own lookups of the locale, the time zone, the translations and the URL map (more time than the page's
queries)."""
from flask import current_app, url_for

from .. import complaints, queues
from .formrender_codes import label as vocab_label
from .ui import CHANNEL_LABELS, datetime_formatter, decision_clock, step_label, time_left

# What a queue row shows of its task and of its complaint (ui.decision_clock reads the last four), for queues.page:
# not the records. Built once, not per request. The team page's rows (`cells`) need only the complaint's first four.
TASK_COLUMNS = queues.task_columns(("id", "business_key", "element_id", "name", "subject", "due_at"))
COMPLAINT_COLUMNS = queues.complaint_columns(("number", "customer_name", "channel", "category", "received_at",
                                              "status", "decision_due_at", "decision_clock", "decision_warning_days"))
CELL_COMPLAINT_COLUMNS = queues.complaint_columns(("number", "customer_name", "channel", "category"))
_ID = "00000000-0000-0000-0000-000000000000"        # stands for a task's id in a URL made once per page
_NUMBER = "TS-00000000-000000"


class QueueRows:
    """Makes the rows of one page; the labels, the date format and the URLs' shapes are looked up once."""

    def __init__(self, pii: bool, forms: dict, now):
        self.pii, self.forms, self.now = pii, forms, now
        self.fmt = datetime_formatter()
        self.task_url = url_for("tasks.task", task_id=_ID)
        self.actions = {name: url_for(endpoint, task_id=_ID) for name, endpoint in
                        (("claim_url", "tasks.claim"), ("unclaim_url", "tasks.unclaim"))}
        self.complaint_url = url_for("complaints.complaint", number=_NUMBER)
        self.segment = current_app.url_map.converters["default"](current_app.url_map).to_url   # url_for's quoting
        self.channels = {code: str(text) for code, text in CHANNEL_LABELS.items()}
        self.categories, self.steps = {}, {}

    def row(self, task, complaint) -> dict:
        """A queue page's row: the cells, when the complaint came in, the regulator's clock and the task's actions."""
        c = complaint
        return {**self.cells(task, c), "received": self.fmt(c.received_at) if c else "—", "clock": self._clock(c),
                **{name: url.replace(_ID, self.segment(task.id)) for name, url in self.actions.items()}}

    def cells(self, task, complaint) -> dict:
        """What every task table shows: the step and its time left, the complaint's number, customer (masked unless
        `pii`), channel and category, and the links to the task and the complaint."""
        c = complaint
        due = {**time_left(task.due_at, self.now), "at": self.fmt(task.due_at) if task.due_at else None}
        return {"task": task, "complaint": c, "step": self._step(task), "due": due,
                "task_url": self.task_url.replace(_ID, self.segment(task.id)),
                "complaint_url": self.complaint_url.replace(_NUMBER, self.segment(task.business_key)) if c else None,
                "customer": self._customer(c), "channel": self.channels.get(c.channel, c.channel) if c else "—",
                "category": self._category(c.category) if c else "—"}

    def _customer(self, c):
        if c is None:
            return None
        return c.customer_name if self.pii else complaints.mask_name(c.customer_name)

    def _step(self, task):
        key = (task.element_id, task.name)
        if key not in self.steps:
            self.steps[key] = step_label(task.element_id, task.name, self.forms)
        return self.steps[key]

    def _category(self, code):
        if code not in self.categories:
            self.categories[code] = vocab_label("category", code)
        return self.categories[code]

    def _clock(self, c):
        """The regulator's clock (as the `clock` macro shows it), with its limit's date when it still runs."""
        if c is None:
            return None
        left = decision_clock(c, self.now)
        shown = c.decision_due_at and left["state"] not in ("none", "met")
        return {**left, "at": self.fmt(c.decision_due_at) if shown else None}

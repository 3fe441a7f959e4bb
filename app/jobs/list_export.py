"""The complaint list's export as a job, and the cells of an exported row (the direct export in
app/web/complaints/listing.py writes the same cells). An item is a slice of the complaints the list held
when the export was asked for (their ids, newest first: the search term and the asker's 回避 are resolved
then, so no term is kept); each slice's rows go to a part file, and finishing writes the parts into the
CSV or Excel file. The labels (the asker's language, the vocabularies in force) and whether names are
shown in full are worked out when it is asked for and travel in the job's params."""
from datetime import date, datetime

from sqlalchemy import select

from ..analysis import export
from ..complaints import mask_name
from ..models import BackgroundJobItem, Complaint
from ..permissions import LIST_EXPORTERS
from .kinds import DONE, Kind, register
from .store import NewItem

KIND = "list_export"
SLICE = 500                   # complaints per item
COLUMNS = (Complaint.number, Complaint.received_at, Complaint.customer_name, Complaint.channel,
           Complaint.category, Complaint.product_line, Complaint.status, Complaint.current_step,
           Complaint.decision_due_at, Complaint.outcome, Complaint.closed_at)
FORMATS = {"csv": export.csv_chunks, "xlsx": export.xlsx_chunks}
STORED_JOINER = "、"           # how Complaint.current_step joins the names of the steps it waits at


def steps_text(stored, steps) -> str:
    """Complaint.current_step (the diagram's names of the steps it waits at) in the language of `steps`:
    {"names": {name: label}, "joiner": str}; as stored when `steps` is empty (a job asked for before it was)."""
    if not stored or not steps:
        return stored or ""
    return steps["joiner"].join(steps["names"].get(name, name) for name in stored.split(STORED_JOINER))


class Cells:
    """A row's cells: names masked unless `full_names`, codes as the labels given ({column: {code: label}})."""

    def __init__(self, labels: dict, full_names: bool):
        self.labels, self.full_names = labels, full_names

    def label(self, column, value):
        return "" if value in (None, "") else str(self.labels[column].get(value, value))

    def of(self, row) -> list:
        name = row.customer_name if self.full_names else mask_name(row.customer_name)
        return [row.number, row.received_at, name, self.label("channel", row.channel),
                self.label("category", row.category), self.label("product_line", row.product_line),
                self.label("status", row.status), steps_text(row.current_step, self.labels.get("now")),
                row.decision_due_at,
                self.label("outcome", row.outcome), row.closed_at]


def params(fmt, name, title, header, labels, full_names, filters, term: bool) -> dict:
    return {"format": fmt, "name": name, "title": title, "header": list(header), "labels": labels,
            "full_names": bool(full_names), "filters": dict(filters), "term": bool(term)}


def items(complaint_ids: list) -> list[NewItem]:
    return [NewItem(str(n), None, {"ids": complaint_ids[start:start + SLICE]})
            for n, start in enumerate(range(0, len(complaint_ids), SLICE))]


def _part(seq) -> str:
    return f"part-{seq:06d}.jsonl"


def _encode(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _decode(value):
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"]) if "t" in value else date.fromisoformat(value["d"])
    return value


def run(ctx, job, item):
    ids = item.data["ids"]
    found = {row.id: row for row in ctx.session.execute(select(Complaint.id, *COLUMNS).where(Complaint.id.in_(ids)))}
    ctx.session.rollback()
    cells = Cells(job.params["labels"], job.params["full_names"])
    rows = [[_encode(v) for v in cells.of(found[i])] for i in ids if i in found]     # a deleted one is left out
    ctx.files.write_lines(job.id, _part(item.seq), rows)
    ctx.session.commit()        # the slice is kept even if a later item of the batch fails (and rolls back)
    return DONE, str(len(rows))


def _rows(ctx, job, parts):
    for seq in parts:
        for row in ctx.files.read_lines(job.id, _part(seq)):
            yield [_decode(v) for v in row]


def finish(ctx, job):
    """The parts, in order, into the result file; the parts deleted. Not committed here: the runner commits it with
    the job's end, so that a runner stopped in between leaves the parts for the next one."""
    parts = ctx.session.execute(select(BackgroundJobItem.seq).where(BackgroundJobItem.job_id == job.id)
                                .order_by(BackgroundJobItem.seq)).scalars().all()
    p = job.params
    name = f"result.{p['format']}"
    content = bytearray()           # the file once in memory (a join of the chunks would hold it twice)
    for chunk in FORMATS[p["format"]]([(p["title"], p["header"], _rows(ctx, job, parts))]):
        content += chunk.encode("utf-8") if isinstance(chunk, str) else chunk
    ctx.files.write(job.id, name, content)
    for seq in parts:
        ctx.files.remove(job.id, _part(seq))
    return name


register(Kind(KIND, LIST_EXPORTERS, run, finish, batch=2, lists_items=False))

"""The list of complaints that compliance and management work from (the web list, its exports, the API).

A complaint is found by a term: its number, policy or claim number exactly or, when nothing matches exactly, in
part (from PARTIAL_MIN characters); with `personal` (a term sent in a request body, never in a URL) also by the
customer's phone or ID number exactly and, for the roles that see personal data (`names`), by their name in
part (from NAME_MIN characters): a masked reader cannot use the list to learn who complained. A whole phone
number or resident ID is looked up exactly only (by index, also on SQLite). The list is
filtered by the period received (business dates), status, the coded dimensions of the analysis
(category, product line, channel: a group holds its sub-codes), the step a complaint waits at, overdue
(an open task past its due time, or the regulator's decision clock run out) and who handled it (held
an open task or completed one). Newest first. Indexed reads of complaint, process_instance and
human_task only, never a workflow; partial matches use trigram indexes: pg_trgm GIN indexes on PostgreSQL
(migration 0024), the FTS5 table `complaint_search` on SQLite (migration 0030).

Complaints the user must stand aside from (回避) are never in it."""
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Mapping, Optional

from sqlalchemy import bindparam, case, column, func, literal, literal_column, or_, select, table, union, union_all
from sqlalchemy.orm import aliased

from . import avoidance, contact_rules
from .analysis.dimensions import conditions as dimension_conditions
from .analysis.periods import Period, PeriodError, parse_date
from .models import SQLITE_SEARCH_INDEX, Complaint, HumanTask, ProcessInstance, User
from .queues import OPEN

PARTIAL_MIN = 3          # a shorter number matches exactly only (a trigram index needs three characters)
NAME_MIN = 2             # a Chinese name is often two characters
COUNT_CAP = 10_000       # beyond this a list's size is shown as "more than 10,000" (a count reads every row)
STATUSES = ("open", "closed")
TERM_MAX = 64
# The filters as query arguments (what a link, a saved filter and an export carry); the term is not one.
FILTER_ARGS = ("from", "to", "status", "category", "product_line", "channel", "step", "overdue", "handler")
DIMENSION_ARGS = ("category", "product_line", "channel")
TEXT_MAX = 100
EARLIEST, LATEST = date(1970, 1, 1), date.max - timedelta(days=1)


class ListError(ValueError):
    """A list request that cannot be answered: `code` and `params` for a translated message, `field` the
    argument at fault."""

    def __init__(self, code: str, message: str, field: str, **params):
        super().__init__(message)
        self.code, self.field, self.params = code, field, params


@dataclass(frozen=True)
class ListQuery:
    term: str = ""
    personal: bool = False                 # the term came in a body: phone and ID number match too
    names: bool = False                    # and the customer's name, in part (roles that see personal data)
    period: Optional[Period] = None
    status: Optional[str] = None
    dimensions: dict = field(default_factory=dict)     # {dimension: code} of app.analysis.dimensions
    step: Optional[str] = None             # element id of an open task
    overdue: bool = False
    handler: Optional[str] = None          # a username
    args: dict = field(default_factory=dict)           # the filters as given (FILTER_ARGS, none empty)

    def without_term(self) -> "ListQuery":
        return replace(self, term="", personal=False)


def from_args(args: Mapping, term: str = "", personal: bool = False, names: bool = False) -> ListQuery:
    """The list asked for by query arguments (FILTER_ARGS) and a term; ListError or PeriodError (from the
    dates) when something cannot be read. Either date may be left out: the period is open on that side."""
    raw = {name: str(args.get(name) or "").strip() for name in FILTER_ARGS}
    given = {name: value for name, value in raw.items() if value}
    for name, value in given.items():
        if len(value) > TEXT_MAX:
            raise ListError("too_long", f"{name} is longer than {TEXT_MAX} characters", name, limit=TEXT_MAX)
    term = (term or "").strip()
    if len(term) > TERM_MAX:
        raise ListError("too_long", f"the search term is longer than {TERM_MAX} characters", "q", limit=TERM_MAX)
    if raw["status"] and raw["status"] not in STATUSES:
        raise ListError("bad_status", f"status must be one of {', '.join(STATUSES)}", "status", value=raw["status"])
    if raw["overdue"] and raw["overdue"] not in ("1", "0", "true", "false", "on"):
        raise ListError("bad_flag", "overdue must be 1 or 0", "overdue", value=raw["overdue"])
    return ListQuery(term=term, personal=personal and bool(term), names=names and personal and bool(term),
                     period=_period(raw), status=raw["status"] or None,
                     dimensions={name: raw[name] for name in DIMENSION_ARGS if raw[name]},
                     step=raw["step"] or None, overdue=raw["overdue"] in ("1", "true", "on"),
                     handler=raw["handler"] or None, args=given)


def _period(raw) -> Optional[Period]:
    if not (raw["from"] or raw["to"]):
        return None
    # Clamped: a date at the calendar's ends (0001-01-01, 9999-12-31) has no UTC instant of its midnight.
    start = max(parse_date(raw["from"], "from"), EARLIEST) if raw["from"] else EARLIEST
    end = min(parse_date(raw["to"], "to"), LATEST) if raw["to"] else LATEST
    if start > end:
        raise PeriodError("reversed", f"the period starts ({start}) after it ends ({end})", start=start, end=end)
    return Period(start, end)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def is_identifier(term: str) -> bool:
    """A whole phone number or resident ID: looked up exactly, by index (nobody types a whole phone number to
    find part of something else)."""
    return contact_rules.stored_phone(term) is not None or contact_rules.document_problem("resident_id", term) is None


def term_condition(session, term: str, personal: bool, names: bool = False):
    """Complaints the term finds (see the module's docstring): its exact matches when there are any (index
    lookups: a whole number typed finds that complaint at once, on SQLite too), else also the partial ones.
    Whether there are any is part of the list's own statements, not a statement of its own, and the partial
    matches' trigram read is skipped when there are (a whole number's trigrams occur in every number)."""
    exact = _exact_ids(term, personal)
    partial = _partial_ids(term, personal, names, session.get_bind().dialect.name, exact)
    if partial is None:
        return or_(*_exact_conditions(Complaint, term, personal))
    return Complaint.id.in_(union_all(exact, partial))


# Aliases made once (an alias made per call costs SQLAlchemy a copy of every column): the exact matches' (in the
# list's UNION and in the partial read's guard) and the partial matches' own, never the same one (a guard on the
# partial read's own alias would correlate with its row).
_EXACT, _PARTIAL = aliased(Complaint, name="exact_match"), aliased(Complaint, name="partial_match")


def _exact_ids(term: str, personal: bool):
    return select(_EXACT.id).where(or_(*_exact_conditions(_EXACT, term, personal)))


def _exact_conditions(complaint, term: str, personal: bool) -> list:
    """`term` as a whole number of `complaint` (the entity or an alias of it); with `personal` also its phone
    or ID number, as typed and in the form it is stored in (app/contact_rules.py)."""
    exact = [complaint.number == term, complaint.policy_number == term, complaint.claim_number == term]
    if personal:
        exact += [complaint.phone.in_({term, contact_rules.stored_phone(term) or term}),
                  complaint.id_number.in_({term, contact_rules.compact_document(None, term)})]
    return exact


def _partial_ids(term: str, personal: bool, names: bool, dialect: str, exact):
    """The ids of the complaints with `term` in part of a number (or of the name), read only when `exact` (the
    ids of its exact matches) finds none; None when the term is not one to find in part."""
    if personal and is_identifier(term):     # a whole phone number or resident ID: exactly only
        return None
    searched = ["number", "policy_number", "claim_number"] if len(term) >= PARTIAL_MIN else []
    if personal and names and len(term) >= NAME_MIN:
        searched.append("customer_name")
    if not searched:
        return None
    if dialect == "sqlite" and len(term) >= PARTIAL_MIN:
        # SQLite tests a WHERE term with a subquery on every row it reads, but computes LIMIT once, before it reads
        # any: LIMIT 0 when there are exact matches (-1: no limit). A UNION's member takes no LIMIT of its own.
        guarded = _sqlite_search(term, searched).limit(case((exact.exists(), 0), else_=-1)).subquery()
        return select(guarded.c.rowid)
    # On PostgreSQL an uncorrelated EXISTS is an InitPlan, its NOT a one-time filter that skips the read (a
    # two-character name on SQLite: a scan either way).
    return select(_PARTIAL.id).where(~exact.exists(), or_(*(getattr(_PARTIAL, name).ilike(_like(term), escape="\\")
                                                           for name in searched)))


# SQLite's trigram index (migration 0030): an FTS5 table over these complaint columns, its rowid the complaint's id.
SQLITE_SEARCH = table(SQLITE_SEARCH_INDEX, column("rowid"))


def _sqlite_search(term: str, columns: list):
    """The ids of the complaints with `term` in any of `columns` (names), from SQLite's trigram index: a phrase
    of three or more characters matches where it occurs, ignoring case, as ILIKE '%term%' does (the quoted
    phrase takes every character literally, `%`, `_` and `*` too)."""
    phrase = '"' + term.replace('"', '""') + '"'
    match = "{" + " ".join(columns) + "} : " + phrase
    return select(SQLITE_SEARCH.c.rowid).where(
        literal_column(SQLITE_SEARCH_INDEX).op("MATCH")(bindparam("search_match", match, unique=True)))


def _instances_with_tasks(*conditions):
    """Complaint numbers that have a task matching `conditions`, driven from the human_task indexes."""
    tasks = select(HumanTask.instance_id).where(*conditions)
    return select(ProcessInstance.business_key).where(ProcessInstance.id.in_(tasks))


def overdue_condition(now: datetime):
    # The overdue open tasks' complaints (a task's business key is its complaint's number) from the partial index
    # ix_human_task_open_due alone: through process_instance, PostgreSQL misjudged how many tasks are overdue
    # (their due times are mostly past: closed tasks) and read every instance (40 ms at 100,000 complaints).
    late_task = select(HumanTask.business_key).where(HumanTask.state == OPEN, HumanTask.due_at < now)
    return or_(Complaint.number.in_(late_task),
               (Complaint.decision_clock == "running") & (Complaint.decision_due_at < now))


def handler_condition(session, username: str):
    user_id = session.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
    if user_id is None:
        return literal(False)
    held = select(HumanTask.instance_id).where(HumanTask.state == "open", HumanTask.assignee_id == user_id)
    done = select(HumanTask.instance_id).where(HumanTask.completed_by_id == user_id)
    return Complaint.number.in_(select(ProcessInstance.business_key)
                                .where(ProcessInstance.id.in_(union(held, done).subquery().select())))


def where(session, user, q: ListQuery, dims: dict, now: datetime) -> list:
    """The SQL conditions on Complaint for `q` as `user` may see it; `dims`: app.analysis.dimensions()."""
    out = [avoidance.visible_to(user), *dimension_conditions(dims, q.dimensions)]
    if q.term:
        out.append(term_condition(session, q.term, q.personal, q.names))
    if q.period is not None:
        start, end = q.period.instants()
        out += [Complaint.received_at >= start, Complaint.received_at < end]
    if q.status:
        out.append(Complaint.status == q.status)
    if q.step:
        out.append(Complaint.number.in_(_instances_with_tasks(HumanTask.state == "open",
                                                              HumanTask.element_id == q.step)))
    if q.overdue:
        out.append(overdue_condition(now))
    if q.handler:
        out.append(handler_condition(session, q.handler))
    return out


NEWEST_FIRST = (Complaint.received_at.desc(), Complaint.id.desc())


def page(session, conditions: list, page_no: int, per_page: int, columns=None) -> dict:
    """{rows, total, capped, page, pages}: one page, newest first (Complaint objects, or rows of `columns`);
    `total` is exact up to COUNT_CAP and `capped` says there are more. A page within the cap is read first: one
    with fewer rows than `per_page` ends the list and so gives its size, with no count (most searches find less
    than a page). A full page, an empty one after the first, or one that reaches past COUNT_CAP costs a count;
    a page past the end is read again as the last one."""
    page_no, rows = max(page_no, 1), None
    before = (page_no - 1) * per_page
    if before < COUNT_CAP:              # past the cap the count comes first: no OFFSET beyond what it shows
        rows = _rows(session, conditions, page_no, per_page, columns)
    if rows is not None and (rows or page_no == 1) and len(rows) < per_page and before + len(rows) <= COUNT_CAP:
        total, capped = before + len(rows), False
    else:
        counted = count_upto(session, conditions, COUNT_CAP + 1)
        total, capped = min(counted, COUNT_CAP), counted > COUNT_CAP
    pages = max((total + per_page - 1) // per_page, 1)
    if rows is None or page_no > pages:
        page_no = min(page_no, pages)
        rows = _rows(session, conditions, page_no, per_page, columns)
    return {"rows": rows, "total": total, "capped": capped, "page": page_no, "pages": pages}


def _rows(session, conditions: list, page_no: int, per_page: int, columns) -> list:
    stmt = select(*(columns or (Complaint,))).where(*conditions).order_by(*NEWEST_FIRST) \
        .limit(per_page).offset((page_no - 1) * per_page)
    rows = session.execute(stmt)
    return rows.all() if columns else rows.scalars().all()


def count_upto(session, conditions: list, limit: int) -> int:
    """How many complaints match, counting no further than `limit` (a count reads every row it counts)."""
    counted = select(literal(1)).where(*conditions).limit(limit).subquery()
    return session.execute(select(func.count()).select_from(counted)).scalar_one()


def stream(session, conditions: list, columns, batch=2000):
    """Every matching row, newest first, read `batch` at a time (a server-side cursor on PostgreSQL)."""
    stmt = select(*columns).where(*conditions).order_by(*NEWEST_FIRST)
    for rows in session.execute(stmt.execution_options(yield_per=batch)).partitions():
        yield from rows

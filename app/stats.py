"""Where complaints are, per diagram element, from the flat tables (never the workflows): how many
wait there now, how many of those are overdue, and, over a period, how many finished the step and the
median time they spent on it.

Waiting and overdue are counted exactly over the open tasks (an index read bounded by the work open
now, not by history).

The period's figures come from daily summaries (`element_day_stat`): per process version, element and
UTC day, how many of its tasks finished that day and a histogram of the hours they took. A day that
is over never changes — a task finishes once, at the time it finishes — so a day is summarized from
human_task the first time a read needs it, and read from its summary from then on. A period of 90
days then reads about a thousand small rows instead of the 170,000 tasks that 100,000 complaints a
year finish in it (2.4 s on SQLite when they were all loaded into Python). The parts of the period
that are not whole past days (today, the first and last hours of a period that does not start or
end at midnight UTC) are read from human_task itself.

The counts are exact. A median taken from the summaries is approximate: their histogram's buckets are
10% wide and the median is interpolated inside its bucket, so it is off by less than a bucket and, over
thousands of tasks, usually by less than 1%; each element says whether its median is exact
(`median_exact`), and the pages say so. A median over tasks that all finished outside the summarized
days (e.g. today) is exact, and so is every median of a period in which no more than 20,000 tasks
finished: such a period is read from human_task alone. Each worker keeps the merged summaries of the
periods it read last (they never change): a page read again costs the open tasks and today's.

Which tasks are the process's: a human task's element id tells its process (the deployment puts every
human task of a version in its `lanes`), unless another process has an element of that id too; only
such shared elements, and the figures of one version, are checked against the task's instance — a
lookup per task that cost SQLite more than the rest of the read (its instance rows are large).

A completion counts for the version its instance ran on when its day was summarized: a migration
moves running complaints to another version, not the days already summarized."""
import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from statistics import median
from typing import Optional

from sqlalchemy import case, extract, func, select, union_all

from .extensions import upsert_insert
from .models import ElementDayStat, HumanTask, ProcessInstance, ProcessVersion

# A day is summarized once it has been over for this long: a change that began before midnight and
# commits after it still lands in its day.
SETTLE = timedelta(hours=1)
BUCKET_RATIO = 1.1          # each histogram bucket is 10% wider than the one below it
DAY_DONE = ""               # element_id of the row that marks a (version, day) as summarized
# A period with no more finished tasks than this is read exactly (a few tens of milliseconds at most).
EXACT_ROWS = 20_000
# Merged summaries kept per database (engine), the most recently used periods (app.stats.merged_summaries).
_MERGED = weakref.WeakKeyDictionary()
MERGED_KEPT = 32
_FIRST_DONE = weakref.WeakKeyDictionary()      # engine -> when its first task finished (app.stats.first_done)
# The statuses of an instance whose tasks may be open (the runtime closes every open task of an
# instance when it completes): reading only those keeps the filter off the finished complaints.
UNFINISHED = ("running", "error")


# ---- histograms of hours -----------------------------------------------------------------------------
def bucket_of(hours: float) -> int:
    """0 for under a minute; k >= 1 for [RATIO^(k-1), RATIO^k) minutes."""
    minutes = hours * 60
    if minutes < 1:
        return 0
    return 1 + int(math.log(minutes) / math.log(BUCKET_RATIO))


def bucket_bounds(k: int) -> tuple[float, float]:
    """The [low, high) hours of bucket k."""
    if k == 0:
        return 0.0, 1 / 60
    return BUCKET_RATIO ** (k - 1) / 60, BUCKET_RATIO ** k / 60


def histogram_median(counts: dict) -> float:
    """The median of a histogram {bucket: count}, interpolated inside its bucket (geometrically, as the
    buckets grow geometrically; linearly in the first)."""
    total = sum(counts.values())
    rank, seen = total / 2, 0
    for k in sorted(counts):
        if seen + counts[k] >= rank:
            share = (rank - seen) / counts[k]
            low, high = bucket_bounds(k)
            return low + share * (high - low) if k == 0 else low * (high / low) ** share
        seen += counts[k]
    raise ValueError("empty histogram")


@dataclass
class Durations:
    """The hours the tasks of one element took over a period: exact where read from human_task, as
    bucket counts where read from a day's summary."""
    exact: list = field(default_factory=list)
    buckets: dict = field(default_factory=dict)
    summarized: int = 0

    def add_summary(self, completed: int, histogram: dict):
        """Add a day's summary; its buckets keep their JSON (string) keys until the median needs them."""
        self.summarized += completed
        buckets = self.buckets
        for k, n in histogram.items():
            buckets[k] = buckets.get(k, 0) + n

    @property
    def count(self) -> int:
        return len(self.exact) + self.summarized

    def median(self) -> tuple[float, bool]:
        """(median hours, whether it is exact)."""
        if not self.summarized:
            return median(self.exact), True
        counts = {int(k): n for k, n in self.buckets.items()}
        for hours in self.exact:
            k = bucket_of(hours)
            counts[k] = counts.get(k, 0) + 1
        return histogram_median(counts), False


# ---- which tasks are the process's ----------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """The tasks a read counts: those of the instances of `version_ids`. A task of an element in
    `by_element` is known to be in scope by its element id alone; one of an element in `by_instance` (or
    any task, with `every_by_instance`) is checked against its instance."""
    process_id: str
    version_ids: tuple
    by_element: tuple = ()
    by_instance: tuple = ()
    every_by_instance: bool = False


def scope_of(session, process_id, version_id=None) -> Scope:
    """The scope of a process (all its versions), or of one version of it."""
    if version_id is not None:
        return Scope(process_id, (version_id,), every_by_instance=True)
    versions = session.execute(select(ProcessVersion.id, ProcessVersion.process_id, ProcessVersion.lanes)).all()
    mine = set().union(*(v.lanes for v in versions if v.process_id == process_id))
    others = set().union(*(v.lanes for v in versions if v.process_id != process_id))
    return Scope(process_id, tuple(v.id for v in versions if v.process_id == process_id),
                 by_element=tuple(sorted(mine - others)), by_instance=tuple(sorted(mine & others)))


def _in_scope(query, scope: Scope, instances):
    """The queries that count `query`'s tasks in scope: by element alone, and through `instances(query)`
    (which adds the instance check) for the rest. One query in the usual case (no shared element)."""
    if scope.every_by_instance:
        return [instances(query)]
    out = [query.where(HumanTask.element_id.in_(scope.by_element))] if scope.by_element else []
    if scope.by_instance:
        out.append(instances(query.where(HumanTask.element_id.in_(scope.by_instance))))
    return out


# ---- SQL helpers (the reads of many rows go through the connection: ORM row handling cost more than
# SQLite's own work) -------------------------------------------------------------------------------------
def _hours(dialect: str):
    """completed_at - created_at in hours, computed by the database (no datetime per row in Python)."""
    if dialect == "postgresql":
        return extract("epoch", HumanTask.completed_at - HumanTask.created_at) / 3600.0
    return (func.julianday(HumanTask.completed_at) - func.julianday(HumanTask.created_at)) * 24.0


def _utc_day(dialect: str):
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", HumanTask.completed_at))
    return func.date(HumanTask.completed_at)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _insert_ignoring_duplicates(session, rows):
    """Insert summary rows; a row another read wrote meanwhile is left as it is (same content)."""
    insert, table = upsert_insert(session.get_bind()), ElementDayStat.__table__
    for start in range(0, len(rows), 1000):
        session.execute(insert(table).on_conflict_do_nothing(), rows[start:start + 1000])


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


# ---- the period: whole past days from their summaries, the rest exactly ------------------------------
def forget(bind):
    """Drop what is kept of this database (engine) after its rows went (e.g. emptied between tests)."""
    _MERGED.pop(bind, None)
    _FIRST_DONE.pop(bind, None)


def first_done(session) -> Optional[datetime]:
    """When the first task of this database finished; once there is one, kept per database (engine): it does
    not change. Were it kept too early (old tasks purged) some empty days would be summarized; too late (a change
    that committed after another's read), the days before it are read exactly, not from summaries."""
    bind = session.get_bind()
    first = _FIRST_DONE.get(bind)
    if first is None:
        first = session.execute(select(func.min(HumanTask.completed_at))
                                .where(HumanTask.state == "completed")).scalar()
        if first is not None:
            _FIRST_DONE[bind] = first
    return first


def whole_days(session, since: datetime, until: datetime, now: datetime) -> list[date]:
    """The UTC days inside [since, until) that were over by `now - SETTLE`, from the first day any task
    finished (a period reaching back before the data summarizes nothing there)."""
    done = first_done(session)
    if done is None:
        return []
    start = max(since, _day_start(done.date()))
    first = start.date() if start == _day_start(start.date()) else start.date() + timedelta(1)
    last = min(until, now - SETTLE).date() - timedelta(1)      # the last day over by then
    return [first + timedelta(n) for n in range((last - first).days + 1)] if last >= first else []


def _edges(since, until, days) -> list[tuple[datetime, datetime]]:
    """The parts of [since, until) outside the whole days."""
    if not days:
        return [(since, until)] if since < until else []
    edges = [(since, _day_start(days[0])), (_day_start(days[-1] + timedelta(1)), until)]
    return [(start, end) for start, end in edges if start < end]


def summarize(session, version_ids: list, days: list[date]):
    """Write the summaries of `days` for `version_ids` that are not there yet (one read of human_task over
    the span of the missing days), and commit them."""
    done = set(session.execute(
        select(ElementDayStat.version_id, ElementDayStat.day).where(
            ElementDayStat.version_id.in_(version_ids), ElementDayStat.element_id == DAY_DONE,
            ElementDayStat.day >= days[0], ElementDayStat.day <= days[-1])).all())
    missing = {(v, d) for v in version_ids for d in days if (v, d) not in done}
    if not missing:
        return
    dialect = session.get_bind().dialect.name
    first, last = min(d for _, d in missing), max(d for _, d in missing)
    rows = session.connection().execute(
        select(ProcessInstance.version_id, HumanTask.element_id, _utc_day(dialect), _hours(dialect))
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(HumanTask.state == "completed", HumanTask.completed_at >= _day_start(first),
               HumanTask.completed_at < _day_start(last + timedelta(1)),
               ProcessInstance.version_id.in_(sorted({v for v, _ in missing}))))
    summaries = {}
    for version_id, element_id, day, hours in rows:
        day = _as_date(day)
        if (version_id, day) in missing:
            entry = summaries.setdefault((version_id, day, element_id), {"completed": 0, "histogram": {}})
            entry["completed"] += 1
            k = str(bucket_of(max(float(hours), 0.0)))
            entry["histogram"][k] = entry["histogram"].get(k, 0) + 1
    out = [{"version_id": v, "day": d, "element_id": e, **entry} for (v, d, e), entry in summaries.items()]
    out += [{"version_id": v, "day": d, "element_id": DAY_DONE, "completed": 0, "histogram": {}} for v, d in missing]
    _insert_ignoring_duplicates(session, out)
    session.commit()


def merged_summaries(session, version_ids: tuple, days: list[date]) -> dict:
    """element id -> (tasks finished, {bucket: count}) over the summaries of `days`, written first where
    missing. Kept per database (engine) for the next reads of the same days: a day's summary never
    changes once written, and merging a quarter's (some 700 rows) costs more than the rest of a read."""
    kept = _MERGED.setdefault(session.get_bind(), OrderedDict())
    key = (tuple(version_ids), days[0], days[-1])
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    summarize(session, list(version_ids), days)
    merged = {}
    for element_id, completed, histogram in session.connection().execute(
            select(ElementDayStat.element_id, ElementDayStat.completed, ElementDayStat.histogram).where(
                ElementDayStat.version_id.in_(version_ids), ElementDayStat.day >= days[0],
                ElementDayStat.day <= days[-1], ElementDayStat.element_id != DAY_DONE)):
        spent = merged.get(element_id)
        if spent is None:
            spent = merged[element_id] = Durations()
        spent.add_summary(completed, histogram)
    kept[key] = {element_id: (spent.summarized, spent.buckets) for element_id, spent in merged.items()}
    while len(kept) > MERGED_KEPT:
        kept.popitem(last=False)
    return kept[key]


def _add_exact(session, scope: Scope, spans: list, durations: dict):
    """The hours of every task in scope that finished in one of `spans` ([start, end) each), from the index alone
    where the element tells the process: one statement (a UNION ALL of each span's reads)."""
    hours_of = _hours(session.get_bind().dialect.name)

    def of_instances(query):
        return query.join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id) \
            .where(ProcessInstance.version_id.in_(scope.version_ids))
    reads = [read for start, end in spans for read in _in_scope(
        select(HumanTask.element_id, hours_of).where(HumanTask.state == "completed", HumanTask.completed_at >= start,
                                                     HumanTask.completed_at < end), scope, of_instances)]
    if not reads:                   # a process without human tasks
        return
    hours = {}
    for element_id, value in session.connection().execute(reads[0] if len(reads) == 1 else union_all(*reads)):
        found = hours.get(element_id)
        if found is None:
            found = hours[element_id] = []
        found.append(value)
    for element_id, values in hours.items():
        spent = durations.get(element_id)
        if spent is None:
            spent = durations[element_id] = Durations()
        spent.exact += [max(float(value), 0.0) for value in values]


def _period(session, scope: Scope, since, until, now) -> dict:
    """element id -> Durations over [since, until): whole past days from their summaries and the rest
    exactly; all of it exactly when it holds no more than EXACT_ROWS finished tasks."""
    days = whole_days(session, since, until, now)
    durations = {}
    if days:
        for element_id, (completed, buckets) in merged_summaries(session, scope.version_ids, days).items():
            durations[element_id] = Durations()
            durations[element_id].add_summary(completed, buckets)
    edges = _edges(since, until, days)
    if edges:
        _add_exact(session, scope, edges, durations)
    if days and sum(spent.count for spent in durations.values()) <= EXACT_ROWS:
        durations = {}
        _add_exact(session, scope, [(since, until)], durations)
    return durations


# ---- the figures -------------------------------------------------------------------------------------
def _waiting(session, scope: Scope, now) -> dict:
    """element id -> (waiting, overdue) over the open tasks in scope."""
    waiting = select(HumanTask.element_id, func.count(), func.sum(case((HumanTask.due_at < now, 1), else_=0))) \
        .where(HumanTask.state == "open").group_by(HumanTask.element_id)

    def of_instances(query):
        unfinished = select(ProcessInstance.id).where(ProcessInstance.process_id == scope.process_id,
                                                      ProcessInstance.status.in_(UNFINISHED),
                                                      ProcessInstance.version_id.in_(scope.version_ids))
        return query.where(HumanTask.instance_id.in_(unfinished))
    out = {}
    for query in _in_scope(waiting, scope, of_instances):
        for element_id, count, overdue in session.connection().execute(query):
            out[element_id] = (count, int(overdue or 0))
    return out


def element_stats(session, process_id: str, now: datetime, since: datetime, until: datetime,
                  version_id=None) -> Optional[dict]:
    """element id -> {"waiting", "overdue", "completed", "median_hours", "median_exact"} for the instances
    of `process_id` (of its version `version_id` only, if given): waiting and overdue now, and the tasks
    finished in [since, until); None when no version of the process is deployed (not asked with `version_id`).
    May write and commit the summaries of days no read needed before."""
    scope = scope_of(session, process_id, version_id)
    if not scope.version_ids:
        return None
    out = {element_id: {"waiting": count, "overdue": overdue, "completed": 0, "median_hours": None,
                        "median_exact": True}
           for element_id, (count, overdue) in _waiting(session, scope, now).items()}
    durations = _period(session, scope, since, until, now)
    for element_id, spent in durations.items():
        if spent.count:
            row = out.setdefault(element_id, {"waiting": 0, "overdue": 0, "completed": 0, "median_hours": None,
                                              "median_exact": True})
            hours, exact = spent.median()
            row.update(completed=spent.count, median_hours=round(hours, 2), median_exact=exact)
    return out

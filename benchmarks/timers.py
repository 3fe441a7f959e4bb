"""Timers at volume (issue 10, target 6): a backlog of due timers fired through the transactional path,
printed (never asserted).

    .venv/bin/python benchmarks/timers.py              # 2 x 10,000 complaints; + PostgreSQL if TEST_POSTGRES_URL
    .venv/bin/python benchmarks/timers.py --n 1000     # a smaller backlog (the figures per instance still hold)
    .venv/bin/python benchmarks/timers.py --quick      # smoke run: 2 x 10 complaints per backend
    .venv/bin/python benchmarks/timers.py --profile    # + cProfile of one scheduler pass (SQLite)
    .venv/bin/python benchmarks/timers.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres

For each backend (a temp-file SQLite database; for PostgreSQL its own database
`complaints_bench_timers_<pid>`, created and dropped from the admin URL), migrated and deployed as
benchmarks/throughput.py does:

Seeding: two cohorts of N complaints registered for real (app.complaints.register, the API's own
path: complaint row, number, workflow started, human tasks, deadlines, audit), the first with the
clock held at Wednesday 10:00, the second at 11:00 (time-machine). "seeding s" and "ms per
registration" time this alone.

Wave 1, one scheduler: the clock moves one second past the first cohort's initial-review deadline
(24 hours); one scheduler process (a child process, clock held there) calls the real
app.scheduler.fire_due_timers until a pass fires nothing. Figures: seconds for the whole backlog
(wall clock, first pass to last), instances/s, ms per instance, CPU s of that process
(time.process_time) and CPU ms per instance, SQL statements per fired instance (a
before_cursor_execute counter; an executemany counts once; SQLite's BEGIN IMMEDIATE, the write lock each
firing's transaction begins with, is transaction control as COMMIT is, and not counted).

Wave 2, two schedulers: the clock moves past the second cohort's review deadline (the same work
again); two scheduler processes start together on the same database and run passes until nothing
is due. Figures: total seconds, how many instances each fired, how many collisions each saw (an
instance the other changed while this one worked on it: lost work; SQLite has no row locks), and
the proof of no double firing: per deadline exactly one `deadline_missed` audit event and one
missed `deadline` row, per instance exactly one follow-up task, nothing left due. With --quick the
schedulers are threads of the benchmark's process (each its own app and engine), to save the
process start-ups; CPU s is then the whole process's.

EXPLAIN: the due-instance query exactly as the runtime sends it (captured from the engine, with
its parameters) while the whole backlog is due, under SQLite's EXPLAIN QUERY PLAN and PostgreSQL's
EXPLAIN (after ANALYZE); it should be a range scan on ix_process_instance_next_timer_at (PostgreSQL
prefers a sequential scan of a table of a few dozen rows, as in --quick).

The load average (1/5/15 min) is printed with each figure: the development machine is a shared
2-core box. Target: 10,000 due timers in <= 30 s on one scheduler (i.e. <= 3 ms per instance),
printed as met / not met at the measured rate per instance.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import throughput  # noqa: E402
import time_machine  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import complaints, create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import AuditEvent, Deadline, HumanTask, ProcessInstance, User  # noqa: E402
from app.scheduler import fire_due_timers  # noqa: E402

# Its own database, never the throughput benchmark's nor another run's (the smoke test may run beside one).
throughput.PG_DB_NAME = f"complaints_bench_timers_{os.getpid()}"
SH = timezone(timedelta(hours=8))
REGISTERED_AT = datetime(2026, 11, 25, 10, 0, tzinfo=SH)      # a Wednesday; the review deadline is 24 h later
SECOND_COHORT = timedelta(hours=1)           # the two schedulers' backlog: registered an hour after the first
REVIEW_DEADLINE = timedelta(hours=24)
TARGET_N, TARGET_S = 10_000, 30.0
INDEX = "ix_process_instance_next_timer_at"


def load_average() -> str:
    return "load {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())


# ---- seeding --------------------------------------------------------------------------------------
def seed(app, people, n, at=REGISTERED_AT, first=0) -> dict:
    """Register n complaints for real at `at`; returns the seconds it took."""
    with time_machine.travel(at, tick=False), app.app_context():
        runtime = app.extensions["runtime"]
        user = db.session.get(User, people["customer_service"].user_id)
        started = time.perf_counter()
        for i in range(n):
            payload = {**throughput.complaint_payload(first + i), "received_at": at.isoformat()}
            complaints.register(runtime, db.session, payload, user, app.config["COMPLAINT_PROCESS"],
                                app.config["COMPLAINT_NUMBER_FORMAT"])
        seconds = time.perf_counter() - started
        analyze(app)
        db.session.remove()
    return {"n": n, "seconds": seconds, "ms_each": 1000 * seconds / n, "load": load_average()}


def analyze(app):
    """Fresh planner statistics (both databases have ANALYZE), as a running system would have."""
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def wave_moment(app, registered_at) -> tuple[datetime, dict]:
    """One second after the initial-review deadline of the complaints registered at `registered_at`,
    and the open deadlines due by then, per element (that cohort's review deadlines, nothing else)."""
    moment = registered_at + REVIEW_DEADLINE + timedelta(seconds=1)
    with app.app_context():
        due = dict(db.session.execute(select(Deadline.element_id, func.count()).where(
            Deadline.state == "open", Deadline.due_at <= moment).group_by(Deadline.element_id)).all())
        db.session.remove()
    return moment, due


# ---- one scheduler process ------------------------------------------------------------------------
class Collisions:
    """Counts the scheduler's 'changed concurrently' log lines (an instance another scheduler changed
    while this one worked on it: wasted work)."""

    def __init__(self):
        import logging
        self.n = 0
        handler = logging.Handler(logging.INFO)
        handler.emit = self._emit
        logger = logging.getLogger("app.scheduler")
        logging.disable(logging.NOTSET)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)

    def _emit(self, record):
        if "changed concurrently" in record.getMessage():
            self.n += 1
        elif record.levelno >= 30:
            print(f"[scheduler] {record.getMessage()}", file=sys.stderr, flush=True)


def run_worker(url, moment_iso) -> dict:
    """A scheduler process: passes of fire_due_timers until one fires nothing, the clock held at
    `moment`. Waits for a line on stdin before the first pass (so two start together)."""
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    throughput.quiet_logging()
    collisions = Collisions()
    with app.app_context():
        engine = db.engine
        db.session.execute(select(1))             # connect before the start line
        db.session.remove()
    print("ready", flush=True)
    sys.stdin.readline()
    return scheduler_passes(app, engine, datetime.fromisoformat(moment_iso), collisions)


def scheduler_passes(app, engine, moment, collisions) -> dict:
    """fire_due_timers passes until one fires nothing, the clock held at `moment`."""
    with time_machine.travel(moment, tick=False), throughput.StatementCounter(engine) as counter:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        fired, passes = 0, 0
        while True:
            passes += 1
            changed = fire_due_timers(app)
            fired += changed
            if changed == 0:
                break
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"fired": fired, "passes": passes, "seconds": wall, "cpu_s": cpu, "statements": counter.n,
            "collisions": collisions.n, "load": load_average()}


def run_schedulers_in_threads(url, moment, count) -> tuple[float, list[dict]]:
    """--quick: the schedulers as threads of this process, each with its own app and engine (no
    process start-up; CPU s is then the whole process's)."""
    import threading
    apps = [create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url) for _ in range(count)]
    throughput.quiet_logging()
    collisions = Collisions()
    engines = []
    for app in apps:
        with app.app_context():
            engines.append(db.engine)
    results = [None] * count
    barrier = threading.Barrier(count)

    def scheduler(i):
        barrier.wait()
        results[i] = scheduler_passes(apps[i], engines[i], moment, collisions)

    started = time.perf_counter()
    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(count)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - started
    for app, engine in zip(apps, engines):
        engine.dispose()
    return wall, results


@contextmanager
def workers(url, moment, count):
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, moment.isoformat()], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_schedulers(url, moment, count) -> tuple[float, list[dict]]:
    """`count` scheduler processes started together; (wall seconds until the last finished, results)."""
    with workers(url, moment, count) as procs:
        for proc in procs:
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise throughput.BenchError(f"a scheduler process did not start: {line!r}")
        started = time.perf_counter()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=3600)[0] for proc in procs]
        wall = time.perf_counter() - started
    for proc, out in zip(procs, outputs):
        if proc.returncode != 0:
            raise throughput.BenchError(f"a scheduler process failed ({proc.returncode}): {out[-2000:]}")
    return wall, [json.loads(out.strip().splitlines()[-1]) for out in outputs]


# ---- checks: every deadline fired once ---------------------------------------------------------
@dataclass
class WaveCheck:
    due_left: int               # running instances still due at the wave's moment
    missed_events: int          # deadline_missed audit events written by the wave
    missed_twice: int           # (instance, deadline) pairs with more than one deadline_missed event
    missed_rows: int            # deadline rows missed by the wave
    rows_twice: int             # (instance, deadline) pairs with more than one missed row by the wave
    tasks: int                  # human tasks the wave created
    tasks_twice: int            # (instance, element) pairs with more than one task created by the wave
    task_elements: dict

    @property
    def once(self) -> bool:
        return not (self.due_left or self.missed_twice or self.rows_twice or self.tasks_twice)


def check_wave(app, moment, expected) -> WaveCheck:
    """What the wave at `moment` wrote (the clock was held there, so its rows carry that time)."""
    with app.app_context():
        s = db.session
        due_left = s.execute(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.status == "running", ProcessInstance.next_timer_at <= moment)).scalar_one()
        events = select(AuditEvent.instance_id, AuditEvent.element_id, func.count().label("n")).where(
            AuditEvent.action == "deadline_missed", AuditEvent.at == moment).group_by(
            AuditEvent.instance_id, AuditEvent.element_id)
        event_counts = [r.n for r in s.execute(events)]
        rows = select(Deadline.instance_id, Deadline.element_id, func.count().label("n")).where(
            Deadline.state == "missed", Deadline.closed_at == moment).group_by(Deadline.instance_id,
                                                                             Deadline.element_id)
        row_counts = [r.n for r in s.execute(rows)]
        tasks = select(HumanTask.instance_id, HumanTask.element_id, func.count().label("n")).where(
            HumanTask.created_at == moment).group_by(HumanTask.instance_id, HumanTask.element_id)
        task_rows = s.execute(tasks).all()
        elements = dict(s.execute(select(HumanTask.element_id, func.count()).where(
            HumanTask.created_at == moment).group_by(HumanTask.element_id)).all())
        db.session.remove()
    check = WaveCheck(due_left, sum(event_counts), sum(n > 1 for n in event_counts), sum(row_counts),
                      sum(n > 1 for n in row_counts), sum(r.n for r in task_rows),
                      sum(r.n > 1 for r in task_rows), elements)
    if check.missed_events < expected:
        raise throughput.BenchError(f"only {check.missed_events} deadlines missed of {expected} due: {check}")
    return check


# ---- EXPLAIN of the due query, as sent --------------------------------------------------------
def captured_due_query(app, moment) -> tuple[str, object]:
    """(SQL, parameters) of the due-instance query exactly as the runtime sends it."""
    sent = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "next_timer_at" in statement and statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    with app.app_context(), time_machine.travel(moment, tick=False):
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            app.extensions["runtime"].due_instance_ids()
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
            db.session.remove()
    return sent[0]


def explain_due_query(app, moment) -> dict:
    statement, parameters = captured_due_query(app, moment)
    with app.app_context():
        dialect = db.engine.dialect.name
        prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    plan = [row[-1] if dialect == "sqlite" else row[0] for row in rows]
    joined = "\n".join(plan)
    if dialect == "sqlite":
        range_scan = bool(re.search(rf"SEARCH \w+ USING (COVERING )?INDEX {INDEX} \(next_timer_at<\?\)", joined))
    else:
        range_scan = f"Index Scan using {INDEX}" in joined and "Index Cond: (next_timer_at <=" in joined
    return {"sql": " ".join(statement.split()), "plan": plan, "range_scan": range_scan}


# ---- the engine's own share -------------------------------------------------------------------------
def engine_floor(app, moment, sample=50) -> dict:
    """CPU ms per firing spent in SpiffWorkflow alone, on `sample` of the due instances at `moment`
    (nothing written): load the workflow, fire its due timers, compact it and dump it, as a firing
    does. No database work can make a firing cheaper than this."""
    from app.engine import workflow
    from app.engine.scripting import make_script_engine
    with time_machine.travel(moment, tick=False), app.app_context():
        runtime = app.extensions["runtime"]
        rows = db.session.execute(select(ProcessInstance.workflow_json, ProcessInstance.version_id)
                                  .where(ProcessInstance.id.in_(runtime.due_instance_ids(limit=sample)))).all()
        calendar = runtime.calendar()
        versions = {v: runtime._version(v)[:3] for v in {version_id for _, version_id in rows}}
        spent = {"load": 0.0, "fire": 0.0, "compact_dump": 0.0}
        for workflow_json, version_id in rows:
            started = time.process_time()
            wf = workflow.load(workflow_json, *versions[version_id], make_script_engine([], calendar))
            loaded = time.process_time()
            workflow.fire_due_timers(wf)
            fired = time.process_time()
            workflow.dump(workflow.compact(wf))
            for part, took in (("load", loaded - started), ("fire", fired - loaded),
                               ("compact_dump", time.process_time() - fired)):
                spent[part] += took
        db.session.remove()
    n = max(len(rows), 1)
    parts = {part: 1000 * took / n for part, took in spent.items()}
    return {"n": len(rows), "cpu_ms": sum(parts.values()), **{f"{part}_ms": ms for part, ms in parts.items()}}


# ---- profile ----------------------------------------------------------------------------------------
def profile_pass(app, people, n=100, top=25) -> str:
    """cProfile one scheduler pass over n due instances (in this process), top functions by
    cumulative and by own time."""
    at = REGISTERED_AT + 2 * SECOND_COHORT          # a third cohort, after the benchmark's two
    seed(app, people, n + 1, at, first=10 ** 7)
    moment = at + REVIEW_DEADLINE + timedelta(seconds=1)
    profiler = cProfile.Profile()
    with time_machine.travel(moment, tick=False):
        with app.app_context():      # warm-up on one instance: the spec restored, statements compiled
            runtime = app.extensions["runtime"]
            runtime.fire_timers(runtime.due_instance_ids(limit=1)[0])
        profiler.enable()
        fired = fire_due_timers(app)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    # The app's own frames by cumulative time (where a firing spends it), then every frame by own time.
    stats.sort_stats("cumulative").print_stats(re.escape(str(ROOT / "app")), top)
    stats.sort_stats("tottime").print_stats(top)
    return f"(profiled pass fired {fired})\n" + out.getvalue()


# ---- driver -----------------------------------------------------------------------------------------
def run_backend(label, url, args) -> dict:
    print(f"\n== {label}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    app, people, _ = throughput.setup_backend(url)
    result = {}
    for cohort, at in (("seed", REGISTERED_AT), ("seed2", REGISTERED_AT + SECOND_COHORT)):
        result[cohort] = s = seed(app, people, args.n, at, first=len(result) * args.n)
        print(f"  seeding at {at.isoformat()}: {s['n']:,} complaints registered in {s['seconds']:.1f} s "
              f"({s['ms_each']:.1f} ms each; {s['load']})", flush=True)

    moment1, due1 = wave_moment(app, REGISTERED_AT)
    result["explain"] = explain_due_query(app, moment1)
    e = result["explain"]
    print(f"  due query: {e['sql']}\n  plan ({'range scan on ' + INDEX if e['range_scan'] else 'NOT a range scan'}):")
    for line in e["plan"]:
        print(f"    {line}")

    result["floor"] = f = engine_floor(app, moment1)
    print(f"  SpiffWorkflow alone, {f['n']} instances: {f['cpu_ms']:.1f} ms CPU each (load {f['load_ms']:.1f}, "
          f"fire {f['fire_ms']:.1f}, compact + dump {f['compact_dump_ms']:.1f})", flush=True)
    print(f"  wave 1 at {moment1.isoformat()}: due {due1}", flush=True)
    run = run_schedulers_in_threads if args.quick else run_schedulers
    wall, (one,) = run(url, moment1, 1)
    one.update(wall=wall, check=check_wave(app, moment1, args.n))
    result["one"] = one
    print(f"  one scheduler: {one['fired']:,} fired in {one['seconds']:.1f} s ({one['passes']} passes) = "
          f"{one['fired'] / one['seconds']:.1f}/s, {1000 * one['seconds'] / one['fired']:.1f} ms each, "
          f"CPU {one['cpu_s']:.1f} s ({1000 * one['cpu_s'] / one['fired']:.1f} ms each), "
          f"{one['statements'] / one['fired']:.1f} statements each; {one['load']}", flush=True)
    print(f"    fired once: {one['check'].once} {one['check']}", flush=True)

    moment2, due2 = wave_moment(app, REGISTERED_AT + SECOND_COHORT)
    print(f"  wave 2 at {moment2.isoformat()}: due {due2}", flush=True)
    wall, pair = run(url, moment2, 2)
    result["two"] = {"wall": wall, "workers": pair, "check": check_wave(app, moment2, args.n)}
    two = result["two"]
    fired = sum(w["fired"] for w in pair)
    print(f"  two schedulers: {fired:,} fired in {wall:.1f} s = {fired / wall:.1f}/s, "
          f"{1000 * wall / fired:.1f} ms each; split {' / '.join(str(w['fired']) for w in pair)}, "
          f"collisions {' / '.join(str(w['collisions']) for w in pair)}, "
          f"CPU {' + '.join(format(w['cpu_s'], '.1f') for w in pair)} s; {pair[-1]['load']}", flush=True)
    print(f"    fired once: {two['check'].once} {two['check']}", flush=True)
    if args.profile and label == "SQLite":
        print("\n### cProfile: one scheduler pass (SQLite)\n" + profile_pass(app, people), flush=True)
    with app.app_context():
        db.engine.dispose()
    return result


def per_instance_target(one) -> tuple[float, bool]:
    """Seconds 10,000 instances would take at this run's rate, and whether that meets the target."""
    projected = TARGET_N * one["seconds"] / one["fired"]
    return projected, projected <= TARGET_S


def verdict(one) -> str:
    projected, met = per_instance_target(one)
    return f"{projected:.0f} ({'met' if met else 'not met'})"


def table(results: dict) -> str:
    labels = [label for label, r in results.items() if r is not None]
    lines = ["| Timers at volume | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]

    def row(name, fn):
        lines.append(f"| {name} | " + " | ".join(fn(results[label]) for label in labels) + " |")

    row("backlog (complaints registered for real)", lambda r: f"{r['seed']['n']:,}")
    row("seeding s (ms per registration)", lambda r: f"{r['seed']['seconds']:.0f} ({r['seed']['ms_each']:.1f})")
    row("one scheduler: s for the whole backlog", lambda r: f"{r['one']['seconds']:.1f}")
    row("  instances/s", lambda r: f"{r['one']['fired'] / r['one']['seconds']:.1f}")
    row("  ms per instance (wall / CPU)", lambda r: f"{1000 * r['one']['seconds'] / r['one']['fired']:.1f} / "
        f"{1000 * r['one']['cpu_s'] / r['one']['fired']:.1f}")
    row("  CPU s", lambda r: f"{r['one']['cpu_s']:.1f}")
    row("  of which SpiffWorkflow alone, ms CPU per instance: load + fire + compact and dump",
        lambda r: f"{r['floor']['cpu_ms']:.1f} = {r['floor']['load_ms']:.1f} + {r['floor']['fire_ms']:.1f} + "
                  f"{r['floor']['compact_dump_ms']:.1f}")
    row("  SQL statements per fired instance", lambda r: f"{r['one']['statements'] / r['one']['fired']:.1f}")
    row("  every deadline fired once", lambda r: "yes" if r["one"]["check"].once else "NO")
    row("  load average (1/5/15 min)", lambda r: r["one"]["load"].removeprefix("load "))
    row("two schedulers: s for the whole backlog", lambda r: f"{r['two']['wall']:.1f}")
    row("  instances/s", lambda r: f"{sum(w['fired'] for w in r['two']['workers']) / r['two']['wall']:.1f}")
    row("  split (fired per process)", lambda r: " / ".join(str(w["fired"]) for w in r["two"]["workers"]))
    row("  collisions (work lost to the other)",
        lambda r: " / ".join(str(w["collisions"]) for w in r["two"]["workers"]))
    row("  every deadline fired once, no task twice, none left due",
        lambda r: "yes" if r["two"]["check"].once else "NO")
    row("  load average", lambda r: r["two"]["workers"][-1]["load"].removeprefix("load "))
    row("due query: range scan on " + INDEX, lambda r: "yes" if r["explain"]["range_scan"] else "NO")
    row(f"10,000 at this rate, s (target ≤ {TARGET_S:.0f})", lambda r: verdict(r["one"]))
    return "\n".join(lines)


def main(argv=None):
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(run_worker(sys.argv[2], sys.argv[3])), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="complaints per backlog: one for one scheduler, one more for "
                                              "two (default 10,000; quick: 10)")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL); a database of its own is "
                             "created from it and dropped afterwards")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 x 10 complaints per backend")
    parser.add_argument("--profile", action="store_true", help="also cProfile one scheduler pass on SQLite")
    args = parser.parse_args(argv)
    args.n = args.n or (10 if args.quick else TARGET_N)

    t0 = time.perf_counter()
    results = {}
    if not args.postgres_only:
        with throughput.sqlite_bench_url("complaints-timers-") as url:
            results["SQLite"] = run_backend("SQLite", url, args)
    if args.postgres_url and not args.sqlite_only:
        with throughput.postgres_bench(args.postgres_url) as url:
            results["PostgreSQL"] = run_backend("PostgreSQL", url, args)
    else:
        print("\n== PostgreSQL: skipped (pass --postgres-url URL or set TEST_POSTGRES_URL)")

    print(f"\n## Timers at volume (total {time.perf_counter() - t0:.0f} s)\n")
    print(table(results))
    print(f"\nTarget: {TARGET_N:,} due timers in ≤ {TARGET_S:.0f} s on one scheduler "
          f"(≤ {1000 * TARGET_S / TARGET_N:.0f} "
          "ms per instance).")
    for label, r in results.items():
        print(f"  {label}: {r['one']['fired']:,} in {r['one']['seconds']:.1f} s; {TARGET_N:,} at this rate "
              f"{verdict(r['one'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

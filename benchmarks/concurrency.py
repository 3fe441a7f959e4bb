"""Issue 10, target 3 ("No global hot row"), measured: does the app scale with gunicorn workers on
PostgreSQL, and does any change wait on another complaint's change? Figures are printed, never asserted.

    .venv/bin/python benchmarks/concurrency.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python benchmarks/concurrency.py            # the URL from $TEST_POSTGRES_URL
    .venv/bin/python benchmarks/concurrency.py --quick    # smoke run (CI): 3 s per phase, about 20 s in all
    .venv/bin/python benchmarks/concurrency.py --seconds 60 --interval 10
    .venv/bin/python benchmarks/concurrency.py --n 100    # 100 complaints per phase instead of a duration

PostgreSQL only (SQLite has one writer by design); without a URL it says so and exits 0. Setup as
benchmarks/peer.py does it: a database of its own (`complaints_bench_concurrency_<pid>`, created from the
admin URL and dropped afterwards), the real migrations, processes/ deployed, and one user per working role
for each client (4 clients = 4 customer-service users, ...: different handlers, as in an office). Two
gunicorn servers over that database, booted while it is migrated: one with 1 sync worker, one with 4,
both serving benchmarks/peer_server.py's app (the real app + its SQL counter) through `tagged_app()`
below, which names the complaint each request works on in its PostgreSQL connection's
application_name (the client sends it in a header; one `SELECT set_config(...)` per pool checkout).

Two phases: 1. 1 worker x 1 client thread;  2. 4 workers x 4 client threads.
Each client thread walks its own complaints, one after the other and without pause, through
throughput.py's happy path over real HTTP: register + the 6 completions (initial_review ... archive),
every response checked. Once every client has walked one complaint whole (--warm-up; none with --quick), the measured
window opens for T seconds (default 30, --quick 3) or until --n complaints' worth of calls; the
clients stop between two calls when it closes (the last complaints stay half done).

Printed per phase (and the machine's load average at its start and end: the 2 cores are shared with
other work, so every figure moves with it):
- complaints/s: registrations + completions that ended inside the window, / 7, / the window (and how
  many complaints were walked whole inside it);
  and the ratio phase 2 / phase 1 against the target (>= 1.8x), "met" or "NOT met".
- median / p95 ms per call type (register, complete; "list tasks" only if a next task was not in
  the previous response and had to be looked up in the queue).
- CPU, in cores busy over the window (2.0 = both cores): the gunicorn workers (utime + stime from
  /proc/<pid>/stat), the PostgreSQL backends of this database (their pids from pg_stat_activity, CPU from
  /proc), PostgreSQL's background processes (shared by the whole server), this client process (its
  threads and the sampler), and the whole machine (/proc/stat: everyone's work, other sessions' too).
  Server CPU ms per complaint = workers + backends. If phase 2 keeps the CPU per complaint of phase 1
  and the machine is busy, it is CPU-bound; lock waits would show below instead.
- Lock waits: a thread samples pg_stat_activity every --interval ms (20) for backends of this database
  waiting on a heavyweight lock (wait_event_type = 'Lock'); for each it reads pg_blocking_pids(), its
  pg_locks rows (locktype, relation::regclass; for a row lock, the tuple lock it holds or waits for names
  the row) and looks that row up by ctid to find whose it is (process_instance.business_key,
  audit_chain.chain, complaint.number, ...). Each waiting backend in each sample is one sample, classed:
    same complaint           the row belongs to the complaint the waiting request works on (two requests
                             for one complaint; with one client per complaint there should be none);
    another complaint's rows the row belongs to another complaint (the target: zero);
    other                    rows no complaint owns (complaint_counter: the day's number sequence, a
                             known shared row at registration; the system audit chain), relation or
                             extension locks, ... reported by relation.
  A row already released when it is looked up, or a wait on a unique key (no tuple lock), is classed
  by the two requests' complaints (their application_name) and the statement's table.
  Estimated wait = samples x the mean sampling interval. Printed: samples per class and per relation,
  the estimated waiting per registration for complaint_counter, and the top blocked statements (first
  120 characters, parameters are $n placeholders) with what the blocker last ran.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import peer  # noqa: E402
import psycopg  # noqa: E402
import throughput  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.extensions import db  # noqa: E402

BenchError = throughput.BenchError
# Its own database, never another benchmark's nor another run's (peer.py set its own name on import).
throughput.PG_DB_NAME = f"complaints_bench_concurrency_{os.getpid()}"

PHASES = ((1, 1), (4, 4))               # (gunicorn sync workers, client threads)
RATIO_TARGET = 1.8
CALLS_PER_COMPLAINT = 1 + len(throughput.HAPPY_PATH)
CALL_TYPES = ("register", "complete", "list tasks")
TAG_HEADER = "X-Bench-Tag"
READY_DIR = "BENCH_READY_DIR"
SAME, CROSS, OTHER = "same complaint", "another complaint's rows", "other"
CLASSES = (SAME, CROSS, OTHER)


# ---- server side: runs in each gunicorn worker ---------------------------------------------------------
_TAG = ["bench:idle"]          # the request this (sync, single-threaded) worker is serving


def clean_tag(raw: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9:._-]", "", raw)[:60]
    return tag or "bench:untagged"


def _name_connection(dbapi_connection, _record, _proxy):
    """Pool checkout: show the request's complaint as the backend's application_name."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT set_config('application_name', %s, false)", (_TAG[0],))
    finally:
        cursor.close()


class TagMiddleware:
    """Takes the complaint tag from the request's X-Bench-Tag header, for _name_connection."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        _TAG[0] = clean_tag(environ.get("HTTP_X_BENCH_TAG", ""))
        try:
            return self.app(environ, start_response)
        finally:
            _TAG[0] = "bench:idle"


def tagged_app():
    """gunicorn's app factory (`concurrency:tagged_app()`): peer_server's app (the real app + the SQL
    counter), each connection named after the request's complaint; touches $BENCH_READY_DIR/<pid>
    once loaded, so that the benchmark knows when every worker is up."""
    import peer_server
    with peer_server.app.app.app_context():
        event.listen(db.engine.pool, "checkout", _name_connection)
    if os.environ.get(READY_DIR):
        Path(os.environ[READY_DIR], str(os.getpid())).touch()
    return TagMiddleware(peer_server.app)


# ---- the gunicorn servers --------------------------------------------------------------------------------
@dataclass
class Server:
    workers: int
    process: subprocess.Popen
    client_port: int
    log: Path
    ready_dir: Path
    worker_pids: list = field(default_factory=list)


def spawn(url, workers, workdir: Path) -> Server:
    """gunicorn with `workers` sync workers serving tagged_app() on a free loopback port."""
    port = peer.free_port()
    log, ready_dir = workdir / f"gunicorn-{workers}w.log", workdir / f"ready-{workers}w"
    ready_dir.mkdir()
    spec = peer.FULL_SERVER
    env = peer.server_env(url, port, spec.processes_dir, spec.forms_dir, spec.process_id, workdir / "unused.prof")
    env[READY_DIR] = str(ready_dir)
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
               "--no-control-socket",      # two servers at once: gunicorn 27's one default socket would collide
               "--bind", f"127.0.0.1:{port}", "--pythonpath", str(ROOT / "benchmarks"),
               "--timeout", "300", "--graceful-timeout", "10", "concurrency:tagged_app()"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(workers, process, port, log, ready_dir)


def wait_workers(server: Server, timeout=180):
    """Until the server answers and every worker has loaded the app; records the workers' pids."""
    deadline = time.monotonic() + timeout
    peer.wait_ready(server.process, peer.HttpClient(server.client_port), server.log, timeout)
    while time.monotonic() < deadline:
        pids = [int(p.name) for p in server.ready_dir.iterdir()]
        live = [p for p in pids if Path(f"/proc/{p}").exists() and peer.parent_pid(p) == server.process.pid]
        if len(live) >= server.workers:
            server.worker_pids = sorted(live)[:server.workers]
            return
        if server.process.poll() is not None:
            raise BenchError(f"gunicorn exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise BenchError(f"only {len(live)} of {server.workers} workers loaded in {timeout} s; see {server.log}")


def check_workers(server: Server):
    for pid in server.worker_pids:
        if not Path(f"/proc/{pid}").exists() or peer.parent_pid(pid) != server.process.pid:
            raise BenchError(f"gunicorn worker {pid} was replaced during the run; see {server.log}")


@contextmanager
def booting(url, worker_counts, workdir: Path):
    """Start one gunicorn per worker count at once; yields ready(), which waits until all their workers
    are up (let the caller migrate the database meanwhile). Stops them all afterwards."""
    started = []

    def ready() -> list[Server]:
        for server in started:
            wait_workers(server)
        return started
    try:
        for workers in worker_counts:
            started.append(spawn(url, workers, workdir))
        yield ready
    finally:
        for server in started:
            peer.stop(server.process)


# ---- the clients -----------------------------------------------------------------------------------------
def call_type(method, url) -> str:
    if method == "POST" and url.rstrip("/") == "/api/v1/complaints":
        return "register"
    if method == "POST" and url.endswith("/complete"):
        return "complete"
    return "list tasks" if url.startswith("/api/v1/tasks") else "other"


class TaggedClient(peer.HttpClient):
    """peer.HttpClient that names the complaint it works on (header X-Bench-Tag) and keeps (call type,
    start, end) of every request."""

    def __init__(self, port):
        super().__init__(port)
        self.tag = "bench:untagged"
        self.calls = []

    def open(self, url, method="GET", json=None, headers=None):
        headers = {**(headers or {}), TAG_HEADER: self.tag}
        t0 = time.perf_counter()
        response = super().open(url, method=method, json=json, headers=headers)
        self.calls.append((call_type(method, url), t0, time.perf_counter()))
        return response


class Walker:
    """One client thread: its own users (one per role), its own complaints, one after the other, until
    told to stop (between two calls: a complaint may be left half done)."""

    def __init__(self, port, people, index, phase):
        self.client, self.people, self.index = TaggedClient(port), people, index
        self.ids = itertools.count((10 * phase + index) * 1_000_000)
        self.finished, self.error = [], None       # when each complaint walked whole was closed

    def complaint(self, stop):
        """Register a complaint and walk its happy path, unless stop() between calls."""
        i = next(self.ids)
        self.client.tag = f"bench:new:{self.index}:{i}"
        number, tasks = throughput.register(self.client, self.people, i)
        self.client.tag = f"bench:{number}"
        last = {}
        for step in throughput.HAPPY_PATH:
            if stop():
                return
            tasks, last = throughput.walk(self.client, self.people, tasks, [step])
        if last.get("instance_status") != "completed":
            raise BenchError(f"complaint {number} did not complete: {last}")
        self.finished.append(time.perf_counter())

    def run(self, stop: threading.Event):
        try:
            while not stop.is_set():
                self.complaint(stop.is_set)
        except BaseException as exc:       # reported by the main thread
            self.error = exc


def start_clients(walkers, stop) -> list[threading.Thread]:
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in walkers]
    for t in threads:
        t.start()
    return threads


def wait_for(walkers, done, timeout, what):
    """Poll until done() (True), a client fails, or the timeout."""
    deadline = time.perf_counter() + timeout
    while not done():
        failed = next((w.error for w in walkers if w.error), None)
        if failed:
            raise BenchError(f"a client failed: {failed!r}") from failed
        if time.perf_counter() > deadline:
            raise BenchError(f"{what} took more than {timeout:.0f} s")
        time.sleep(0.02)


def stop_clients(threads, walkers, stop):
    stop.set()
    for t in threads:
        t.join()
    failed = next((w.error for w in walkers if w.error), None)
    if failed:
        raise BenchError(f"a client failed: {failed!r}") from failed


def calls_in(walkers, t0, t1) -> list:
    """(type, start, end) of the calls that ended inside (t0, t1]."""
    return [c for w in walkers for c in list(w.client.calls) if t0 < c[2] <= t1]


def steps(calls) -> int:
    return sum(1 for kind, _, _ in calls if kind in ("register", "complete"))


# ---- CPU ---------------------------------------------------------------------------------------------------
def proc_cpu(pid) -> float | None:
    try:
        return peer.cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def pg_pids(conn, exclude) -> tuple[list, list]:
    """(client backends of this database, PostgreSQL's background processes), `exclude` left out."""
    rows = conn.execute("SELECT pid, backend_type = 'client backend' AND datname = current_database() "
                        "FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL").fetchall()
    rows = [(pid, mine) for pid, mine in rows if pid not in exclude]
    return [pid for pid, mine in rows if mine], [pid for pid, mine in rows if not mine]


def run_queue_wait(pid) -> float:
    """Seconds the process has spent runnable but waiting for a CPU (/proc/<pid>/schedstat, field 2)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return 0.0


@dataclass
class Usage:
    wall: float
    workers: float
    workers_queued: float          # run-queue wait of the workers
    client: float
    backends: dict
    background: dict
    machine: tuple


def usage(server: Server, conn, exclude) -> Usage:
    backends, background = pg_pids(conn, exclude)
    return Usage(time.perf_counter(), sum(proc_cpu(p) or 0 for p in server.worker_pids),
                 sum(run_queue_wait(p) for p in server.worker_pids), time.process_time(),
                 {p: proc_cpu(p) for p in backends}, {p: proc_cpu(p) for p in background}, machine_ticks())


def pg_delta(before: dict, after: dict) -> float | None:
    """CPU seconds of PostgreSQL processes between two reads (a process new since then counts from 0);
    None when /proc shows none of them (PostgreSQL on another host or in another pid namespace)."""
    if after and all(v is None for v in after.values()):
        return None
    return sum(v - (before.get(p) or 0) for p, v in after.items() if v is not None)


def cpu_figures(u0: Usage, u1: Usage) -> dict:
    wall = u1.wall - u0.wall
    busy, total = (b - a for a, b in zip(u0.machine, u1.machine))
    backends, background = pg_delta(u0.backends, u1.backends), pg_delta(u0.background, u1.background)
    running, queued = u1.workers - u0.workers, u1.workers_queued - u0.workers_queued
    return {"workers": running / wall, "client": (u1.client - u0.client) / wall,
            "workers_queued": queued / wall,
            "backends": None if backends is None else backends / wall,
            "background": None if background is None else background / wall,
            "machine": os.cpu_count() * busy / total if total else 0.0,
            "workers_s": u1.workers - u0.workers, "backends_s": backends}


# ---- lock waits ------------------------------------------------------------------------------------------
ACTIVITY = """SELECT pid, application_name, state, wait_event_type, query,
       CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"""
LOCKS = """SELECT pid, locktype, relation::regclass::text, page, tuple, mode, granted
FROM pg_locks WHERE pid = ANY(%s) AND (NOT granted OR locktype = 'tuple')"""
_OF_INSTANCE = "(SELECT p.business_key FROM process_instance p WHERE p.id = x.instance_id)"
_OF_COMPLAINT = "(SELECT c.number FROM complaint c WHERE c.id = x.complaint_id)"
# Whose a row is: an SQL expression over the row (x) giving its complaint's number.
OWNER = {"process_instance": "x.business_key", "human_task": f"coalesce(x.business_key, {_OF_INSTANCE})",
         "deadline": _OF_INSTANCE, "element_visit": _OF_INSTANCE, "instance_snapshot": _OF_INSTANCE,
         "outbox_message": f"coalesce(x.business_key, {_OF_INSTANCE})", "complaint": "x.number",
         "portal_link": _OF_COMPLAINT, "survey_response": _OF_COMPLAINT, "audit_chain": "x.chain",
         "audit_event": "x.chain"}
# Rows no complaint owns.
SHARED = {"complaint_counter", "user", "api_token", "process_version", "calendar_day", "audit_seal",
          "audit_seal_head", "login_attempt", "element_day_stat"}
TABLE_IN_QUERY = re.compile(r'\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM|FROM)\s+"?(\w+)', re.I)


@dataclass
class Wait:
    """One backend found waiting in one sample."""
    tag: str                      # the waiting request's application_name
    blocker_tags: tuple
    locktype: str
    relation: str | None
    owner: str | None             # the complaint number the locked row belongs to; "shared:<table>"; None
    query: str
    blocker_queries: tuple


def complaint_of(tag) -> str | None:
    """The complaint a request works on, from its tag: a number, "new:..." for a registration, or None."""
    return tag[len("bench:"):] if tag and tag.startswith("bench:") and tag not in ("bench:idle", "bench:untagged") \
        else None


def classify(w: Wait) -> str:
    mine = complaint_of(w.tag)
    if w.locktype not in ("tuple", "transactionid"):
        return OTHER                                   # a relation, extension, advisory, ... lock
    if w.owner and w.owner.startswith("shared:"):
        return OTHER
    if w.owner:
        return SAME if w.owner == mine else CROSS
    if (w.relation or "") in SHARED:
        return OTHER
    theirs = {complaint_of(t) for t in w.blocker_tags}
    if mine is None or None in theirs:
        return OTHER                                   # someone outside the benchmark's requests
    return SAME if theirs == {mine} else CROSS


def relation_label(w: Wait) -> str:
    shared = " (shared row)" if (w.owner or "").startswith("shared:") or (w.relation or "") in SHARED else ""
    return f"{w.relation or '?'}{shared}, {w.locktype}"


def normalise(query: str) -> str:
    """The statement's first 120 characters, literals replaced by ?."""
    query = re.sub(r"'(?:[^']|'')*'", "?", " ".join((query or "").split()))
    return re.sub(r"(?<![$\w])\d+(?:\.\d+)?\b", "?", query)[:120]


class LockSampler(threading.Thread):
    """Every `interval` s: which backends of this database wait on a lock, on whose row, behind whom."""

    def __init__(self, url, interval):
        super().__init__(daemon=True)
        self.conn = pg_connect(url, "bench:sampler")
        self.interval, self.stopping = interval, threading.Event()
        self.ticks, self.waits, self.busy, self.seconds = 0, [], 0.0, 0.0

    @property
    def pid(self) -> int:
        return self.conn.info.backend_pid

    def run(self):
        t_start = time.perf_counter()
        while not self.stopping.is_set():
            t0 = time.perf_counter()
            self.sample()
            self.ticks += 1
            self.busy += time.perf_counter() - t0
            self.stopping.wait(max(0.0, self.interval - (time.perf_counter() - t0)))
        self.seconds = time.perf_counter() - t_start

    def stop(self):
        self.stopping.set()
        if self.is_alive():
            self.join()
        self.conn.close()

    def sample(self):
        rows = self.conn.execute(ACTIVITY).fetchall()
        waiting = [r for r in rows if r[3] == "Lock"]
        if not waiting:
            return
        by_pid = {r[0]: r for r in rows}
        locks = self.conn.execute(LOCKS, ([r[0] for r in waiting],)).fetchall()
        for pid, tag, _state, _type, query, blockers in waiting:
            self.waits.append(self.wait(tag, query, [l for l in locks if l[0] == pid], blockers or [], by_pid))

    def wait(self, tag, query, locks, blockers, by_pid) -> Wait:
        pending = next((l for l in locks if not l[6]), None)
        row = pending if pending and pending[1] == "tuple" else next((l for l in locks if l[1] == "tuple"), None)
        relation = (row or pending or (None,) * 7)[2]
        if relation is None:
            found = TABLE_IN_QUERY.search(query or "")
            relation = found.group(1).lower() if found else None
        owner = self.row_owner(relation, row[3], row[4]) if row else None
        known = [by_pid[b] for b in blockers if b in by_pid]
        locktype = pending[1] if pending else "granted before pg_locks was read"
        return Wait(tag, tuple(b[1] for b in known), locktype, relation, owner,
                    normalise(query), tuple(f"[{b[2]}] {normalise(b[4])}" for b in known))

    def row_owner(self, relation, page, tuple_) -> str | None:
        """The complaint the locked row belongs to, "shared:<table>", or None (unknown table, or the row
        version was released before this look-up)."""
        if relation in SHARED:
            return f"shared:{relation}"
        if relation not in OWNER:
            return None
        found = self.conn.execute(f"SELECT {OWNER[relation]} FROM {relation} x WHERE x.ctid = %s::tid",
                                  (f"({page},{tuple_})",)).fetchone()
        if not found or found[0] is None:
            return None
        owner = found[0]
        return f"shared:{relation} ({owner})" if owner == "system" or owner.startswith("instance:") else owner


def pg_connect(url, name):
    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                           autocommit=True, application_name=name)


def lock_summary(sampler: LockSampler, calls) -> dict:
    tick = sampler.seconds / max(sampler.ticks, 1)
    classes = Counter(classify(w) for w in sampler.waits)
    relations = Counter((classify(w), relation_label(w)) for w in sampler.waits)
    statements = Counter((w.query, " | ".join(sorted(set(w.blocker_queries))) or "?") for w in sampler.waits)
    counter_waits = sum(1 for w in sampler.waits if w.relation == "complaint_counter")
    registers = [c for c in calls if c[0] == "register"]
    register_s = sum(end - start for _, start, end in registers)
    return {"ticks": sampler.ticks, "tick_ms": 1000 * tick, "waits": len(sampler.waits),
            "classes": {c: classes.get(c, 0) for c in CLASSES}, "relations": relations,
            "statements": statements, "wait_s": len(sampler.waits) * tick,
            "counter_wait_s": counter_waits * tick, "registrations": len(registers), "register_s": register_s,
            "sampler_busy": sampler.busy / max(sampler.seconds, 1e-9)}


# ---- one phase -------------------------------------------------------------------------------------------
def latencies(calls) -> dict:
    out = {}
    for name in CALL_TYPES:
        ms = sorted(1000 * (end - start) for kind, start, end in calls if kind == name)
        if ms:
            p95 = statistics.quantiles(ms, n=20)[18] if len(ms) > 1 else ms[0]
            out[name] = (statistics.median(ms), p95, len(ms))
    return out


def run_phase(server: Server, people, phase, args, url) -> dict:
    """`len(people)` clients walk complaints without pause; once each has walked `warm_up` whole, the
    window opens (CPU read, lock sampler started) for `seconds`, or until `n` complaints' worth of calls."""
    walkers = [Walker(server.client_port, p, k, phase) for k, p in enumerate(people)]
    monitor = pg_connect(url, "bench:monitor")
    sampler = LockSampler(url, args.interval / 1000)
    exclude = {sampler.pid, monitor.info.backend_pid}
    stop = threading.Event()
    threads = start_clients(walkers, stop)
    try:
        wait_for(walkers, lambda: all(len(w.finished) >= args.warm_up for w in walkers), 600, "the warm-up")
        load_before, u0 = os.getloadavg(), usage(server, monitor, exclude)
        sampler.start()
        if args.n is None:
            wait_for(walkers, lambda: time.perf_counter() >= u0.wall + args.seconds, args.seconds + 60, "the window")
        else:
            wait_for(walkers, lambda: steps(calls_in(walkers, u0.wall, math.inf)) >= args.n * CALLS_PER_COMPLAINT,
                     3600, f"{args.n} complaints")
        u1 = usage(server, monitor, exclude)
    finally:
        sampler.stop()
        stop_clients(threads, walkers, stop)
        monitor.close()
    check_workers(server)
    return {**summarise(walkers, u0, u1, sampler, load_before), "workers": server.workers, "clients": len(walkers)}


def summarise(walkers, u0, u1, sampler, load_before) -> dict:
    calls = calls_in(walkers, u0.wall, u1.wall)
    window = u1.wall - u0.wall
    done = steps(calls)
    cpu = cpu_figures(u0, u1)
    server_s = cpu["workers_s"] + (cpu["backends_s"] or 0)
    whole = sum(1 for w in walkers for t in w.finished if u0.wall < t <= u1.wall)
    complaints = done / CALLS_PER_COMPLAINT
    return {"window": window, "per_s": complaints / window, "steps": done, "whole": whole,
            "latency": latencies(calls), "call_s": sum(end - start for _, start, end in calls), "cpu": cpu,
            "server_ms": 1000 * server_s / max(complaints, 1e-9), "locks": lock_summary(sampler, calls),
            "load_before": load_before, "load_after": os.getloadavg()}


def print_phase(label, r):
    cpu, lat = r["cpu"], r["latency"]
    print(f"  {label}: {r['per_s']:.2f} complaints/s over {r['window']:.1f} s ({r['steps']} calls, {r['whole']} "
          f"complaints whole); median ms register {lat.get('register', (0,))[0]:.0f}, complete "
          f"{lat.get('complete', (0,))[0]:.0f}; workers {cpu['workers']:.2f} cores, machine {cpu['machine']:.2f}; "
          f"lock-wait samples {r['locks']['waits']}; load average {r['load_before'][0]:.2f} -> "
          f"{r['load_after'][0]:.2f}", flush=True)


# ---- setup and the run -----------------------------------------------------------------------------------
def setup(url, clients):
    """throughput.py's setup (migrations, processes/, one user per role) plus the users of the other clients."""
    app, people, _bundles = throughput.setup_backend(url)
    with app.app_context():
        more = [{role: throughput.make_person(f"bench_c{k}_{role}", role) for role in throughput.WORK_ROLES}
                for k in range(1, clients)]
        db.session.remove()
    return app, [people, *more]


def run(url, args, workdir: Path) -> dict:
    print(f"\n== PostgreSQL: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    t0 = time.perf_counter()
    with booting(url, [w for w, _ in PHASES], workdir) as ready:
        app, people = setup(url, max(c for _, c in PHASES))
        servers = ready()
        print(f"  migrated, deployed, {sum(s.workers for s in servers)} gunicorn workers up in "
              f"{time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
              flush=True)
        results = {}
        for phase, ((workers, clients), server) in enumerate(zip(PHASES, servers)):
            label = phase_label(workers, clients)
            results[label] = run_phase(server, people[:clients], phase, args, url)
            print_phase(label, results[label])
    with app.app_context():
        db.engine.dispose()
    return results


def phase_label(workers, clients) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''} × {clients} client{'s' if clients > 1 else ''}"


# ---- report ----------------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def cores(value) -> str:
    return "not readable" if value is None else f"{value:.2f} ({value / os.cpu_count():.0%})"


def worker_time(r) -> str:
    """How the workers spent the window (schedstat), as shares of workers x window."""
    running, queued = r["cpu"]["workers"] / r["workers"], r["cpu"]["workers_queued"] / r["workers"]
    return f"{running:.0%} / {queued:.0%} / {max(0.0, 1 - running - queued):.0%}"


def figures_table(results) -> str:
    labels = list(results)
    lines = ["| Figure | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]

    def row(name, fn):
        lines.append(f"| {name} | " + " | ".join(fn(results[label]) for label in labels) + " |")
    row("complaints/s (register + 6 completions; calls done in the window ÷ 7)", lambda r: f"{r['per_s']:.2f}")
    row("  window s / calls / complaints walked whole", lambda r: f"{r['window']:.1f} / {r['steps']} / {r['whole']}")
    for name in CALL_TYPES:
        row(f"median / p95 ms: {name}", lambda r, name=name: "{:.0f} / {:.0f} (n={})".format(*r["latency"][name])
            if name in r["latency"] else "–")
    row(f"gunicorn workers, cores busy (share of {os.cpu_count()})", lambda r: cores(r["cpu"]["workers"]))
    row("  workers' time: running / runnable, waiting for a CPU / neither (on PostgreSQL, a lock, the client)",
        worker_time)
    row("PostgreSQL backends of this database, cores", lambda r: cores(r["cpu"]["backends"]))
    row("PostgreSQL background processes (whole server), cores", lambda r: cores(r["cpu"]["background"]))
    row("this client process (client threads + sampler), cores", lambda r: cores(r["cpu"]["client"]))
    row("whole machine busy (/proc/stat, every process), cores", lambda r: cores(r["cpu"]["machine"]))
    row("server CPU ms per complaint (workers + backends)", lambda r: f"{r['server_ms']:.0f}")
    row("lock-wait samples / sampler ticks (mean tick ms)",
        lambda r: f"{r['locks']['waits']} / {r['locks']['ticks']} ({r['locks']['tick_ms']:.1f})")
    row("load average (1 min) at start / end", lambda r: f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}")
    return "\n".join(lines)


def locks_table(results) -> str:
    labels = list(results)
    lines = ["| wait class | " + " | ".join(f"{label}: samples (≈ s waiting)" for label in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    for cls in CLASSES:
        cells = [f"{r['locks']['classes'][cls]} ({r['locks']['classes'][cls] * r['locks']['tick_ms'] / 1000:.2f})"
                 for r in results.values()]
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    keys = sorted({k for r in results.values() for k in r["locks"]["relations"]})
    if keys:
        lines += ["", "| class | relation, lock type | " + " | ".join(labels) + " |",
                  "|---|---|" + "---:|" * len(labels)]
        for cls, rel in keys:
            lines.append(f"| {cls} | {rel} | " + " | ".join(str(r["locks"]["relations"].get((cls, rel), 0))
                                                          for r in results.values()) + " |")
    return "\n".join(lines)


def top_statements(locks, k=5) -> str:
    if not locks["statements"]:
        return "(no lock waits sampled)"
    lines = []
    for (blocked, blocking), n in locks["statements"].most_common(k):
        lines.append(f"- {n} samples: `{blocked}`\n  behind [state] last statement: `{blocking}`")
    return "\n".join(lines)


def counter_cost(locks) -> str:
    n = locks["registrations"]
    if not n:
        return "no registration in the window"
    wait_ms = 1000 * locks["counter_wait_s"] / n
    share = locks["counter_wait_s"] / locks["register_s"] if locks["register_s"] else 0
    return (f"≈ {wait_ms:.1f} ms waiting per registration on complaint_counter ({share:.1%} of the registrations' "
            f"time; {n} registrations)")


def verdicts(results) -> list[str]:
    one, four = results.values()
    ratio = four["per_s"] / one["per_s"] if one["per_s"] else 0.0
    cross = four["locks"]["classes"][CROSS]
    lock_share = four["locks"]["wait_s"] / (four["clients"] * four["window"])   # a client is always in a request
    return [f"- 4 × 4 ÷ 1 × 1 = {ratio:.2f}× complaints/s; target ≥ {RATIO_TARGET}×: "
            f"{verdict(ratio >= RATIO_TARGET)} (load average {one['load_before'][0]:.2f} → "
            f"{four['load_after'][0]:.2f} on {os.cpu_count()} shared cores)",
            f"- waits on another complaint's rows during 4 × 4: {cross} samples; target 0: {verdict(cross == 0)}",
            f"- time waiting on any lock during 4 × 4: ≈ {four['locks']['wait_s']:.2f} s, about {lock_share:.1%} of "
            f"the requests' time in the window; {counter_cost(four['locks'])}",
            f"- CPU during 4 × 4: the machine {cores(four['cpu']['machine'])} busy, of it the workers "
            f"{cores(four['cpu']['workers'])} and this database's backends {cores(four['cpu']['backends'])}; the "
            f"workers' time running / waiting for a CPU / neither: {worker_time(four)} (1 × 1: {worker_time(one)}); "
            f"server CPU per complaint {one['server_ms']:.0f} → {four['server_ms']:.0f} ms"]


def report(results, elapsed):
    print(f"\n## Concurrency on PostgreSQL: 4 gunicorn workers × 4 clients against 1 × 1 (total {elapsed:.0f} s, "
          f"{os.cpu_count()} cores shared with other work)\n")
    print(figures_table(results))
    tick = max(r["locks"]["tick_ms"] for r in results.values())
    print(f"\n## Lock waits (pg_stat_activity + pg_locks sampled every ~{tick:.0f} ms; one sample = one waiting "
          "backend at one tick)\n")
    print(locks_table(results))
    four = list(results.values())[-1]
    print(f"\nTop blocked statements during {list(results)[-1]}:\n")
    print(top_statements(four["locks"]))
    print("\n## Targets (issue 10, target 3)\n")
    print("\n".join(verdicts(results)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL); a database "
                             f"{throughput.PG_DB_NAME!r} is created from it and dropped afterwards")
    parser.add_argument("--seconds", type=float, help="measured seconds per phase (default 30; quick: 3)")
    parser.add_argument("--n", type=int, help="complaints per phase instead of a duration")
    parser.add_argument("--warm-up", type=int, help="complaints each client walks whole before the window opens "
                                                    "(default 1; quick: 0)")
    parser.add_argument("--interval", type=float, default=20, help="lock sampling interval, ms (20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per phase")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3 if args.quick else 30)
    args.warm_up = (0 if args.quick else 1) if args.warm_up is None else args.warm_up
    if not args.postgres_url:
        print("benchmarks/concurrency.py needs PostgreSQL: pass --postgres-url URL or set TEST_POSTGRES_URL. "
              "Nothing measured.")
        return 0
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="concurrency-bench-"))
    try:
        url = throughput.postgres_bench_url(args.postgres_url)
        try:
            results = run(url, args, workdir)
        finally:
            throughput.drop_postgres_bench_db(args.postgres_url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

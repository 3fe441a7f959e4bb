"""The peer's scenario (spiff-arena's 2-task benchmark, ../shared/reference/peer-benchmark.md) against
this app over real HTTP, with the peer's figures beside ours. Figures are printed, never asserted.

    .venv/bin/python benchmarks/peer.py                  # SQLite; PostgreSQL too if TEST_POSTGRES_URL is set
    .venv/bin/python benchmarks/peer.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python benchmarks/peer.py --quick          # smoke run (CI): a few instances, seconds
    .venv/bin/python benchmarks/peer.py --n 300 --full-n 60 --profile   # + cProfile of the server worker (SQLite)

Setup per backend, as benchmarks/throughput.py does it: a temp-file SQLite database, or for PostgreSQL a
database of its own (`complaints_bench_peer_<pid>`, created from the admin URL and dropped afterwards),
migrated with the real migrations, processes/ and the tiny model benchmarks/peer_model/ deployed, one user
per working role with an API token. Then gunicorn (one sync worker, `benchmarks/peer_server.py`: the
real app plus a counter of SQL statements and the benchmark-only path /__bench__/) serves it on loopback
to one single-threaded client; one connection per request (the sync worker closes each).

1. The peer's scenario: start -> "Register complaint" (user task) -> gateway escalate == True ->
   "Review complaint" (user task) -> end, both tasks in the customer-service lane, every instance
   escalated, form data differing per instance. The server runs with PROCESSES_DIR / FORMS_DIR /
   COMPLAINT_PROCESS pointing at the model. Per instance, 8 calls (the peer makes 9: its create and run
   are one call here), each response checked for 2xx:
     register      POST /api/v1/complaints                 (peer: create + run the instance)
     list tasks    GET  /api/v1/tasks?queue=available      (peer: GET /v1.0/tasks; pick this instance's)
     get task      GET  /api/v1/tasks/<id>                 (task, its JSON-Schema form, the complaint)
     complete      POST /api/v1/tasks/<id>/complete        (no claim call: completing an unclaimed task
                                                            claims it in the same transaction)
     ... the same three for the review ...
     status        GET  /api/v1/complaints/<number>        (complaint status == closed)
   Printed: instances/s (wall clock, one client); server CPU ms per instance (utime + stime of the
   gunicorn worker from /proc/<pid>/stat over the measured run, and of the master, which only watches
   it); SQL statements per instance by verb and COMMITs (counted in the worker); database rows and
   on-disk bytes (tables + indexes) added per instance; the worker's and the master's RSS; the median
   ms per call type; each against the peer's figure, and the target: server CPU per instance <= 0.2x
   the peer's (judged against the peer's lowest figure). Then SQL statements per call type, from a few
   more instances with the counters read around every call (not timed).
2. Our full procedure (processes/ as deployed, COMPLAINT_PROCESS complaint_handling), on a second
   gunicorn over the same database: throughput.py's happy path (register + 6 completions) over HTTP,
   complaints/s and server CPU per complaint, against the engine ceiling (throughput.bench_engine: the
   same lifecycle on SpiffWorkflow alone, serialize/deserialize per step, no database, in this
   process). Target: HTTP / engine throughput >= 0.3.
3. With --profile (SQLite only): cProfile in the server worker over more peer instances: where the
   time goes by area (app/, SQLAlchemy, the driver, SpiffWorkflow, ...), the top functions of app/ by
   cumulative time, and by the time spent in each and in the libraries it calls directly (its app/
   callees left out): the app code that costs the most, per instance. --profile-out keeps the pstats file.

Absolute figures move with the machine's load (see the load average printed); server CPU per
instance is the steadier figure.
"""
from __future__ import annotations

import argparse
import http.client
import json as jsonlib
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import throughput  # noqa: E402
from SpiffWorkflow import TaskState  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import known_lanes  # noqa: E402
from app.engine import workflow  # noqa: E402
from app.engine.registry import deploy, load_processes  # noqa: E402
from app.engine.scripting import make_script_engine  # noqa: E402
from app.extensions import db  # noqa: E402

BenchError = throughput.BenchError
# Its own database, never the throughput benchmark's nor another run's.
throughput.PG_DB_NAME = f"complaints_bench_peer_{os.getpid()}"

PEER_MODEL = ROOT / "benchmarks" / "peer_model"
PEER_PROCESS = "peer_complaint"
PEER_TASKS = ("register_complaint", "review_complaint")
FULL_PROCESS = "complaint_handling"
CALLS = ("register", "list tasks", "get task", "complete", "status")
VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The peer's figures (the reference file, unloaded machine, 2026-11-25; ranges are low-high).
PEER = {
    "per_s": (7.6, 8.4),
    "cpu_ms": (112, 124),
    "sql": {"SELECT": 233, "INSERT": 27, "UPDATE": 43, "DELETE": 2},
    "commits": 17,
    "rows": 27,
    "kib": 11.7,
    "rss_mib": 153,
    # Side by side on a loaded machine (2026-11-30), median of rounds: CPU per instance and instances/s.
    "loaded_cpu_ms": 392,
    "loaded_per_s": 1.46,
    # register = the peer's create (10.6) + run (20.0)
    "call_ms": {"register": 30.6, "list tasks": 7.1, "get task": 7.4, "complete": 29.7, "status": 4.3},
}
CPU_TARGET = 0.2          # our server CPU per instance <= 0.2x the peer's
ENGINE_TARGET = 0.3       # full procedure over HTTP >= 0.3x the engine ceiling
STATEMENT_TARGETS = {"complete": 12, "list tasks": 4, "get task": 4, "status": 4}   # issue 10, target 2


# ---- HTTP --------------------------------------------------------------------------------------------
class Response:
    def __init__(self, status: int, body: bytes):
        self.status_code = status
        self.body = body

    def get_data(self, as_text=False):
        return self.body.decode("utf-8", "replace") if as_text else self.body

    def get_json(self):
        return jsonlib.loads(self.body) if self.body else None


class HttpClient:
    """Real HTTP on loopback with the Flask test client's open() signature, so that throughput.py's
    helpers (call, register, walk, happy_path) drive it unchanged. One connection per request."""

    def __init__(self, port: int):
        self.port = port

    def open(self, url, method="GET", json=None, headers=None) -> Response:
        body = None if json is None else jsonlib.dumps(json).encode()
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            return Response(response.status, response.read())
        finally:
            conn.close()


# ---- the gunicorn server ----------------------------------------------------------------------------
@dataclass
class Server:
    process: subprocess.Popen
    client: HttpClient
    worker_pid: int
    log: Path

    def bench(self, method, name) -> dict:
        response = self.client.open(f"/__bench__/{name}", method=method)
        if response.status_code != 200:
            raise BenchError(f"{method} /__bench__/{name} -> {response.status_code}: {response.get_data(True)}")
        return response.get_json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(url, port, processes_dir, forms_dir, process_id, profile_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "FLASK_DEBUG", "TEST_DATABASE_URL")}
    # DEPLOY_ON_START=0: setup() deploys both models before the first request, while the workers boot.
    env.update({"SECRET_KEY": os.environ["SECRET_KEY"], "DATABASE_URL": url, "DEPLOY_ON_START": "0",
                "PROCESSES_DIR": str(processes_dir), "FORMS_DIR": str(forms_dir), "COMPLAINT_PROCESS": process_id,
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "PEER_PROFILE_PATH": str(profile_path)})
    return env


def parent_pid(pid) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_ready(process, client, log, timeout=120) -> int:
    """The worker's pid once it answers (the first answer comes after it has loaded the app)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            response = client.open("/__bench__/counters")
        except (ConnectionError, OSError):
            time.sleep(0.1)
            continue
        if response.status_code != 200:
            raise BenchError(f"the benchmark wrapper answered {response.status_code}:\n{log.read_text()[-3000:]}")
        worker = response.get_json()["pid"]
        if parent_pid(worker) != process.pid:
            raise BenchError(f"pid {worker} is not a worker of gunicorn {process.pid}")
        return worker
    raise BenchError(f"gunicorn did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process):
    """SIGQUIT: gunicorn's quick shutdown (SIGTERM waits out the sync worker's one-second poll)."""
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class ServerSpec:
    processes_dir: Path
    forms_dir: Path
    process_id: str


PEER_SERVER = ServerSpec(PEER_MODEL / "processes", PEER_MODEL / "forms", PEER_PROCESS)
FULL_SERVER = ServerSpec(ROOT / "processes", ROOT / "forms", FULL_PROCESS)


def spawn(url, spec: ServerSpec, workdir: Path) -> tuple[subprocess.Popen, HttpClient, Path]:
    """gunicorn with one sync worker serving benchmarks/peer_server.py on a free loopback port."""
    port = free_port()
    log, profile_path = workdir / f"gunicorn-{spec.process_id}.log", workdir / f"{spec.process_id}.prof"
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync", "--no-control-socket",
               "--bind", f"127.0.0.1:{port}", "--pythonpath", str(ROOT / "benchmarks"),
               "--timeout", "300", "--graceful-timeout", "10", "peer_server:app"]
    env = server_env(url, port, spec.processes_dir, spec.forms_dir, spec.process_id, profile_path)
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, HttpClient(port), log


@contextmanager
def booting(url, specs, workdir: Path):
    """Start one gunicorn per spec, all at once; yields ready(), which waits until every worker has loaded
    the app (seconds: let the caller do its setup meanwhile) and returns their Servers. Stops them all
    afterwards."""
    started = []

    def ready() -> list[Server]:
        return [Server(process, client, wait_ready(process, client, log), log) for process, client, log in started]
    try:
        for spec in specs:
            started.append(spawn(url, spec, workdir))
        yield ready
    finally:
        for process, *_ in started:
            stop(process)


# ---- what the server spent -----------------------------------------------------------------------------
def cpu_seconds(pid) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Snapshot:
    wall: float
    client_cpu: float
    worker_cpu: float
    master_cpu: float
    counters: dict


def snapshot(server: Server) -> Snapshot:
    counters = server.bench("GET", "counters")
    if counters["pid"] != server.worker_pid:
        raise BenchError(f"the gunicorn worker was replaced (pid {server.worker_pid} -> {counters['pid']}); "
                         f"see {server.log}")
    return Snapshot(time.perf_counter(), time.process_time(), cpu_seconds(server.worker_pid),
                    cpu_seconds(server.process.pid), counters)


def statement_delta(before: dict, after: dict) -> dict:
    """Statements by verb (SELECT, INSERT, UPDATE, DELETE, other), BEGIN and COMMIT between two counter reads."""
    verbs = set(before["statements"]) | set(after["statements"])
    spent = {v: after["statements"].get(v, 0) - before["statements"].get(v, 0) for v in verbs}
    out = {v: spent.pop(v, 0) for v in VERBS}
    out["begins"] = spent.pop("BEGIN", 0)       # SQLite's BEGIN IMMEDIATE: transaction control, as COMMIT
    out["other"] = sum(spent.values())
    out["other_verbs"] = {v: n for v, n in spent.items() if n}
    for key in ("commits", "rollbacks", "checkouts"):
        out[key] = after[key] - before[key]
    out["requests"] = after["requests"] - before["requests"]
    return out


# ---- what the database holds ---------------------------------------------------------------------------
def table_bytes(session) -> dict:
    """On-disk bytes per table, its indexes included."""
    if session.get_bind().dialect.name == "sqlite":
        rows = session.execute(text("SELECT m.tbl_name, sum(s.pgsize) FROM dbstat s "
                                    "JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name")).all()
    else:
        rows = session.execute(text("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'")).all()
    return {name: int(size or 0) for name, size in rows}


def footprint(app) -> dict:
    """Rows and on-disk bytes per table."""
    with app.app_context():
        rows = {t.name: db.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in db.metadata.sorted_tables}
        sizes = table_bytes(db.session)
        db.session.remove()
    return {"rows": rows, "bytes": sizes}


def footprint_delta(before, after, n) -> dict:
    rows = {t: (after["rows"][t] - before["rows"].get(t, 0)) / n for t in after["rows"]}
    sizes = {t: (after["bytes"].get(t, 0) - before["bytes"].get(t, 0)) / n for t in after["bytes"]}
    return {"rows": sum(rows.values()), "rows_by_table": {t: r for t, r in rows.items() if r},
            "bytes": sum(sizes.values()), "bytes_by_table": {t: b for t, b in sizes.items() if b}}


# ---- the peer's scenario ----------------------------------------------------------------------------
def task_data(i) -> tuple[dict, dict]:
    """The two forms' data for instance i (different per instance, like the peer's)."""
    register = {"customer": f"客户{i}", "description": f"Instance {i}: the claim has been pending for six weeks.",
                "amount": round(1000 + i * 12.5, 2), "escalate": True}
    review = {"decision": ("accept", "reject")[i % 2], "comment": f"Reviewed instance {i}."}
    return register, review


def this_task(items, number, element_id) -> dict:
    found = [t for t in items if t["complaint_number"] == number and t["element_id"] == element_id]
    if len(found) != 1:
        raise BenchError(f"expected one open {element_id} of {number} in the queue, found {len(found)} "
                         f"(queue: {[(t['complaint_number'], t['element_id']) for t in items]})")
    return found[0]


class PeerClient:
    """One user walking instances through the peer's call sequence; `after_call(name)` runs after each call."""

    def __init__(self, client, person, after_call=None):
        self.client, self.person, self.after_call = client, person, after_call
        self.ms = {name: [] for name in CALLS}

    def _call(self, name, method, url, json=None) -> dict:
        t0 = time.perf_counter()
        body = throughput.call(self.client, method, url, self.person, json)
        self.ms[name].append(1000 * (time.perf_counter() - t0))
        if self.after_call:
            self.after_call(name)
        return body

    def instance(self, i):
        number = self._call("register", "POST", "/api/v1/complaints", throughput.complaint_payload(i))["number"]
        done = {}
        for element_id, data in zip(PEER_TASKS, task_data(i)):
            queue = self._call("list tasks", "GET", "/api/v1/tasks?queue=available&per_page=50")
            task = this_task(queue["items"], number, element_id)
            shown = self._call("get task", "GET", f"/api/v1/tasks/{task['id']}")
            if not (shown.get("form") or {}).get("properties") or shown["task"]["element_id"] != element_id:
                raise BenchError(f"GET /api/v1/tasks/{task['id']} gave no form for {element_id}: {shown}")
            done = self._call("complete", "POST", f"/api/v1/tasks/{task['id']}/complete", {"data": data})
        if done.get("instance_status") != "completed":
            raise BenchError(f"{number} did not complete after the review: {done}")
        status = self._call("status", "GET", f"/api/v1/complaints/{number}")
        if status["complaint"]["status"] != "closed":
            raise BenchError(f"{number} is {status['complaint']['status']!r}, not closed")


def measure(server: Server, app, n, run_one, warm_up) -> dict:
    """Run `run_one(i)` n times after a warm-up; what the server, the client and the database spent."""
    for i in range(warm_up):
        run_one(-1 - i)
    space0, snap0 = footprint(app), snapshot(server)
    for i in range(n):
        run_one(i)
    snap1 = snapshot(server)
    space1 = footprint(app)
    seconds = snap1.wall - snap0.wall
    statements = statement_delta(snap0.counters, snap1.counters)
    return {"n": n, "seconds": seconds, "per_s": n / seconds,
            "worker_cpu_ms": 1000 * (snap1.worker_cpu - snap0.worker_cpu) / n,
            "master_cpu_ms": 1000 * (snap1.master_cpu - snap0.master_cpu) / n,
            "client_cpu_ms": 1000 * (snap1.client_cpu - snap0.client_cpu) / n,
            "statements": per_instance(statements, n),
            "space": footprint_delta(space0, space1, n),
            "worker_rss_mib": snap1.counters["rss_kib"] / 1024,
            "worker_peak_mib": snap1.counters["peak_rss_kib"] / 1024,
            "master_rss_mib": rss_kib(server.process.pid) / 1024}


def per_instance(counts: dict, n) -> dict:
    return {k: per_instance(v, n) if isinstance(v, dict) else v / n for k, v in counts.items()}


def statements_per_call(server, person, n, offset) -> dict:
    """Mean statements by verb per call type, the counters read around every call (untimed)."""
    samples = {name: [] for name in CALLS}
    last = [server.bench("GET", "counters")]

    def after_call(name):
        now = server.bench("GET", "counters")
        samples[name].append(statement_delta(last[0], now))
        last[0] = now
    walker = PeerClient(server.client, person, after_call)
    for i in range(n):
        walker.instance(offset + i)
    return {name: {key: statistics.fmean(s[key] for s in got) for key in (*VERBS, "other", "commits")}
            for name, got in samples.items() if got}


def run_peer(server, app, person, n, warm_up) -> dict:
    walker = PeerClient(server.client, person)
    for i in range(warm_up):
        walker.instance(-1 - i)
    walker.ms = {name: [] for name in CALLS}
    result = measure(server, app, n, walker.instance, warm_up=0)
    result["call_ms"] = {name: statistics.median(ms) for name, ms in walker.ms.items()}
    return result


# ---- the engine alone ---------------------------------------------------------------------------------
def peer_engine_ms(bundle, n) -> float:
    """CPU ms of the peer model's lifecycle on SpiffWorkflow alone (start, then load/run/dump per task)."""
    def lifecycle(i):
        key, spec, subs = "peer-engine", bundle.spec_json, bundle.subprocess_specs_json
        saved = workflow.dump(workflow.start(key, spec, subs, {"complaint_number": f"E-{i}"}, make_script_engine([])))
        for element_id, data in zip(PEER_TASKS, task_data(i)):
            wf = workflow.load(saved, key, spec, subs, make_script_engine([]))
            ready = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == element_id]
            workflow.run_human_task(wf, ready[0], data)
            saved = workflow.dump(wf)
        if not wf.is_completed():
            raise BenchError("engine: the peer model did not complete")
    lifecycle(-1)
    t0 = time.process_time()
    for i in range(n):
        lifecycle(i)
    return 1000 * (time.process_time() - t0) / n


def engine_ceiling(bundle, n) -> dict:
    t0 = time.process_time()
    result = throughput.bench_engine(bundle, n)
    result["cpu_ms_each"] = 1000 * (time.process_time() - t0) / (n + 1)      # bench_engine runs one warm-up
    return result


# ---- profile ------------------------------------------------------------------------------------------
AREAS = (("app/", lambda f, name: f.startswith(str(ROOT / "app"))),
         ("SpiffWorkflow", lambda f, name: "SpiffWorkflow" in f),
         ("SQLAlchemy", lambda f, name: "sqlalchemy" in f),
         ("database driver", lambda f, name: any(d in f or d in name for d in ("sqlite3", "psycopg"))),
         ("Flask, Werkzeug, Jinja", lambda f, name: any(p in f for p in ("/flask", "/werkzeug", "/jinja2"))),
         ("marshmallow, jsonschema", lambda f, name: "marshmallow" in f or "jsonschema" in f),
         ("gunicorn", lambda f, name: "gunicorn" in f))


def area_of(filename, name) -> str:
    return next((label for label, match in AREAS if match(filename, name)), "other (stdlib, C builtins)")


def profile_peer(server, person, n, top, keep=None) -> str:
    """cProfile the server worker over n peer instances; the report as markdown."""
    server.bench("POST", "profile/start")
    walker = PeerClient(server.client, person)
    for i in range(n):
        walker.instance(50_000_000 + i)
    path = server.bench("POST", "profile/stop")["path"]
    if keep:
        shutil.copyfile(path, keep)
    return profile_report(pstats.Stats(path).stats, n, top)


def profile_report(stats: dict, n, top) -> str:
    total = sum(tt for _cc, _nc, tt, _ct, _callers in stats.values())
    by_area = {}
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.items():
        label = area_of(filename, name)
        by_area[label] = by_area.get(label, 0) + tt
    lines = [f"### cProfile of the server worker, {n} peer instances (SQLite): {1000 * total / n:.1f} ms per "
             f"instance under the profiler", "", "| area (own time) | ms per instance | share |", "|---|---:|---:|"]
    for label, tt in sorted(by_area.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {1000 * tt / n:.1f} | {tt / total:.0%} |")
    app_dir = str(ROOT / "app") + os.sep
    mine = {key: value for key, value in stats.items() if key[0].startswith(app_dir)}
    lines += ["", f"Top {top} functions of app/ by cumulative time:", "",
              "| function | calls per instance | cumulative ms per instance | share |", "|---|---:|---:|---:|"]
    for key, (_cc, nc, _tt, ct, _callers) in sorted(mine.items(), key=lambda kv: -kv[1][3])[:top]:
        lines.append(f"| `{where(key)}` | {nc / n:.1f} | {1000 * ct / n:.1f} | {ct / total:.0%} |")
    lines += ["", f"Top {top} functions of app/ by the time spent in them and in the libraries they call directly "
                  "(SQLAlchemy, SpiffWorkflow, ...), their own app/ callees left out:", "",
              "| function | calls per instance | ms per instance | share |", "|---|---:|---:|---:|"]
    for key, ms in sorted(own_and_library_time(mine).items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"| `{where(key)}` | {mine[key][1] / n:.1f} | {1000 * ms / n:.1f} | {ms / total:.0%} |")
    lines.append("\n(cProfile's overhead falls mostly on code made of many small calls, SQLAlchemy above all: "
                 "the shares rank the costs, the unprofiled CPU per instance is in the table above.)")
    return "\n".join(lines)


def where(key) -> str:
    filename, line, name = key
    return f"{Path(filename).relative_to(ROOT)}:{line} {name}"


def own_and_library_time(app_stats: dict) -> dict:
    """For each app/ function: its cumulative time less the cumulative time of the app/ functions it calls
    (pstats keeps, for every function, the time it spent when called from each caller)."""
    spent = {key: value[3] for key, value in app_stats.items()}
    for callee, (_cc, _nc, _tt, _ct, callers) in app_stats.items():
        for caller, edge in callers.items():
            if caller in spent and caller != callee:
                spent[caller] -= edge[3]
    return spent


# ---- one backend ------------------------------------------------------------------------------------------
def setup(url):
    """throughput.py's setup (migrations, processes/ deployed, one user per role) plus the peer model."""
    app, people, bundles = throughput.setup_backend(url)
    with app.app_context():
        peer_bundles, problems = load_processes(PEER_MODEL / "processes", PEER_MODEL / "forms", known_lanes(app))
        if problems:
            raise BenchError("benchmarks/peer_model does not deploy: " + "; ".join(map(str, problems)))
        deploy(db.session, peer_bundles, "benchmark")
        db.session.remove()
    full = next(b for b in bundles if b.process_id == FULL_PROCESS)
    return app, people, (full, peer_bundles[0])


def print_peer(r):
    s = r["statements"]
    print(f"  peer scenario: {r['n']} instances in {r['seconds']:.1f} s = {r['per_s']:.2f}/s; server CPU "
          f"{r['worker_cpu_ms']:.1f} ms per instance (master {r['master_cpu_ms']:.2f}); SQL per instance "
          f"{s['SELECT']:.0f} SELECT, {s['INSERT']:.0f} INSERT, {s['UPDATE']:.0f} UPDATE, {s['DELETE']:.0f} DELETE, "
          f"{s['other']:.0f} other, {s['commits']:.0f} COMMIT, {s['begins']:.0f} BEGIN IMMEDIATE", flush=True)


def run_backend(label, url, args, workdir: Path) -> dict:
    print(f"\n== {label}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    t0 = time.perf_counter()
    # Both servers serve the same database (the one not being measured sits idle); their workers load
    # the app while this process migrates the database and deploys both models.
    with booting(url, (PEER_SERVER, FULL_SERVER), workdir) as ready:
        app, people, bundles = setup(url)
        person = people["customer_service"]
        peer_server, full_server = ready()
        result = {"load_before": os.getloadavg(), "bundles": bundles, "setup_s": time.perf_counter() - t0}
        print(f"  migrated, deployed, two gunicorn workers up in {result['setup_s']:.1f} s", flush=True)
        result["peer"] = run_peer(peer_server, app, person, args.n, args.warm_up)
        print_peer(result["peer"])
        result["per_call"] = statements_per_call(peer_server, person, args.call_n, 40_000_000)
        if args.profile and label == "SQLite":
            result["profile"] = profile_peer(peer_server, person, args.profile_n, args.top, args.profile_out)
        client = full_server.client
        result["full"] = measure(full_server, app, args.full_n,
                                 lambda i: throughput.happy_path(client, people, 60_000_000 + i),
                                 warm_up=min(args.warm_up, 1))
    f = result["full"]
    print(f"  full procedure over gunicorn: {f['n']} complaints in {f['seconds']:.1f} s = {f['per_s']:.2f}/s; "
          f"server CPU {f['worker_cpu_ms']:.1f} ms per complaint", flush=True)
    with app.app_context():
        db.engine.dispose()
    result["load_after"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - t0
    return result


def run_engine(bundles, args) -> dict:
    """The engine alone (no database: once for all backends): the full procedure's ceiling and the
    peer model's floor."""
    full, peer = bundles
    print(f"\n== Engine only ({args.engine_n} lifecycles of {FULL_PROCESS}, no database)", flush=True)
    result = engine_ceiling(full, args.engine_n)
    result["peer_ms"] = peer_engine_ms(peer, args.engine_n)
    print(f"  {result['per_s']:.1f} complaints/s ({result['cpu_ms_each']:.1f} CPU ms each); the peer model "
          f"{result['peer_ms']:.1f} CPU ms per instance", flush=True)
    return result


# ---- report --------------------------------------------------------------------------------------------------
def span(low, high, fmt="{:.1f}") -> str:
    return fmt.format(low) if low == high else f"{fmt.format(low)}–{fmt.format(high)}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def cpu_target_ms() -> float:
    return CPU_TARGET * PEER["cpu_ms"][0]


def peer_table(results) -> str:
    labels = [label for label, r in results.items() if r]
    lines = ["| Figure | " + " | ".join(labels) + " | peer (unloaded) |", "|---|" + "---:|" * (len(labels) + 1)]

    def row(name, fn, peer=""):
        lines.append(f"| {name} | " + " | ".join(fn(results[label]) for label in labels) + f" | {peer} |")
    mid_cpu = statistics.fmean(PEER["cpu_ms"])
    row("instances/s (one client, 8 calls; peer: 9)", lambda r: f"{r['peer']['per_s']:.2f} (N={r['peer']['n']})",
        span(*PEER["per_s"]))
    row("  × the peer's instances/s (unloaded / loaded machine)",
        lambda r: f"{r['peer']['per_s'] / statistics.fmean(PEER['per_s']):.2f}× / "
                  f"{r['peer']['per_s'] / PEER['loaded_per_s']:.2f}×", f"1 ({PEER['loaded_per_s']} loaded)")
    row("server CPU ms per instance (gunicorn worker)", lambda r: f"{r['peer']['worker_cpu_ms']:.1f}",
        span(*PEER["cpu_ms"], "{:.0f}"))
    row("  gunicorn master, CPU ms per instance", lambda r: f"{r['peer']['master_cpu_ms']:.2f}")
    row(f"  ÷ the peer's ({mid_cpu:.0f} ms)", lambda r: f"{r['peer']['worker_cpu_ms'] / mid_cpu:.2f}×", "1")
    row(f"  ÷ the peer's on a loaded machine ({PEER['loaded_cpu_ms']} ms, 2026-11-30)",
        lambda r: f"{r['peer']['worker_cpu_ms'] / PEER['loaded_cpu_ms']:.2f}×", str(PEER["loaded_cpu_ms"]))
    row(f"  target ≤ {CPU_TARGET}× the peer's (≤ {cpu_target_ms():.1f} ms)",
        lambda r: verdict(r["peer"]["worker_cpu_ms"] <= cpu_target_ms()))
    row("client CPU ms per instance (this process)", lambda r: f"{r['peer']['client_cpu_ms']:.1f}")
    row("engine alone, CPU ms per instance (start + 2 load/run/dump, no DB)", lambda r: f"{r['peer_engine_ms']:.1f}")
    for v in VERBS:
        row(f"SQL {v} per instance", lambda r, v=v: f"{r['peer']['statements'][v]:.1f}", str(PEER["sql"][v]))
    row("SQL other per instance (SAVEPOINT, RELEASE, ...)",
        lambda r: f"{r['peer']['statements']['other']:.1f} {other_verbs(r['peer']['statements'])}".rstrip())
    row("COMMIT per instance", lambda r: f"{r['peer']['statements']['commits']:.1f}" + (
        f" (+ {r['peer']['statements']['rollbacks']:.1f} ROLLBACK)" if r['peer']['statements']['rollbacks'] else ""),
        str(PEER["commits"]))
    row("BEGIN IMMEDIATE per instance (SQLite's write lock; PostgreSQL's BEGIN is not seen)",
        lambda r: f"{r['peer']['statements']['begins']:.1f}")
    row("SQL statements per instance, total (without COMMIT)", lambda r: f"{total_statements(r['peer']):.1f}",
        str(sum(PEER["sql"].values())))
    row("pool checkouts per instance (each a pre-ping)", lambda r: f"{r['peer']['statements']['checkouts']:.1f}")
    row("database rows per instance", lambda r: f"{r['peer']['space']['rows']:.1f} ({top_tables(r, 'rows_by_table')})",
        str(PEER["rows"]))
    row("database bytes per instance (tables + indexes, on disk)",
        lambda r: f"{r['peer']['space']['bytes'] / 1024:.1f} KiB", f"{PEER['kib']} KiB")
    row("server RSS, worker / master (peak worker)",
        lambda r: f"{r['peer']['worker_rss_mib']:.0f} / {r['peer']['master_rss_mib']:.0f} MiB "
                  f"({r['peer']['worker_peak_mib']:.0f})", f"{PEER['rss_mib']} MiB")
    for name in CALLS:
        row(f"median ms: {name}", lambda r, name=name: f"{r['peer']['call_ms'][name]:.1f}", f"{PEER['call_ms'][name]}")
    row("load average before / after (1 min)", lambda r: f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}")
    row("backend wall time, s (of which setup and boot)", lambda r: f"{r['wall_s']:.0f} ({r['setup_s']:.0f})")
    return "\n".join(lines)


def other_verbs(statements) -> str:
    verbs = statements.get("other_verbs") or {}
    return "(" + ", ".join(f"{v} {n:.1f}" for v, n in sorted(verbs.items())) + ")" if verbs else ""


def total_statements(r) -> float:
    s = r["statements"]
    return sum(s[v] for v in VERBS) + s["other"]


def top_tables(r, key, k=4) -> str:
    by_table = sorted(r["peer"]["space"][key].items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{t} {n:.0f}" for t, n in by_table)


def per_call_table(results) -> str:
    labels = [label for label, r in results.items() if r]
    heads = [f"{label}: SELECT / INSERT / UPDATE / DELETE / other + COMMIT" for label in labels]
    lines = ["| call | " + " | ".join(heads)
             + " | issue 10 target 2 (statements) |", "|---|" + "---:|" * (len(labels) + 1)]
    for name in CALLS:
        cells = []
        for label in labels:
            s = results[label]["per_call"][name]
            total = sum(s[v] for v in VERBS) + s["other"]
            cells.append(" / ".join(f"{s[v]:.1f}" for v in (*VERBS, "other")) + f" + {s['commits']:.1f} = {total:.1f}")
        goal = STATEMENT_TARGETS.get(name)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'≤ ' + str(goal) if goal else ''} |")
    return "\n".join(lines)


def full_table(results) -> str:
    labels = [label for label, r in results.items() if r]
    lines = ["| Figure | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]

    def row(name, fn):
        lines.append(f"| {name} | " + " | ".join(fn(results[label]) for label in labels) + " |")
    row("HTTP over gunicorn (register + 6 completions), complaints/s",
        lambda r: f"{r['full']['per_s']:.2f} (N={r['full']['n']})")
    row("  ms per complaint / per request",
        lambda r: f"{1000 / r['full']['per_s']:.0f} / {1000 / r['full']['per_s'] / 7:.1f}")
    row("  server CPU ms per complaint (worker)", lambda r: f"{r['full']['worker_cpu_ms']:.1f}")
    row("  SQL statements + COMMIT per complaint",
        lambda r: f"{total_statements(r['full']):.0f} + {r['full']['statements']['commits']:.0f}")
    row("  database rows / bytes per complaint",
        lambda r: f"{r['full']['space']['rows']:.0f} / {r['full']['space']['bytes'] / 1024:.1f} KiB")
    row("engine ceiling (SpiffWorkflow alone, serialize/deserialize per step), complaints/s",
        lambda r: f"{r['engine']['per_s']:.1f} (N={r['engine']['n']})")
    row("  engine CPU ms per complaint", lambda r: f"{r['engine']['cpu_ms_each']:.1f}")
    row("HTTP ÷ engine, throughput", lambda r: f"{r['full']['per_s'] / r['engine']['per_s']:.2f}")
    row("HTTP ÷ engine, by CPU (engine CPU ÷ server CPU per complaint)",
        lambda r: f"{r['engine']['cpu_ms_each'] / r['full']['worker_cpu_ms']:.2f}")
    row(f"target: HTTP ÷ engine throughput ≥ {ENGINE_TARGET}",
        lambda r: verdict(r["full"]["per_s"] / r["engine"]["per_s"] >= ENGINE_TARGET))
    return "\n".join(lines)


def targets(results) -> list[str]:
    lines = []
    low, loaded = PEER["cpu_ms"][0], PEER["loaded_cpu_ms"]
    for label, r in results.items():
        if not r:
            continue
        cpu, full = r["peer"]["worker_cpu_ms"], r["full"]["per_s"] / r["engine"]["per_s"]
        lines.append(f"- {label}: server CPU per peer instance {cpu:.1f} ms = {cpu / low:.2f}× the peer's lowest "
                     f"{low} ms; target ≤ {CPU_TARGET}× (≤ {cpu_target_ms():.1f} ms): "
                     f"{verdict(cpu <= cpu_target_ms())} (against its loaded {loaded} ms: {cpu / loaded:.2f}×, "
                     f"{verdict(cpu <= CPU_TARGET * loaded)})")
        lines.append(f"- {label}: full procedure over gunicorn ÷ engine ceiling = {full:.2f}; "
                     f"target ≥ {ENGINE_TARGET}: {verdict(full >= ENGINE_TARGET)}")
    return lines


def report(results, elapsed):
    print(f"\n## Peer scenario: spiff-arena's 2-task model, our API over gunicorn (total {elapsed:.0f} s)\n")
    print(peer_table(results))
    print("\nNo claim call: completing an unclaimed task claims it in the same transaction. The peer's column is "
          "its unloaded figures from ../shared/reference/peer-benchmark.md (measured elsewhere, not in this run).")
    busy = [label for label, r in results.items() if r and max(r["load_before"][0], r["load_after"][0]) > 1.5]
    if busy:
        print(f"The machine was loaded during the {' and '.join(busy)} run (load average above 1.5 on "
              f"{os.cpu_count()} cores): CPU per instance is inflated too; the peer's loaded figure is the fairer one.")
    print("\n## SQL statements per call (peer scenario, mean over the extra instances)\n")
    print(per_call_table(results))
    print("\n## Full procedure over gunicorn vs the engine ceiling\n")
    print(full_table(results))
    print("\n## Targets (issue 10, target 1)\n")
    print("\n".join(targets(results)))
    for label, r in results.items():
        if r and r.get("profile"):
            print("\n" + r["profile"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="peer instances in the measured run (default 150; quick: 2)")
    parser.add_argument("--full-n", type=int, help="full-procedure complaints over gunicorn (default 30; quick: 1)")
    parser.add_argument("--engine-n", type=int, help="engine lifecycles, each model (default 30; quick: 1)")
    parser.add_argument("--call-n", type=int, help="instances for the statements per call (default 5; quick: 1)")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL); a database "
                             f"{throughput.PG_DB_NAME!r} is created from it and dropped afterwards")
    parser.add_argument("--quick", action="store_true", help="smoke run: a few instances, seconds")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the server worker over peer instances (SQLite)")
    parser.add_argument("--profile-n", type=int, default=50, help="peer instances under the profiler (default 50)")
    parser.add_argument("--profile-out", metavar="FILE", help="with --profile: also keep the raw pstats file")
    parser.add_argument("--top", type=int, default=10, help="app/ functions listed from the profile (default 10)")
    args = parser.parse_args(argv)
    args.n = args.n or (2 if args.quick else 150)
    args.full_n = args.full_n or (1 if args.quick else 30)
    args.engine_n = args.engine_n or (1 if args.quick else 30)
    args.call_n = args.call_n or (1 if args.quick else 5)
    args.warm_up = 0 if args.quick else 3

    t0 = time.perf_counter()
    results = {}
    workdir = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    try:
        results["SQLite"] = run_backend("SQLite", f"sqlite:///{workdir}/bench.db", args, workdir)
        results["PostgreSQL"] = None
        if args.postgres_url:
            try:
                url = throughput.postgres_bench_url(args.postgres_url)
                results["PostgreSQL"] = run_backend("PostgreSQL", url, args, workdir)
            finally:
                throughput.drop_postgres_bench_db(args.postgres_url)
        else:
            print("\n== PostgreSQL: skipped (pass --postgres-url URL or set TEST_POSTGRES_URL)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    engine = run_engine(results["SQLite"]["bundles"], args)
    for r in filter(None, results.values()):
        r["engine"], r["peer_engine_ms"] = engine, engine["peer_ms"]
    report(results, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

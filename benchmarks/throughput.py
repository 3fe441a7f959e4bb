"""Throughput and latency figures for the complaint app, printed (never asserted).

    .venv/bin/python benchmarks/throughput.py                 # SQLite; PostgreSQL too if TEST_POSTGRES_URL is set
    .venv/bin/python benchmarks/throughput.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python benchmarks/throughput.py --quick         # smoke run: tiny N, 1,000 queue rows
    .venv/bin/python benchmarks/throughput.py --profile       # + cProfile of the HTTP path (20 complaints, SQLite)

For each backend (a temp-file SQLite database; for PostgreSQL a database `complaints_bench`, dropped and
created from the admin URL), migrated with the real migrations and with processes/ deployed:

1. HTTP happy path: complaints/s walked through the JSON API with Flask's in-process test client
   (register -> initial_review -> investigate -> analyse_and_plan -> feedback_to_customer ->
   customer_confirmation -> archive), every response checked for 2xx.
2. Engine ceiling: the same lifecycle on SpiffWorkflow alone (app.engine.workflow: load, run, dump per
   step, no database), and the ratio HTTP / engine.
3. Task-list latency: GET /api/v1/tasks (queue=available and queue=mine) with 10,000 open complaints
   bulk-inserted beside one real instance (the rows copy its workflow_json; they are for listing only).
4. Serialized size of ProcessInstance.workflow_json after 0 and 10 re-evaluation rounds, read from the
   database, against the spec stored once per process version.
5. Sandbox cost (no database): each condition, timer and script of processes/ evaluated with SpiffWorkflow's
   stock script engine and with the sandboxed one (µs per evaluation), and the engine lifecycle of item 2
   with either engine (ms per complaint and per completion). `--sandbox-only` runs just this part.
"""
from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import logging
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("SECRET_KEY", "benchmark-secret")

import psycopg  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import create_app, known_lanes  # noqa: E402
from app.api.auth import issue_token  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.engine import workflow  # noqa: E402
from app.engine.registry import deploy, load_processes  # noqa: E402
from app.engine.scripting import make_script_engine  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Complaint, HumanTask, ProcessInstance, ProcessVersion, User  # noqa: E402
from app.timeutil import utcnow  # noqa: E402

PG_DB_NAME = "complaints_bench"
WORK_ROLES = ("customer_service", "claims_specialist", "management")

# ---- valid form data (forms/*.json) --------------------------------------------------------------
FORM_DATA = {
    "initial_review": {"decision": "accept", "risk_level": "low",
                       "review_notes": "Meets the acceptance criteria; claim file attached."},
    "investigate": {"findings": "Claim was delayed by a missing hospital invoice.",
                    "evidence": "Policy, claim file, call recording of 3 Nov.", "customer_contacted": True},
    "analyse_and_plan": {"cause_code": "staff_error", "cause": "Invoice request was never sent to the customer.",
                         "responsible_party": "company",
                         "policy_basis": "Clause 7.2 of the policy; internal claims guideline 4.1.",
                         "solution": "Pay the claim with interest for the delay.", "compensation_amount": 1200},
    "feedback_to_customer": {"feedback_channel": "phone", "feedback_summary": "Explained the payment and timing.",
                             "next_steps": "Payment within 3 working days."},
    "customer_confirmation": {"satisfied": True, "customer_feedback": "Customer accepts the solution."},
    "customer_confirmation_unhappy": {"satisfied": False, "dissatisfaction_reasons": "Interest is too low.",
                                      "customer_feedback": "Wants a higher interest payment."},
    "re_evaluation": {"evaluation": "Recalculate the interest; no new evidence needed.",
                      "needs_investigation": False},
    "archive": {"archive_summary": "Resolved and paid; records complete.", "records_complete": True},
}

# (element id, role that must hold it, form data key)
HAPPY_PATH = [
    ("initial_review", "customer_service", "initial_review"),
    ("investigate", "claims_specialist", "investigate"),
    ("analyse_and_plan", "claims_specialist", "analyse_and_plan"),
    ("feedback_to_customer", "claims_specialist", "feedback_to_customer"),
    ("customer_confirmation", "customer_service", "customer_confirmation"),
    ("archive", "customer_service", "archive"),
]
# One re-evaluation round: from customer_confirmation back to customer_confirmation.
REEVALUATION_ROUND = [
    ("customer_confirmation", "customer_service", "customer_confirmation_unhappy"),
    ("re_evaluation", "claims_specialist", "re_evaluation"),
    ("analyse_and_plan", "claims_specialist", "analyse_and_plan"),
    ("feedback_to_customer", "claims_specialist", "feedback_to_customer"),
]


def complaint_payload(i: int) -> dict:
    return {"channel": ("hotline", "website", "mobile_app", "email")[i % 4],
            "customer_name": f"张三{i}", "phone": f"+86 138{i % 100000000:08d}",
            "email": f"customer{i}@example.com", "policy_number": f"P-{i:08d}",
            "claim_number": f"C-{i:08d}", "category": "claim_delay", "product_line": "motor",
            "description": "The claim has been pending for six weeks without any update.",
            "received_at": (utcnow() - timedelta(minutes=5)).isoformat()}


class BenchError(RuntimeError):
    pass


# ---- setup ---------------------------------------------------------------------------------------
@dataclass
class Person:
    username: str
    user_id: int
    token: str

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}


def quiet_logging():
    # create_app() turns INFO logging on and alembic's env.py re-reads alembic.ini on every upgrade;
    # logging.disable() survives both, so only warnings and errors get through.
    logging.disable(logging.INFO)
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("alembic", "sqlalchemy", "werkzeug", "app"):
        logging.getLogger(name).setLevel(logging.WARNING)


def postgres_bench_url(admin_url: str) -> str:
    admin = make_url(admin_url)
    with psycopg.connect(host=admin.host, port=admin.port, user=admin.username, password=admin.password,
                         dbname=admin.database or "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB_NAME}"')
    return admin.set(drivername="postgresql+psycopg", database=PG_DB_NAME).render_as_string(hide_password=False)


def drop_postgres_bench_db(admin_url: str):
    admin = make_url(admin_url)
    with psycopg.connect(host=admin.host, port=admin.port, user=admin.username, password=admin.password,
                         dbname=admin.database or "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB_NAME}" WITH (FORCE)')


@contextmanager
def sqlite_bench_url(prefix):
    """The URL of a fresh SQLite file in a temp folder, removed afterwards."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield f"sqlite:///{tmp}/bench.db"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def postgres_bench(admin_url: str, keep=False):
    """The URL of this run's fresh PostgreSQL database (PG_DB_NAME), dropped afterwards unless `keep`."""
    try:
        yield postgres_bench_url(admin_url)
    finally:
        if not keep:
            drop_postgres_bench_db(admin_url)


def make_person(username, *roles) -> Person:
    user = User(username=username, display_name=username)
    user.roles = roles
    user.set_password("pw-" + username)
    db.session.add(user)
    db.session.commit()
    return Person(username, user.id, issue_token(user, 30, name="benchmark"))


def setup_backend(url: str):
    """A migrated database with processes/ deployed and one user per working role."""
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    quiet_logging()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        bundles, problems = load_processes(app.config["PROCESSES_DIR"], app.config["FORMS_DIR"], known_lanes(app))
        if problems:
            raise BenchError("processes/ does not deploy: " + "; ".join(map(str, problems)))
        deploy(db.session, bundles, "benchmark")
        people = {role: make_person(f"bench_{role}", role) for role in WORK_ROLES}
        db.session.remove()
    return app, people, bundles


# ---- HTTP helpers --------------------------------------------------------------------------------
def call(client, method, url, person: Person, json=None) -> dict:
    response = client.open(url, method=method, json=json, headers=person.headers)
    if not 200 <= response.status_code < 300:
        raise BenchError(f"{method} {url} as {person.username} -> {response.status_code}: "
                         f"{response.get_data(as_text=True)[:2000]}")
    return response.get_json()


def pick_task(client, people, tasks, element_id, role) -> dict:
    """The task `element_id` among `tasks` (a response's next_tasks), else from the role's available queue."""
    found = [t for t in tasks if t["element_id"] == element_id]
    if not found:
        queue = call(client, "GET", "/api/v1/tasks?queue=available&per_page=200", people[role])["items"]
        found = [t for t in queue if t["element_id"] == element_id]
    if len(found) != 1:
        raise BenchError(f"expected one open {element_id} task, found {len(found)} (next tasks: "
                         f"{[t['element_id'] for t in tasks]})")
    task = found[0]
    if task["role"] != role:
        raise BenchError(f"task {element_id} is for role {task['role']}, expected {role}")
    return task


def register(client, people, i) -> tuple[str, list]:
    body = call(client, "POST", "/api/v1/complaints", people["customer_service"], complaint_payload(i))
    return body["number"], body["tasks"]


def walk(client, people, tasks, steps) -> tuple[list, dict]:
    """Complete `steps` in order, each as the user of the task's role; returns the last next_tasks."""
    body = {}
    for element_id, role, form_key in steps:
        task = pick_task(client, people, tasks, element_id, role)
        body = call(client, "POST", f"/api/v1/tasks/{task['id']}/complete", people[task["role"]],
                    {"data": FORM_DATA[form_key]})
        tasks = body["next_tasks"]
    return tasks, body


def happy_path(client, people, i):
    _, tasks = register(client, people, i)
    _, last = walk(client, people, tasks, HAPPY_PATH)
    if last.get("instance_status") != "completed":
        raise BenchError(f"complaint {last.get('complaint_number')} did not complete: {last}")


# ---- 1. HTTP happy path --------------------------------------------------------------------------
def bench_http(app, people, n) -> dict:
    client = app.test_client()
    happy_path(client, people, -1)                      # warm-up: caches, first connection, compiled statements
    start = time.perf_counter()
    for i in range(n):
        happy_path(client, people, i)
    elapsed = time.perf_counter() - start
    with app.app_context():
        closed = db.session.execute(select(func.count()).select_from(Complaint)
                                    .where(Complaint.status == "closed")).scalar_one()
        db.session.remove()
    if closed < n + 1:
        raise BenchError(f"only {closed} complaints closed after {n + 1} happy paths")
    requests = n * (1 + len(HAPPY_PATH))
    return {"n": n, "seconds": elapsed, "per_s": n / elapsed, "ms_each": 1000 * elapsed / n,
            "ms_per_request": 1000 * elapsed / requests}


# ---- 1b. SQL statements per request ----------------------------------------------------------------
class StatementCounter:
    """Counts the statements the app sends to the database (a before_cursor_execute listener; an
    executemany counts once, as it is one round trip of one statement). SQLite's BEGIN IMMEDIATE, with which
    a change takes the write lock, is transaction control as COMMIT is: counted apart, in `begins` (on
    PostgreSQL the driver sends BEGIN without this listener seeing it)."""

    def __init__(self, engine):
        self.engine, self.n, self.begins = engine, 0, 0

    def __enter__(self):
        from sqlalchemy import event
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, *_):
        if statement.startswith("BEGIN"):
            self.begins += 1
        else:
            self.n += 1

    def around(self, fn):
        """(statements, result) of one call."""
        before = self.n
        result = fn()
        return self.n - before, result


def bench_statements(app, people) -> dict:
    """Statements per registration, per completion (each step of the happy path) and per read (the
    task lists, one task with its form, the complaint), for one complaint after a warm-up one."""
    client = app.test_client()
    happy_path(client, people, -2)
    with app.app_context():
        engine = db.engine
    out = {"complete": {}}
    with StatementCounter(engine) as counter:
        out["register"], (number, tasks) = counter.around(lambda: register(client, people, 900_001))
        for element_id, role, form_key in HAPPY_PATH:
            task = pick_task(client, people, tasks, element_id, role)
            out["read_task"], _ = counter.around(
                lambda: call(client, "GET", f"/api/v1/tasks/{task['id']}", people[role]))
            out["complete"][element_id], body = counter.around(lambda: call(
                client, "POST", f"/api/v1/tasks/{task['id']}/complete", people[role], {"data": FORM_DATA[form_key]}))
            tasks = body["next_tasks"]
        reads = {"read_available": ("/api/v1/tasks?queue=available", "customer_service"),
                 "read_mine": ("/api/v1/tasks?queue=mine", "customer_service"),
                 "read_complaint": (f"/api/v1/complaints/{number}", "customer_service")}
        for name, (url, role) in reads.items():
            out[name], _ = counter.around(lambda: call(client, "GET", url, people[role]))
    steps = out["complete"].values()
    out["complete_mean"], out["complete_max"] = statistics.mean(steps), max(steps)
    return out


# ---- 2. engine ceiling ---------------------------------------------------------------------------
def engine_lifecycle(spec_json, subs_json, i, make_engine=make_script_engine):
    from SpiffWorkflow import TaskState
    payload = complaint_payload(i)
    data = {**payload, "complaint_number": f"ENGINE-{i:06d}"}
    key = "engine-ceiling"   # the spec is restored once, as the app does per version
    wf = workflow.start(key, spec_json, subs_json, data, make_engine([]))
    saved = workflow.dump(wf)
    for element_id, _role, form_key in HAPPY_PATH:
        wf = workflow.load(saved, key, spec_json, subs_json, make_engine([]))
        ready = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == element_id]
        if len(ready) != 1:
            raise BenchError(f"engine: expected one READY {element_id}, found {len(ready)}")
        workflow.run_human_task(wf, ready[0], dict(FORM_DATA[form_key]))
        saved = workflow.dump(wf)
    if not wf.is_completed():
        raise BenchError("engine: the workflow did not complete")


def bench_engine(bundle, n) -> dict:
    engine_lifecycle(bundle.spec_json, bundle.subprocess_specs_json, -1)
    start = time.perf_counter()
    for i in range(n):
        engine_lifecycle(bundle.spec_json, bundle.subprocess_specs_json, i)
    elapsed = time.perf_counter() - start
    return {"n": n, "seconds": elapsed, "per_s": n / elapsed, "ms_each": 1000 * elapsed / n}


# ---- 5. sandbox cost -----------------------------------------------------------------------------
def stock_script_engine(effects):
    """SpiffWorkflow's own engine (eval/exec, compiled on every call, no sandbox) with the same helpers:
    the "before" of the sandbox figures."""
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
    return PythonScriptEngine(environment=TaskDataEnvironment(dict(make_script_engine(effects).environment.globals)))


def process_expressions() -> list[tuple[str, str, str]]:
    """(kind, mode, source) of every condition, timer and script in processes/."""
    from lxml import etree
    from app.engine.registry import NS
    paths = [("condition", "eval", "//bpmn:conditionExpression"),
             ("timer", "eval", "//bpmn:timeDate|//bpmn:timeDuration|//bpmn:timeCycle"),
             ("script", "exec", "//bpmn:scriptTask/bpmn:script|//spiffworkflow:preScript|//spiffworkflow:postScript")]
    found = []
    for path in sorted((ROOT / "processes").glob("*.bpmn")):
        tree = etree.parse(str(path))
        for kind, mode, xpath in paths:
            found += [(kind, mode, node.text) for node in tree.xpath(xpath, namespaces=NS)]
    return found


def expression_data() -> dict:
    """Task data as it is by the end of a round: the complaint, every form's fields, the round's times."""
    data = {**complaint_payload(1), "complaint_number": "BENCH-1", "round": 1, "round_started_at": utcnow().isoformat(),
            "malicious_confirmed": False, "approved": True,
            # What the other paths' scripts pass on to the customer: rejection, malice, withdrawal, and
            # the processes beside a complaint (a call to the customer, a review).
            "rejection_reason": "Not a claims complaint.", "review_comments": "Confirmed as malicious.",
            "reason_for_customer": "The same matter was settled before.", "decision_days": 15,
            "decided_at": utcnow().isoformat(),
            "undelivered": {"template": "result", "sent": {"review_until": utcnow().isoformat()}}, "customer_reached": True,
            "withdrawal": {"reason": "", "by": "customer"}, "contact_requested_at": utcnow().isoformat(),
            "review_requested_at": utcnow().isoformat(), "review_due": utcnow().isoformat(),
            "review_result": "Upheld.", "decision_changed": False,
            # The waiting steps' clocks and the escalations' new completion dates (issue 9, items 3-4).
            "result_sent_at": utcnow().isoformat(), "review_until": utcnow().isoformat(),
            "confirmation_reminders": 0, "confirmation_followed_up_at": utcnow().isoformat(),
            "confirmation_answered_at": utcnow().isoformat(), "handling_finished_at": utcnow().isoformat(),
            **{f"{step}_{name}": value for step in ("initial_review", "investigation", "resolution")
               for name, value in (("new_due", "2026-12-01T23:59:59+08:00"),
                                   ("rescheduled", {"due": "2026-12-01T23:59:59+08:00"}),
                                   ("overdue_due_date", "2026-12-01"), ("overdue_actions", ["inform_customer"]),
                                   ("overdue_again_due_date", "2026-12-02"),
                                   ("overdue_again_actions", ["urge_handler"]))},
            # Extensions and appraisal pauses of the regulator's clock (issue 9, item 2).
            "decision_due": utcnow().isoformat(), "decision_days_not_counted": 0, "appraisal_days": 0, "appraisal_days_expected": 0, "appraisal_open": False,
            "decision_clock": "running", "clock_move": {"decision_days": 30, "not_counted": 0, "clock": "running"},
            "extension_request": {"reason": "complex", "by": "bench"}, "extension_approved": True,
            "extension_reason_for_customer": "More documents are needed.",
            "appraisal": {"kind": "appraisal", "started_on": "2026-12-01", "expected_end_on": "2026-12-03", "by": "bench"},
            "appraisal_kind": "appraisal", "appraisal_started_on": "2026-12-01", "appraisal_expected_end_on": "2026-12-03",
            "appraisal_end": {"ended_on": "2026-12-03", "by": "bench"}, "appraisal_ended_on": "2026-12-03",
            "appraisal_has_ended": True, "appraisal_new_expected_end_on": "2026-12-05",
            # What the decision table (processes/management_decision.dmn) writes for the gateway after it.
            "needs_management": True,
            # The quarterly review and its improvement measures (processes/quarterly_review.bpmn, improvement_measure.bpmn).
            "period_start": "2026-10-01", "period_end": "2026-12-31", "period_label": "2026Q4", "measures": [],
            "analysis_started_at": utcnow().isoformat(), "measures_needed": True, "training_needed": True,
            "measure_title": "One list of documents", "measure_category": "claim_documents",
            "measure_cause": "process_design", "measure_owner": "owner", "measure_due_on": "2027-03-31",
            "measure_success_criteria": "Fewer complaints", "another_measure": False,
            "measure": {"no": 1, "title": "One list of documents", "category": "claim_documents",
                        "cause_code": "process_design", "owner": "owner", "due_on": "2027-03-31",
                        "success_criteria": "Fewer complaints"},
            "measure_outcome": "done", "actions_taken": "Done.", "evidence": "Policy 3", "completed_on": "2027-03-01",
            "escalated_at": utcnow().isoformat(), "follow_up_action": "new_date_agreed", "agreed_date": "2027-04-30",
            "training_planned_on": "2027-01-20"}
    for form in FORM_DATA.values():
        data.update(form)
    return data


def time_evaluations(envs: dict, mode, source, data, repeat, batches=5) -> dict:
    """µs per evaluation for each environment: the best of `batches` batches, the environments taking
    turns (a fresh copy of the data each time, as a task has)."""
    best = dict.fromkeys(envs, float("inf"))
    for _ in range(batches):
        for name, env in envs.items():
            call = env.evaluate if mode == "eval" else env.execute
            t0 = time.perf_counter()
            for _ in range(repeat):
                call(source, dict(data))
            best[name] = min(best[name], (time.perf_counter() - t0) / repeat)
    return {name: seconds * 1e6 for name, seconds in best.items()}


def bench_sandbox(bundle, n, repeat) -> dict:
    data = expression_data()
    envs = {"stock": stock_script_engine([]).environment, "sandbox": make_script_engine([]).environment}
    rows = [{"kind": kind, "source": " ".join(source.split()),
             **time_evaluations(envs, mode, source, data, repeat // 5)}
            for kind, mode, source in process_expressions()]
    # Lifecycles alternate between the engines in batches, so drift in the machine hits both alike.
    batches = {"stock": [], "sandbox": []}
    engines = {"stock": stock_script_engine, "sandbox": make_script_engine}
    for name, make in engines.items():
        engine_lifecycle(bundle.spec_json, bundle.subprocess_specs_json, -1, make)      # warm-up
    size = max(1, n // 10)
    for b in range(10):
        for name, make in engines.items():
            t0 = time.perf_counter()
            for i in range(size):
                engine_lifecycle(bundle.spec_json, bundle.subprocess_specs_json, b * size + i, make)
            batches[name].append(1000 * (time.perf_counter() - t0) / size)
    lifecycle = {name: statistics.median(ms) for name, ms in batches.items()}
    return {"rows": rows, "repeat": repeat, "n": size * 10, "lifecycle_ms": lifecycle,
            "completion_ms": {name: ms / (1 + len(HAPPY_PATH)) for name, ms in lifecycle.items()}}


def sandbox_table(result) -> str:
    lines = ["| Expression in processes/ | kind | stock µs | sandbox µs |", "|---|---|---:|---:|"]
    # (best of 5 batches per expression; the lifecycle is the median of 10 batches per engine)
    for row in result["rows"]:
        source = row["source"] if len(row["source"]) <= 60 else row["source"][:57] + "..."
        lines.append(f"| `{source}` | {row['kind']} | {row['stock']:.1f} | {row['sandbox']:.1f} |")
    mean = {k: statistics.fmean(r[k] for r in result["rows"]) for k in ("stock", "sandbox")}
    lines.append(f"| mean of {len(result['rows'])} expressions | | {mean['stock']:.1f} | {mean['sandbox']:.1f} |")
    life, done = result["lifecycle_ms"], result["completion_ms"]
    lines.append(f"| engine lifecycle, ms per complaint (start + 6 load/run/dump, N={result['n']}, median of "
                 f"10 batches) | | {life['stock']:.2f} | {life['sandbox']:.2f} |")
    lines.append(f"| ... ms per start or completion | | {done['stock']:.3f} | {done['sandbox']:.3f} |")
    return "\n".join(lines)


def run_sandbox(bundle, args):
    print(f"\n== Sandbox cost ({args.expr_repeat} evaluations per expression, {args.sandbox_n} lifecycles per "
          f"engine, no database)", flush=True)
    result = bench_sandbox(bundle, args.sandbox_n, args.expr_repeat)
    print(sandbox_table(result), flush=True)
    return result


# ---- 3. task-list latency ------------------------------------------------------------------------
def bulk_open_complaints(app, people, reference_number, rows, seed=7) -> dict:
    """Insert `rows` open complaints (Complaint + ProcessInstance + HumanTask) with Core executemany."""
    rng = random.Random(seed)
    now = utcnow()
    specialist_id = people["claims_specialist"].user_id
    with app.app_context():
        ref = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == reference_number)) \
            .scalar_one()
        version_id, process_id, workflow_json = ref.version_id, ref.process_id, ref.workflow_json
        lanes = {code: spec["lane"] for code, spec in app.config["ROLES"].items()}
        t_start = time.perf_counter()
        conn = db.session.connection()
        pi_table, c_table, t_table = ProcessInstance.__table__, Complaint.__table__, HumanTask.__table__
        counts = {"claims_available": 0, "claims_mine": 0, "customer_service": 0}
        chunk = 2000
        for offset in range(0, rows, chunk):
            numbers = [f"BENCH-{i:07d}" for i in range(offset, min(offset + chunk, rows))]
            created = [now - timedelta(minutes=rng.randint(0, 60 * 24 * 20)) for _ in numbers]
            ids = conn.execute(
                insert(pi_table).returning(pi_table.c.id, sort_by_parameter_order=True),
                [{"version_id": version_id, "process_id": process_id, "business_key": number, "status": "running",
                  "workflow_json": workflow_json, "next_timer_at": None, "row_version": 1,
                  "created_at": at, "updated_at": at} for number, at in zip(numbers, created)]).scalars().all()
            complaints, tasks = [], []
            for k, (number, inst_id, at) in enumerate(zip(numbers, ids, created)):
                claims = rng.random() < 0.6
                role = "claims_specialist" if claims else "customer_service"
                element_id, name = ("investigate", "调查取证") if claims else ("initial_review", "初步审核")
                assignee = specialist_id if claims and rng.random() < 0.05 else None
                if claims:
                    counts["claims_mine" if assignee else "claims_available"] += 1
                else:
                    counts["customer_service"] += 1
                due = None if rng.random() < 0.1 else at + timedelta(hours=rng.randint(-72, 24 * 14))
                complaints.append({
                    "number": number, "instance_id": inst_id, "channel": "hotline",
                    "customer_name": f"李四{offset + k}", "phone": f"+86 139{offset + k:08d}",
                    "email": None, "id_number": None, "policy_number": f"BP-{offset + k:08d}",
                    "claim_number": None, "category": "claim_delay", "description": "Bulk benchmark complaint.",
                    "received_at": at, "registered_by_id": people["customer_service"].user_id, "status": "open",
                    "current_step": name, "rounds": 1 if claims else 0, "risk_level": "low",
                    "created_at": at, "updated_at": at})
                tasks.append({
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "instance_id": inst_id,
                    "business_key": number, "element_id": element_id, "name": name, "lane": lanes[role],
                    "role": role, "form": element_id, "state": "open", "assignee_id": assignee,
                    "claimed_at": at if assignee else None, "due_at": due, "created_at": at})
            conn.execute(insert(c_table), complaints)
            conn.execute(insert(t_table), tasks)
        db.session.commit()
        seconds = time.perf_counter() - t_start
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        db.session.remove()
    return {"rows": rows, "insert_s": seconds, **counts}


def percentile(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def time_get(client, person, url, repeat) -> dict:
    call(client, "GET", url, person)                         # warm-up
    samples, total = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        body = call(client, "GET", url, person)
        samples.append(1000 * (time.perf_counter() - t0))
        total = body.get("total")
    return {"p50": percentile(samples, 0.5), "p95": percentile(samples, 0.95),
            "mean": statistics.fmean(samples), "total": total, "items": len(body.get("items", ()))}


def bench_task_list(app, people, rows, repeat) -> dict:
    client = app.test_client()
    number, _ = register(client, people, 10_000_000)         # the one real instance whose workflow is copied
    inserted = bulk_open_complaints(app, people, number, rows)
    specialist = people["claims_specialist"]
    available = time_get(client, specialist, "/api/v1/tasks?queue=available&per_page=50", repeat)
    mine = time_get(client, specialist, "/api/v1/tasks?queue=mine&per_page=50", repeat)
    if available["total"] < inserted["claims_available"] or mine["total"] < inserted["claims_mine"]:
        raise BenchError(f"queue totals {available['total']}/{mine['total']} below the inserted rows {inserted}")
    stats = time_get(client, people["management"], "/api/v1/processes/complaint_handling/stats", repeat)
    return {**inserted, "repeat": repeat, "available": available, "mine": mine, "stats": stats}


# ---- 4. serialized size --------------------------------------------------------------------------
def sizes(text: str) -> tuple[int, int]:
    raw = text.encode("utf-8")
    return len(raw), len(gzip.compress(raw, 6))


def read_instance(app, number) -> tuple[str, int]:
    with app.app_context():
        row = db.session.execute(select(ProcessInstance.workflow_json, ProcessInstance.version_id)
                                 .join(Complaint, Complaint.instance_id == ProcessInstance.id)
                                 .where(Complaint.number == number)).one()
        db.session.remove()
    return row.workflow_json, row.version_id


def bench_sizes(app, people, rounds) -> dict:
    client = app.test_client()
    number, tasks = register(client, people, 20_000_000)
    out = {"registered": sizes(read_instance(app, number)[0])}
    tasks, _ = walk(client, people, tasks, HAPPY_PATH[:4])   # ... -> customer_confirmation is open
    wf_json, version_id = read_instance(app, number)
    out["round_0"] = sizes(wf_json)
    round_ms = []
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        tasks, _ = walk(client, people, tasks, REEVALUATION_ROUND)
        round_ms.append(1000 * (time.perf_counter() - t0) / len(REEVALUATION_ROUND))
        out[f"round_{r}"] = sizes(read_instance(app, number)[0])
    tasks, last = walk(client, people, tasks, HAPPY_PATH[4:])
    if last.get("instance_status") != "completed":
        raise BenchError("the re-evaluated complaint did not complete")
    out["completed"] = sizes(read_instance(app, number)[0])
    with app.app_context():
        v = db.session.get(ProcessVersion, version_id)
        out["spec"] = sizes(v.spec_json + v.subprocess_specs_json)
        out["instances_per_version"] = db.session.execute(
            select(func.count()).select_from(ProcessInstance).where(ProcessInstance.version_id == version_id)
        ).scalar_one()
        db.session.remove()
    out["rounds"] = rounds
    out["round_ms"] = round_ms
    return out


def round_ends(round_ms: list) -> str:
    """The median ms per completion of the first and of the last rounds (three each, fewer when there are fewer than
    six) and their ratio: one round is four completions, too few to compare alone."""
    k = max(min(3, len(round_ms) // 2), 1)
    first, last = statistics.median(round_ms[:k]), statistics.median(round_ms[-k:])
    return f"{first:.1f} / {last:.1f} ({last / first:.2f}×)" if first else f"{first:.1f} / {last:.1f}"


# ---- profile -------------------------------------------------------------------------------------
def profile_http(app, people, n=20, top=10):
    client = app.test_client()
    happy_path(client, people, -2)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(n):
        happy_path(client, people, 30_000_000 + i)
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    # Only frames from the app and SpiffWorkflow, largest cumulative time first.
    stats.sort_stats("cumulative").print_stats(rf"({re.escape(str(ROOT / 'app'))}|SpiffWorkflow)", top)
    print(f"\n### cProfile: HTTP happy path, {n} complaints, top {top} cumulative (app/ and SpiffWorkflow)")
    text = buf.getvalue()
    print((text[text.index("   ncalls"):] if "   ncalls" in text else text).rstrip() + "\n", flush=True)


# ---- driver --------------------------------------------------------------------------------------
def run_backend(label, url, args, bundle_cache) -> dict:
    print(f"\n== {label}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    t0 = time.perf_counter()
    app, people, bundles = setup_backend(url)
    bundle = next(b for b in bundles if b.process_id == app.config["COMPLAINT_PROCESS"])
    bundle_cache.setdefault("bundle", bundle)
    result = {}
    result["http"] = bench_http(app, people, args.n)
    h = result["http"]
    print(f"  HTTP happy path: {h['n']} complaints in {h['seconds']:.1f} s = {h['per_s']:.1f}/s, "
          f"{h['ms_each']:.1f} ms each ({h['ms_per_request']:.1f} ms/request)", flush=True)
    result["sql"] = bench_statements(app, people)
    q = result["sql"]
    print(f"  SQL statements: registration {q['register']}, completion {q['complete_mean']:.1f} mean "
          f"({q['complete_max']} max; {q['complete']}), reads: available {q['read_available']}, "
          f"mine {q['read_mine']}, task {q['read_task']}, complaint {q['read_complaint']}", flush=True)
    result["sizes"] = bench_sizes(app, people, args.rounds)
    s = result["sizes"]
    print(f"  workflow_json: {s['round_0'][0]:,} B after 0 rounds, {s[f'round_{args.rounds}'][0]:,} B after "
          f"{args.rounds}; spec {s['spec'][0]:,} B once per version", flush=True)
    result["tasks"] = bench_task_list(app, people, args.rows, args.repeat)
    t = result["tasks"]
    print(f"  inserted {t['rows']:,} open complaints in {t['insert_s']:.1f} s; "
          f"available p50 {t['available']['p50']:.1f} ms / p95 {t['available']['p95']:.1f} ms "
          f"(total {t['available']['total']:,}); mine p50 {t['mine']['p50']:.1f} ms / p95 {t['mine']['p95']:.1f} ms "
          f"(total {t['mine']['total']:,})", flush=True)
    if args.profile and label == "SQLite":
        profile_http(app, people)
    with app.app_context():
        db.engine.dispose()
    result["wall_s"] = time.perf_counter() - t0
    return result


def kb(n):
    return f"{n / 1024:,.1f} KiB"


def table(results: dict, engine: dict, rounds: int, args) -> str:
    labels = list(results)
    head = "| Metric | " + " | ".join(labels) + " |"
    sep = "|---|" + "---:|" * len(labels)
    lines = [head, sep]

    def row(name, fn):
        cells = []
        for label in labels:
            r = results[label]
            cells.append(fn(r) if r is not None else "skipped")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("HTTP happy path, complaints/s", lambda r: f"{r['http']['per_s']:.1f} (N={r['http']['n']})")
    row("HTTP happy path, ms per complaint (7 requests)", lambda r: f"{r['http']['ms_each']:.1f}")
    row("HTTP, ms per request", lambda r: f"{r['http']['ms_per_request']:.1f}")
    row("SQL statements per completion, mean / max (target ≤ 12)",
        lambda r: f"{r['sql']['complete_mean']:.1f} / {r['sql']['complete_max']}")
    row("SQL statements per registration", lambda r: f"{r['sql']['register']}")
    row("SQL statements per read: tasks available / mine / one task / complaint (target ≤ 4)",
        lambda r: " / ".join(str(r['sql'][k]) for k in ("read_available", "read_mine", "read_task", "read_complaint")))
    row("Engine only (no DB, one run shown in each column), complaints/s",
        lambda r: f"{engine['per_s']:.1f} (N={engine['n']})")
    row("Engine only, ms per complaint (start + 6 load/run/dump)", lambda r: f"{engine['ms_each']:.1f}")
    row("HTTP / engine throughput", lambda r: f"{r['http']['per_s'] / engine['per_s']:.2f}")
    row("Open complaints bulk-inserted (s)", lambda r: f"{r['tasks']['rows']:,} ({r['tasks']['insert_s']:.1f} s)")
    row(f"GET tasks?queue=available&per_page=50 p50 / p95 ms (x{args.repeat})",
        lambda r: f"{r['tasks']['available']['p50']:.1f} / {r['tasks']['available']['p95']:.1f}")
    row("  total rows in that queue", lambda r: f"{r['tasks']['available']['total']:,}")
    row("GET tasks?queue=mine p50 / p95 ms",
        lambda r: f"{r['tasks']['mine']['p50']:.1f} / {r['tasks']['mine']['p95']:.1f}")
    row("  total rows in that queue", lambda r: f"{r['tasks']['mine']['total']:,}")
    row("GET processes/complaint_handling/stats (per-element counts, medians) p50 / p95 ms",
        lambda r: f"{r['tasks']['stats']['p50']:.1f} / {r['tasks']['stats']['p95']:.1f}")
    row("workflow_json after registration (gzip)",
        lambda r: f"{kb(r['sizes']['registered'][0])} ({kb(r['sizes']['registered'][1])})")
    row("workflow_json after 0 rounds (gzip)",
        lambda r: f"{kb(r['sizes']['round_0'][0])} ({kb(r['sizes']['round_0'][1])})")
    row(f"workflow_json after {rounds} rounds (gzip)",
        lambda r: f"{kb(r['sizes'][f'round_{rounds}'][0])} ({kb(r['sizes'][f'round_{rounds}'][1])})")
    row("  growth per round", lambda r: kb((r['sizes'][f'round_{rounds}'][0] - r['sizes']['round_0'][0]) / rounds)
        if rounds else "-")
    row(f"workflow_json completed after {rounds} rounds (gzip)",
        lambda r: f"{kb(r['sizes']['completed'][0])} ({kb(r['sizes']['completed'][1])})")
    row("ms per completion, median of the first / last 3 rounds (fewer below 6; last ÷ first; target ≤ 1.3)",
        lambda r: round_ends(r['sizes']['round_ms']) if rounds else "-")
    row("spec_json + subprocess_specs_json, stored once (gzip)",
        lambda r: f"{kb(r['sizes']['spec'][0])} ({kb(r['sizes']['spec'][1])})")
    row("real instances on that version (bulk rows excluded)", lambda r: f"{r['sizes']['instances_per_version']:,}")
    row("backend wall time (s)", lambda r: f"{r['wall_s']:.0f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="complaints through the HTTP happy path (default 200; quick: 4)")
    parser.add_argument("--pg-n", type=int, help="HTTP happy-path complaints on PostgreSQL (default: --n)")
    parser.add_argument("--engine-n", type=int, help="lifecycles on the bare engine (default: --n)")
    parser.add_argument("--rows", type=int, help="open complaints for the task-list test (default 10,000; quick 1,000)")
    parser.add_argument("--repeat", type=int, help="GET /tasks calls per queue (default 200; quick 20)")
    parser.add_argument("--rounds", type=int, default=10, help="re-evaluation rounds for the size test (default 10)")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL); a database "
                             f"{PG_DB_NAME!r} is dropped and created from it")
    parser.add_argument("--keep-pg-db", action="store_true", help=f"keep the {PG_DB_NAME!r} database afterwards")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny N, 1,000 rows")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile 20 HTTP happy paths on SQLite and print the top functions")
    parser.add_argument("--sandbox-only", action="store_true",
                        help="only the sandbox cost (no database): expressions and engine lifecycles, stock vs sandbox")
    parser.add_argument("--sandbox-n", type=int, help="lifecycles per engine for the sandbox cost (default 200)")
    parser.add_argument("--expr-repeat", type=int, help="evaluations per expression and engine (default 2000)")
    args = parser.parse_args(argv)
    args.sandbox_n = args.sandbox_n or (5 if args.quick else 200)
    args.expr_repeat = args.expr_repeat or (50 if args.quick else 2000)
    if args.sandbox_only:
        app = create_app(TestConfig)
        quiet_logging()
        bundles, problems = load_processes(app.config["PROCESSES_DIR"], app.config["FORMS_DIR"], known_lanes(app))
        if problems:
            raise BenchError("processes/ does not deploy: " + "; ".join(map(str, problems)))
        run_sandbox(next(b for b in bundles if b.process_id == app.config["COMPLAINT_PROCESS"]), args)
        return 0
    args.n = args.n or (4 if args.quick else 200)
    args.rows = args.rows or (1_000 if args.quick else 10_000)
    args.repeat = args.repeat or (20 if args.quick else 200)
    engine_n = args.engine_n or args.n

    t0 = time.perf_counter()
    results, cache = {}, {}
    with sqlite_bench_url("complaints-bench-") as url:
        results["SQLite"] = run_backend("SQLite", url, args, cache)

    if args.postgres_url:
        pg_args = argparse.Namespace(**vars(args))
        pg_args.n = args.pg_n or args.n
        with postgres_bench(args.postgres_url, keep=args.keep_pg_db) as url:
            results["PostgreSQL"] = run_backend("PostgreSQL", url, pg_args, cache)
    else:
        results["PostgreSQL"] = None
        print("\n== PostgreSQL: skipped (pass --postgres-url URL or set TEST_POSTGRES_URL)")

    print(f"\n== Engine only ({engine_n} lifecycles, no database)", flush=True)
    engine = bench_engine(cache["bundle"], engine_n)
    print(f"  {engine['per_s']:.1f} complaints/s, {engine['ms_each']:.1f} ms each", flush=True)
    for label, r in results.items():
        if r is not None:
            print(f"  HTTP/engine throughput on {label}: {r['http']['per_s'] / engine['per_s']:.2f}")
    sandbox = run_sandbox(cache["bundle"], args)

    print(f"\n## Results (total {time.perf_counter() - t0:.0f} s)\n")
    print(table(results, engine, args.rounds, args))
    print("\n" + sandbox_table(sandbox))
    return 0


if __name__ == "__main__":
    sys.exit(main())

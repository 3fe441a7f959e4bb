"""The analysis page at 100,000 complaints (issue 11): latencies printed, never asserted.

    .venv/bin/python benchmarks/analysis.py                 # 100,000 complaints; PostgreSQL too with TEST_POSTGRES_URL
    .venv/bin/python benchmarks/analysis.py --quick         # smoke run: 2,000 complaints, 3 calls each
    .venv/bin/python benchmarks/analysis.py --reuse /tmp/analysis-db   # keep the seeded databases; seed once

For each backend (a temp-file SQLite database; for PostgreSQL a database of its own, created and dropped from
the admin URL), migrated with the real migrations and processes/ deployed, N complaints are seeded as rows
(SQLAlchemy Core bulk inserts: the analysis reads rows only, never a workflow, so no complaint is walked):
received uniformly over the past year, 90% closed with an outcome, rounds, a cause and a responsible party,
the regulator's decision clock, three step deadlines each (met or missed), a survey answered for a third of
the closed ones, phones drawn from a pool so that some people complain again, and a few improvement measures
of the quarter before. Then, through Flask's test client with a logged-in manager:

- app.analysis.compute() of the last whole quarter (about a quarter of the complaints), and its SQL statements;
- GET /analysis?quarter=… (the page: the analysis, its tables and chart data, rendered);
- GET /analysis/export.xlsx?quarter=… (the tables in Excel);
- GET /analysis/complaints.xlsx and .csv?quarter=… (the quarter's complaints, streamed);
- GET /analysis/complaints.xlsx and .csv over the whole year (every complaint: the 100,000-row export), once,
  with the growth of the process's peak memory.

p50/p95 over the calls. The target (issue 11): the page well under a second on PostgreSQL.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import throughput as tp  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import analysis, create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import (Complaint, Deadline, ImprovementMeasure, ProcessInstance, ProcessVersion,  # noqa: E402
                        SurveyResponse, User)
from app.timeutil import utcnow  # noqa: E402

tp.PG_DB_NAME = f"complaints_bench_analysis_{os.getpid()}"
KEPT_PG_DB_NAME = "complaints_bench_analysis_kept"
BATCH = 5_000
TARGET_MS = 1000.0
MANAGER = "bench_analysis_manager"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

CATEGORIES = {"claim_delay": 30, "claim_amount": 20, "claim_denial": 12, "claim_documents": 8, "claim_other": 4,
              "sales_misleading": 8, "sales_disclosure": 4, "sales_other": 2, "underwriting": 2, "surrender": 3,
              "policy_service": 2, "misconduct": 1, "service_attitude": 2, "service_response": 1, "other": 1}
CHANNELS = {"hotline": 50, "website": 20, "mobile_app": 20, "email": 8, "other": 2}
PRODUCT_LINES = {"motor": 35, "health": 30, "accident": 10, "life_ordinary": 10, "property": 8, "liability": 7}
CAUSES = {"process_backlog": 30, "process_design": 10, "staff_error": 15, "staff_communication": 15,
          "external_third_party": 10, "external_customer": 15, "no_fault": 5}
PARTIES = {"company": 70, "intermediary": 20}
OUTCOMES = {"resolved": 88, "not_accepted": 6, "malicious": 1, "withdrawn": 5}
STEPS = (("initial_review_deadline", "初审时限（24小时）", "initial_review", 24),
         ("investigation_deadline", "调查时限（3个工作日）", "investigate", 72),
         ("resolution_deadline", "方案反馈时限（7个工作日）", "resolve", 168))


def pick(rng, weights: dict):
    return rng.choices(list(weights), list(weights.values()))[0]


# ---- seeding -------------------------------------------------------------------------------------------
def complaint_row(rng, i, now, phones) -> dict:
    received = now - timedelta(seconds=rng.uniform(3600, 365 * 86400))
    closed = rng.random() < 0.9 and received < now - timedelta(days=2)
    hours = rng.lognormvariate(0, 0.8) * 200
    closed_at = received + timedelta(hours=hours) if closed else None
    if closed_at and closed_at > now:
        closed, closed_at = False, None
    due = received + timedelta(days=30)
    decided = received + timedelta(hours=hours * rng.uniform(0.6, 1.0)) if closed else None
    return {"id": i, "number": f"AN-{i:07d}", "channel": pick(rng, CHANNELS), "customer_name": f"客户{i}",
            "phone": f"13{rng.randrange(phones):09d}", "category": pick(rng, CATEGORIES),
            "product_line": pick(rng, PRODUCT_LINES), "description": "benchmark", "received_at": received,
            "status": "closed" if closed else "open", "closed_at": closed_at, "created_at": received,
            "updated_at": closed_at or received, "language": "zh", "instance_id": i,
            "cause_code": pick(rng, CAUSES) if closed else None, "responsible_party": pick(rng, PARTIES) if closed else None,
            "outcome": pick(rng, OUTCOMES) if closed else None, "satisfied": (rng.random() < 0.8) if closed else None,
            "rounds": rng.choices((0, 1, 2), (80, 15, 5))[0] if closed else 0,
            "decision_due_at": due, "decided_at": decided, "decision_clock": "met" if decided and decided <= due else None,
            "current_step": "", "sms_opt_out": False, "email_opt_out": False}


def related_rows(rng, c: dict, version_id, deadline_ids, now) -> tuple[dict, list, dict | None]:
    inst = {"id": c["id"], "version_id": version_id, "process_id": "complaint_handling", "business_key": c["number"],
            "status": "completed" if c["status"] == "closed" else "running", "workflow_json": "{}", "row_version": 1,
            "created_at": c["received_at"], "updated_at": c["updated_at"], "completed_at": c["closed_at"], "awaits": ""}
    deadlines, start = [], c["received_at"]
    for element_id, name, host, hours in STEPS:
        due = start + timedelta(hours=hours)
        took = timedelta(hours=rng.lognormvariate(0, 0.6) * hours * 0.6)
        done = start + took
        if done > now and c["status"] == "open":
            deadlines.append(_deadline(deadline_ids, c, element_id, name, host, due, "open", None))
            break
        state = "met" if done <= due else "missed"
        deadlines.append(_deadline(deadline_ids, c, element_id, name, host, due, state, done if state == "met" else due))
        start = done
    survey = None
    if c["status"] == "closed" and rng.random() < 0.33:
        survey = {"complaint_id": c["id"], "form": "satisfaction_survey", "submitted_at": c["closed_at"],
                  "answers": {k: rng.randint(1, 5) for k in ("overall", "speed", "communication", "fairness", "recommend")}}
    return inst, deadlines, survey


def _deadline(ids, c, element_id, name, host, due, state, closed_at) -> dict:
    ids[0] += 1
    return {"id": ids[0], "instance_id": c["id"], "timer_task_id": f"t-{ids[0]}", "element_id": element_id, "name": name,
            "host_element_id": host, "due_at": due, "state": state, "provisional": False, "created_at": c["received_at"],
            "closed_at": closed_at}


def seed(app, n, seed_value=11) -> dict:
    rng, now = random.Random(seed_value), utcnow()
    t0 = time.perf_counter()
    with app.app_context():
        version_id = db.session.execute(select(ProcessVersion.id).where(ProcessVersion.process_id == "complaint_handling")
                                        .limit(1)).scalar_one()
        deadline_ids, phones = [0], int(n * 0.8)
        for start in range(1, n + 1, BATCH):
            complaints = [complaint_row(rng, i, now, phones) for i in range(start, min(start + BATCH, n + 1))]
            related = [related_rows(rng, c, version_id, deadline_ids, now) for c in complaints]
            db.session.execute(insert(ProcessInstance), [r[0] for r in related])
            db.session.execute(insert(Complaint), complaints)
            db.session.execute(insert(Deadline), [d for r in related for d in r[1]])
            surveys = [r[2] for r in related if r[2]]
            if surveys:
                db.session.execute(insert(SurveyResponse), surveys)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":         # the rows came with their ids: move the sequences on
            for table in ("process_instance", "complaint", "deadline"):
                db.session.execute(db.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                           f"(SELECT max(id) FROM {table}))"))
        seed_measures(now, version_id)
        db.session.remove()
        if db.engine.dialect.name == "postgresql":       # as autovacuum leaves a table whose rows settled
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(db.text("VACUUM ANALYZE"))
    return {"complaints": n, "deadlines": deadline_ids[0], "seconds": time.perf_counter() - t0}


def seed_measures(now, version_id):
    """Three measures of the quarter before the last whole one, attached to a review instance."""
    before = analysis.previous_quarter(analysis.previous_quarter(now.date()).start)
    review = ProcessInstance(version_id=version_id, process_id="quarterly_review", status="running", workflow_json="{}")
    db.session.add(review)
    db.session.flush()
    for title, category in (("理赔时效专项整改", "claim_delay"), ("理赔金额复核流程", "claim_amount"), ("销售话术培训", "sales_misleading")):
        db.session.add(ImprovementMeasure(review_instance_id=review.id, period_start=before.start, period_end=before.end,
                                          title=title, category=category, due_on=before.end + timedelta(days=60)))
    db.session.commit()


# ---- measuring -----------------------------------------------------------------------------------------
def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(fn, repeat) -> dict:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50": statistics.median(times), "p95": percentile(times, 0.95), "n": repeat}


def statements(app, fn) -> tuple[int, bool]:
    """(SQL statements `fn` runs, whether any of them names workflow_json)."""
    seen = []
    with app.app_context():
        engine = db.engine

        def record(conn, cursor, statement, *args):
            seen.append(statement)
        event.listen(engine, "before_cursor_execute", record)
        try:
            fn()
        finally:
            event.remove(engine, "before_cursor_execute", record)
    return len(seen), any("workflow_json" in s for s in seen)


def logged_in(app):
    with app.app_context():
        if db.session.execute(select(User).where(User.username == MANAGER)).scalar_one_or_none() is None:
            tp.make_person(MANAGER, "management")
        db.session.remove()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login", data={"username": MANAGER, "password": f"pw-{MANAGER}",
                                    "csrf_token": TOKEN.search(page).group(1)})
    if r.status_code != 302:
        raise tp.BenchError(f"login failed: {r.status_code}")
    return client


def fetch(app, client, url) -> int:
    """GET url in an app context of its own, the whole body read (a streamed one too); returns its size."""
    with app.app_context():
        r = client.get(url)
        if r.status_code != 200:
            raise tp.BenchError(f"GET {url}: {r.status_code}")
        return len(r.get_data())


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(app, args) -> dict:
    quarter = analysis.previous_quarter(utcnow().date())
    year = analysis.period(quarter.end - timedelta(days=370), quarter.end + timedelta(days=95))
    q_args = f"quarter={quarter.label}"
    y_args = f"from={year.start}&to={year.end}"
    client = logged_in(app)

    def compute():
        with app.app_context():
            data = analysis.of_period(db.session, quarter)
            db.session.remove()
        return data
    with app.app_context():
        data = analysis.of_period(db.session, quarter)
        db.session.remove()
    out = {"quarter": quarter.label, "received": data["totals"]["count"], "closed": data["closed"]["closed"]}
    out["statements"], out["workflow_read"] = statements(app, lambda: analysis.of_period(db.session, quarter))
    out["compute"] = timed(compute, args.repeat)
    out["page"] = timed(lambda: fetch(app, client, f"/analysis?{q_args}"), args.repeat)
    out["tables_xlsx"] = timed(lambda: fetch(app, client, f"/analysis/export.xlsx?{q_args}"), args.export_repeat)
    out["quarter_xlsx"] = timed(lambda: fetch(app, client, f"/analysis/complaints.xlsx?{q_args}"), args.export_repeat)
    out["quarter_csv"] = timed(lambda: fetch(app, client, f"/analysis/complaints.csv?{q_args}"), args.export_repeat)
    rss = max_rss_mb()
    sizes = {}
    for fmt in ("csv", "xlsx"):
        t0 = time.perf_counter()
        sizes[fmt] = fetch(app, client, f"/analysis/complaints.{fmt}?{y_args}")
        out[f"all_{fmt}"] = {"p50": (time.perf_counter() - t0) * 1000, "p95": None, "n": 1, "bytes": sizes[fmt]}
    out["all_rows"] = fetch_count(app, year)
    out["rss_growth_mb"], out["rss_mb"] = max_rss_mb() - rss, max_rss_mb()
    return out


def fetch_count(app, p) -> int:
    with app.app_context():
        start, end = p.instants()
        n = db.session.execute(select(func.count()).select_from(Complaint).where(Complaint.received_at >= start,
                                                                                 Complaint.received_at < end)).scalar_one()
        db.session.remove()
    return n


# ---- backends ------------------------------------------------------------------------------------------
def setup(url, args, reuse) -> tuple:
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    tp.quiet_logging()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seeded = db.session.execute(select(func.count()).select_from(Complaint)).scalar_one()
        db.session.remove()
    if reuse and seeded >= args.n:
        return app, {"complaints": seeded, "reused": True}
    app, _people, _bundles = tp.setup_backend(url)
    return app, seed(app, args.n)


def run_backend(label, url, args, reuse=False) -> dict:
    print(f"\n== {label}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    app, seeded = setup(url, args, reuse)
    print(f"   seeded: {seeded}", flush=True)
    result = measure(app, args)
    with app.app_context():
        db.engine.dispose()
    return result


def ms(figure) -> str:
    if figure is None:
        return "—"
    p95 = f" / {figure['p95']:.0f}" if figure.get("p95") is not None else ""
    return f"{figure['p50']:.0f}{p95}"


ROWS = (("compute", "app.analysis.compute(), last whole quarter (ms p50 / p95)"),
        ("page", "GET /analysis?quarter=… (the page, rendered)"),
        ("tables_xlsx", "GET /analysis/export.xlsx (the tables)"),
        ("quarter_xlsx", "GET /analysis/complaints.xlsx, the quarter's complaints"),
        ("quarter_csv", "GET /analysis/complaints.csv, the quarter's complaints"),
        ("all_xlsx", "GET /analysis/complaints.xlsx, every complaint of the year (once)"),
        ("all_csv", "GET /analysis/complaints.csv, every complaint of the year (once)"))


def table(results: dict, args) -> str:
    names = [name for name, r in results.items() if r]
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    first = results[names[0]]
    lines.append(f"| complaints received in {first['quarter']} / closed in it | " +
                 " | ".join(f"{results[n]['received']:,} / {results[n]['closed']:,}" for n in names) + " |")
    for key, title in ROWS:
        lines.append(f"| {title} | " + " | ".join(ms(results[n][key]) for n in names) + " |")
    lines.append("| rows in the year's export / sizes csv, xlsx (MB) | " + " | ".join(
        f"{results[n]['all_rows']:,} / {results[n]['all_csv']['bytes'] / 1e6:.1f}, {results[n]['all_xlsx']['bytes'] / 1e6:.1f}"
        for n in names) + " |")
    lines.append("| the process's peak memory after all calls (MB) / its growth during the year's exports | " +
                 " | ".join(f"{results[n]['rss_mb']:.0f} / {results[n]['rss_growth_mb']:.0f}" for n in names) + " |")
    lines.append("| SQL statements per analysis / any of them reads workflow_json | " +
                 " | ".join(f"{results[n]['statements']} / {'YES' if results[n]['workflow_read'] else 'no'}"
                            for n in names) + " |")
    lines.append(f"| target: the page ≤ {TARGET_MS:.0f} ms on PostgreSQL | " + " | ".join(
        ("met" if results[n]["page"]["p95"] <= TARGET_MS else "NOT met") if n == "PostgreSQL" else "—"
        for n in names) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="complaints to seed (default 100,000; quick: 2,000)")
    parser.add_argument("--repeat", type=int, help="calls of the analysis and the page (default 20; quick: 3)")
    parser.add_argument("--export-repeat", type=int, help="calls of each quarter export (default 3; quick: 1)")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL); a database of the benchmark's "
                             "own is created from it and dropped afterwards")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 complaints, 3 calls each")
    parser.add_argument("--reuse", metavar="DIR",
                        help=f"keep the seeded databases (SQLite in DIR, PostgreSQL as {KEPT_PG_DB_NAME!r}) and "
                             "reuse them when they hold at least --n complaints (migrations still run)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    args = parser.parse_args(argv)
    args.n = args.n or (2_000 if args.quick else 100_000)
    args.repeat = args.repeat or (3 if args.quick else 20)
    args.export_repeat = args.export_repeat or (1 if args.quick else 3)

    t0 = time.perf_counter()
    results = {"SQLite": None, "PostgreSQL": None}
    if not args.postgres_only:
        tmp = Path(args.reuse).resolve() if args.reuse else Path(tempfile.mkdtemp(prefix="complaints-bench-analysis-"))
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            results["SQLite"] = run_backend("SQLite", f"sqlite:///{tmp}/analysis.db", args, bool(args.reuse))
        finally:
            if not args.reuse:
                shutil.rmtree(tmp, ignore_errors=True)
    if args.postgres_url and not args.sqlite_only:
        if args.reuse:
            from reads import ensure_pg_database
            results["PostgreSQL"] = run_backend("PostgreSQL", ensure_pg_database(args.postgres_url, KEPT_PG_DB_NAME),
                                                args, True)
        else:
            try:
                results["PostgreSQL"] = run_backend("PostgreSQL", tp.postgres_bench_url(args.postgres_url), args)
            finally:
                tp.drop_postgres_bench_db(args.postgres_url)
    else:
        print("\n== PostgreSQL: skipped (pass --postgres-url URL or set TEST_POSTGRES_URL)")
    print(f"\n## Analysis at {args.n:,} complaints (received over the past year, 90% closed), {args.repeat} calls "
          f"of the analysis and the page, {args.export_repeat} of each quarter export "
          f"(total {time.perf_counter() - t0:.0f} s)\n")
    print(table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reads at 100,000 complaints (issue 10, target 5): latencies printed, never asserted.

    .venv/bin/python benchmarks/reads.py                   # 100,000 complaints; PostgreSQL too with TEST_POSTGRES_URL
    .venv/bin/python benchmarks/reads.py --n 20000 --repeat 100
    .venv/bin/python benchmarks/reads.py --quick           # smoke run: 300 complaints, 3 calls per read
    .venv/bin/python benchmarks/reads.py --explain         # + the plan of every SELECT each read runs
    .venv/bin/python benchmarks/reads.py --reuse /tmp/reads-db   # keep the seeded databases; seed only once

For each backend (a temp-file SQLite database; for PostgreSQL a database of its own, created and dropped
from the admin URL, as benchmarks/throughput.py does), migrated with the real migrations, processes/ deployed:

1. Templates: one real complaint per shape walked through the JSON API (on the first backend; the next
   takes them over). Closed: the happy path, one and two dissatisfied rounds, a management decision,
   rejected at the initial review, reviewed (核查) after closing. Open: waiting at each step, including a
   review. Every row each of them left (instance, complaint, human tasks, deadlines, element visits, audit
   events, customer messages with their deliveries and portal links) is the template of its shape.
2. Seeding: N complaints copied from the templates — SQLAlchemy Core bulk inserts on SQLite (5,000 rows a
   statement), COPY on PostgreSQL — 90% closed with their last step spread evenly over the past year, 10%
   open. The time each
   step took is drawn from a log-normal distribution with a median per step, so the statistics' medians
   mean something; an open complaint has waited at its step for such a time too, so some are past their
   deadline. A deadline whose task finished after its due time is marked missed. Handlers are drawn from
   pools of users per role; half of the open tasks are claimed; 2% of the complaints name their claim's
   handler (回避). Rows are numbered in time order across complaints, as a live system writes them.
3. Reads: p50/p95 over repeated calls through Flask's test client with real tokens and real routes, each
   call on another complaint where the read names one; SQL statements per call; the first call apart
   (the statistics summarize the days no read needed before, once). And the handler's landing page, the
   HTML queue page, as a logged-in browser gets it.

At 100,000 complaints the seeding writes 11 million rows: 26 minutes on SQLite and 10 on PostgreSQL on
the shared 2-core machine. `--reuse DIR` keeps both databases, so a change is measured on the same data
(a reused database gets the migrations since, timed).

What is not real in the seeded rows: they share their template's workflow_json (they are for reading:
completing a seeded task would fail), the audit hashes are placeholders (the chains do not verify), and
a missed deadline did not fire its escalation steps.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import throughput as tp  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import JSON, MetaData, event, func, insert, inspect, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import create_app, notifications  # noqa: E402
from app.api.auth import issue_token  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Complaint, ProcessVersion, User  # noqa: E402
from app.timeutil import BUSINESS_TZ, utcnow  # noqa: E402

# Its own database, never the throughput benchmark's nor another run's (the smoke test may run beside one).
tp.PG_DB_NAME = f"complaints_bench_reads_{os.getpid()}"
KEPT_PG_DB_NAME = "complaints_bench_reads_kept"
BATCH_ROWS = 5_000          # rows per INSERT executemany
PLANS_PER_BATCH = 2_000     # complaints expanded (and their rows interleaved in time order) at once
TARGET_MS = 20.0
STATS_TARGET_MS = 100.0
SEARCH_TARGET_MS = 100.0        # partial matches and the filtered complaint list (issue 12)

# ---- the shapes of complaints ------------------------------------------------------------------------
FORMS = {**tp.FORM_DATA,
         "initial_review_high": {**tp.FORM_DATA["initial_review"], "risk_level": "high"},
         "initial_review_reject": {"decision": "reject", "risk_level": "low", "review_notes": "Not about a claim.",
                                   "rejection_reason": "The complaint is about a product sale, not a claim."},
         "management_decision": {"approved": True, "decision_comments": "Approved as proposed."},
         "review_decision": {"review_result": "The handling and the decision were right.", "decision_changed": False}}
REVIEW_REQUEST = ("review-request", "customer_service", None)    # the customer asks for a review (核查)
STEP = {key: (element, role, key) for key, element, role in (
    ("initial_review", "initial_review", "customer_service"),
    ("initial_review_high", "initial_review", "customer_service"),
    ("initial_review_reject", "initial_review", "customer_service"),
    ("investigate", "investigate", "claims_specialist"),
    ("analyse_and_plan", "analyse_and_plan", "claims_specialist"),
    ("management_decision", "management_decision", "management"),
    ("feedback_to_customer", "feedback_to_customer", "claims_specialist"),
    ("customer_confirmation", "customer_confirmation", "customer_service"),
    ("customer_confirmation_unhappy", "customer_confirmation", "customer_service"),
    ("re_evaluation", "re_evaluation", "claims_specialist"),
    ("archive", "archive", "customer_service"),
    ("review_decision", "review_decision", "management"))}
HAPPY = [STEP[k] for k in ("initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                           "customer_confirmation", "archive")]
ROUND = [STEP[k] for k in ("customer_confirmation_unhappy", "re_evaluation", "analyse_and_plan",
                           "feedback_to_customer")]
HIGH_RISK = [STEP[k] for k in ("initial_review_high", "investigate", "analyse_and_plan", "management_decision",
                               "feedback_to_customer", "customer_confirmation", "archive")]
# name -> (share among closed or open complaints, steps walked). An open shape stops before its step.
CLOSED_SHAPES = {
    "happy path": (0.60, HAPPY),
    "one dissatisfied round": (0.15, HAPPY[:4] + ROUND + HAPPY[4:]),
    "two dissatisfied rounds": (0.05, HAPPY[:4] + ROUND + ROUND + HAPPY[4:]),
    "management decision": (0.10, HIGH_RISK),
    "rejected": (0.06, [STEP["initial_review_reject"], STEP["archive"]]),
    "reviewed after closing": (0.04, HAPPY + [REVIEW_REQUEST, STEP["review_decision"]]),
}
OPEN_SHAPES = {
    "at initial_review": (0.20, []),
    "at investigate": (0.20, HAPPY[:1]),
    "at analyse_and_plan": (0.15, HAPPY[:2]),
    "at management_decision": (0.05, HIGH_RISK[:3]),
    "at feedback_to_customer": (0.10, HAPPY[:3]),
    "at customer_confirmation": (0.12, HAPPY[:4]),
    "at re_evaluation": (0.06, HAPPY[:4] + ROUND[:1]),
    "at archive": (0.09, HAPPY[:5]),
    "at review_decision": (0.03, HAPPY + [REVIEW_REQUEST]),
}
# --quick walks only these (a smoke run: the templates are most of its time).
QUICK_SHAPES = ("happy path", "one dissatisfied round", "at initial_review", "at investigate",
                "at customer_confirmation", "at review_decision")
# Median hours a task waits at each step (log-normal, sigma below); "review-request": how long after
# closing the customer asks for a review.
MEDIAN_HOURS = {"initial_review": 6, "investigate": 40, "analyse_and_plan": 30, "management_decision": 20,
                "feedback_to_customer": 16, "customer_confirmation": 50, "re_evaluation": 10, "archive": 12,
                "review_decision": 48, "review-request": 120}
SIGMA = 0.8
POOL_SIZES = {"customer_service": 40, "claims_specialist": 80, "management": 12}
CLAIM_HANDLER_SHARE = 0.02
CLAIMED_SHARE = 0.5


@dataclass
class Template:
    """The rows one real complaint left, with every time as (index of the API call it happened in or
    belongs to, offset from that call's start): a seeded copy gets new call times and keeps the offsets."""
    shape: str
    closed: bool
    labels: list                      # element id completed by each call ("register", "review-request" ...)
    number: str
    rows: dict                        # table name -> [row dict]
    times: dict = field(default_factory=dict)   # table name -> [[(column, call index, offset)] per row]
    users: dict = field(default_factory=dict)   # user id of the walker -> role
    usernames: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)  # (process id, version) -> process_version.id where walked


def call_index(bounds, value) -> int:
    return max(bisect.bisect_right(bounds, value) - 1, 0)


def walk_shape(client, people, i, steps) -> tuple[str, list, list]:
    """Register complaint `i` and walk `steps`; returns (number, the start time of each call, its label)."""
    bounds, labels = [utcnow()], ["register"]
    number, tasks = tp.register(client, people, i)
    for element_id, role, form_key in steps:
        bounds.append(utcnow())
        labels.append(element_id)
        if element_id == "review-request":
            tasks = tp.call(client, "POST", f"/api/v1/complaints/{number}/review-request", people[role],
                            {"reason": "The customer disagrees with the decision."})["tasks"]
            continue
        task = tp.pick_task(client, people, tasks, element_id, role)
        tasks = tp.call(client, "POST", f"/api/v1/tasks/{task['id']}/complete", people[role],
                        {"data": FORMS[form_key]})["next_tasks"]
    return number, bounds, labels


# Per table: how its rows are found for one complaint, and the column whose time anchors a due time.
ANCHORS = {"process_instance": "created_at", "complaint": "created_at", "human_task": "created_at",
           "deadline": "created_at", "element_visit": "at", "audit_event": "at", "outbox_message": "created_at",
           "delivery": "created_at", "portal_link": "created_at"}


def template_rows(conn, number) -> dict:
    """Every row of complaint `number` in every table a read touches, in id order."""
    t = {name: db.metadata.tables[name] for name in ANCHORS}
    complaint = conn.execute(select(t["complaint"]).where(t["complaint"].c.number == number)).mappings().one()
    instances = conn.execute(select(t["process_instance"]).where(t["process_instance"].c.business_key == number)
                             .order_by(t["process_instance"].c.id)).mappings().all()
    ids = [r["id"] for r in instances]

    def rows(table, condition):
        return [dict(r) for r in conn.execute(select(table).where(condition).order_by(table.c.id)).mappings()]
    messages = rows(t["outbox_message"], t["outbox_message"].c.business_key == number)
    return {"process_instance": [dict(r) for r in instances], "complaint": [dict(complaint)],
            "human_task": rows(t["human_task"], t["human_task"].c.instance_id.in_(ids)),
            "deadline": rows(t["deadline"], t["deadline"].c.instance_id.in_(ids)),
            "element_visit": rows(t["element_visit"], t["element_visit"].c.instance_id.in_(ids)),
            "audit_event": rows(t["audit_event"], (t["audit_event"].c.business_key == number)
                                | t["audit_event"].c.instance_id.in_(ids)),
            "outbox_message": messages,
            "delivery": rows(t["delivery"], t["delivery"].c.message_id.in_([m["id"] for m in messages])),
            "portal_link": rows(t["portal_link"], t["portal_link"].c.complaint_id == complaint["id"])}


def compile_times(template: Template, bounds: list, end: datetime):
    """Replace each time by (call index, offset). A time after the walk (a due time, a link's expiry) keeps
    its distance from its row's anchor time."""
    for table, rows in template.rows.items():
        per_row = []
        for row in rows:
            anchor = call_index(bounds, row[ANCHORS[table]])
            times = []
            for column, value in row.items():
                if isinstance(value, datetime):
                    k = call_index(bounds, value) if value <= end else anchor
                    times.append((column, k, value - bounds[k]))
            per_row.append(times)
        template.times[table] = per_row


def capture_templates(app, people, only=None) -> list[Template]:
    """Walk one complaint per shape (or per shape named in `only`) through the API and keep its rows as a
    template."""
    client = app.test_client()
    users = {p.user_id: role for role, p in people.items()}
    names = {p.username: role for role, p in people.items()}
    templates, versions = [], version_ids(app)
    shapes = [(name, True, share, steps) for name, (share, steps) in CLOSED_SHAPES.items()] + \
             [(name, False, share, steps) for name, (share, steps) in OPEN_SHAPES.items()]
    shapes = [shape for shape in shapes if only is None or shape[0] in only]
    for i, (shape, closed, _share, steps) in enumerate(shapes):
        number, bounds, labels = walk_shape(client, people, 90_000_000 + i, steps)
        end = utcnow()
        with app.app_context():
            rows = template_rows(db.session.connection(), number)
            db.session.remove()
        if closed != (rows["complaint"][0]["status"] == "closed" and
                      all(r["state"] != "open" for r in rows["human_task"])):
            raise tp.BenchError(f"shape {shape!r}: complaint {number} is not {'closed' if closed else 'open'}")
        template = Template(shape, closed, labels, number, rows, users=users, usernames=names, versions=versions)
        compile_times(template, bounds, end)
        templates.append(template)
    return templates


# ---- seeding -----------------------------------------------------------------------------------------
@dataclass
class Plan:
    """One seeded complaint: its template, the start time of each of its calls, its number and handlers."""
    template: Template
    starts: list
    number: str = ""
    handlers: dict = field(default_factory=dict)      # role -> (user id, username)
    claim_handler: str | None = None
    index: int = 0


def step_hours(rng, label) -> float:
    return rng.lognormvariate(0, SIGMA) * MEDIAN_HOURS.get(label, 1)


def plan_starts(rng, template: Template, now: datetime) -> list:
    """When each call of a seeded copy happened: the last call of a closed complaint uniformly over the past
    year, an open one's last call as long before now as its open step has waited."""
    gaps = [timedelta(hours=step_hours(rng, label)) for label in template.labels[1:]]
    if template.closed:
        last = now - timedelta(hours=1) - timedelta(seconds=rng.uniform(0, 365 * 86400))
    else:
        waiting_at = next(r["element_id"] for r in template.rows["human_task"] if r["state"] == "open")
        last = now - timedelta(hours=step_hours(rng, waiting_at))
    starts = [last]
    for gap in reversed(gaps):
        starts.append(starts[-1] - gap)
    return starts[::-1]


def make_plans(rng, templates, n, pools, now) -> list[Plan]:
    """n complaints (90% closed), oldest first, numbered per business day as the app numbers them."""
    closed = [t for t in templates if t.closed]
    open_ = [t for t in templates if not t.closed]
    share = {t.shape: (CLOSED_SHAPES if t.closed else OPEN_SHAPES)[t.shape][0] for t in templates}
    n_open = n // 10
    chosen = rng.choices(closed, [share[t.shape] for t in closed], k=n - n_open) + \
        rng.choices(open_, [share[t.shape] for t in open_], k=n_open)
    plans = [Plan(t, plan_starts(rng, t, now)) for t in chosen]
    plans.sort(key=lambda p: p.starts[0])
    per_day = {}
    for i, plan in enumerate(plans):
        day = plan.starts[0].astimezone(BUSINESS_TZ).date()
        per_day[day] = per_day.get(day, 999) + 1         # the walked templates took the low numbers
        plan.number, plan.index = f"TS-{day:%Y%m%d}-{per_day[day]:06d}", i
        plan.handlers = {role: rng.choice(users) for role, users in pools.items()}
        if rng.random() < CLAIM_HANDLER_SHARE:
            plan.claim_handler = rng.choice([u for u in pools["claims_specialist"]
                                             if u != plan.handlers["claims_specialist"]])[1]
    return plans


class IdSource:
    """The next free id of each table (rows are inserted with their ids, so copies can refer to each other)."""

    def __init__(self, conn, tables):
        self.next = {name: (conn.execute(select(func.max(db.metadata.tables[name].c.id))).scalar() or 0) + 1
                     for name in tables}

    def take(self, table) -> int:
        value = self.next[table]
        self.next[table] += 1
        return value


class Expander:
    """Turns a plan into rows for every table, with new ids, times, users and numbers."""

    def __init__(self, rng, ids: IdSource, now, audit_chain_columns):
        self.rng, self.ids, self.now = rng, ids, now
        self.chain_columns = audit_chain_columns          # {"chain", "seq"} once migration 0015 is in

    def new_uuid(self) -> str:
        """A random version-4 UUID string (as SpiffWorkflow's task ids), without uuid.UUID's cost."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"

    def timed(self, template, table, plan):
        """The template's rows of `table` with the plan's times."""
        for row, times in zip(template.rows[table], template.times[table]):
            out = dict(row)
            for column, k, offset in times:
                out[column] = plan.starts[k] + offset
            yield out

    def expand(self, plan: Plan) -> dict:
        t, number, seq = plan.template, plan.number, plan.index
        user_of = {uid: plan.handlers[role][0] for uid, role in t.users.items() if role in plan.handlers}
        name_of = {name: plan.handlers[role][1] for name, role in t.usernames.items() if role in plan.handlers}
        task_ids = {}

        def task_id(old):
            if old is None:
                return None
            if old not in task_ids:
                task_ids[old] = self.new_uuid()
            return task_ids[old]
        out = {name: [] for name in ANCHORS}
        instance_ids = {}
        for row in self.timed(t, "process_instance", plan):
            instance_ids[row["id"]] = row["id"] = self.ids.take("process_instance")
            row["business_key"] = number
            out["process_instance"].append(row)
        for row in self.timed(t, "complaint", plan):
            complaint_id = row["id"] = self.ids.take("complaint")
            row.update(number=number, instance_id=instance_ids[row["instance_id"]], customer_name=f"客户{seq}",
                       phone=f"13{seq:09d}", email=f"c{seq}@example.com", id_number=f"1101011990{seq:08d}",
                       id_type="other", policy_number=f"PA-{seq:08d}", claim_number=f"CL-{seq:08d}",
                       claim_handler=plan.claim_handler, registered_by_id=user_of.get(row["registered_by_id"]),
                       channel=("hotline", "website", "mobile_app", "email")[seq % 4],
                       category=("claim_delay", "claim_amount", "service_attitude", "sales_misleading")[seq % 7 % 4])
            out["complaint"].append(row)
        for row in self.timed(t, "human_task", plan):
            row.update(id=task_id(row["id"]), instance_id=instance_ids[row["instance_id"]], business_key=number,
                       assignee_id=user_of.get(row["assignee_id"]), completed_by_id=user_of.get(row["completed_by_id"]))
            if row["state"] == "open" and self.rng.random() < CLAIMED_SHARE:
                row["assignee_id"] = plan.handlers[row["role"]][0] if row["role"] in plan.handlers else None
                row["claimed_at"] = min(row["created_at"] + timedelta(minutes=self.rng.uniform(1, 90)), self.now)
            out["human_task"].append(row)
        for row in self.timed(t, "deadline", plan):
            row.update(id=self.ids.take("deadline"), instance_id=instance_ids[row["instance_id"]],
                       timer_task_id=self.new_uuid(), host_task_id=task_id(row["host_task_id"]))
            if row["state"] == "met" and row["closed_at"] > row["due_at"]:
                row["state"], row["closed_at"] = "missed", row["due_at"]     # the timer fired first
            out["deadline"].append(row)
        for row in self.timed(t, "element_visit", plan):
            row.update(instance_id=instance_ids[row["instance_id"]], task_id=task_id(row["task_id"]))
            out["element_visit"].append(row)
        for row in self.timed(t, "audit_event", plan):
            row.update(instance_id=instance_ids.get(row["instance_id"], row["instance_id"]),
                       business_key=number if row["business_key"] else None, task_id=task_id(row["task_id"]),
                       actor=name_of.get(row["actor"], row["actor"]))
            out["audit_event"].append(row)
        message_ids = {}
        for row in self.timed(t, "outbox_message", plan):
            message_ids[row["id"]] = row["id"] = self.ids.take("outbox_message")
            row.update(instance_id=instance_ids[row["instance_id"]], business_key=number, key=uuid.uuid4().hex,
                       subject=(row["subject"] or "").replace(t.number, number) or None,
                       body=(row["body"] or "").replace(t.number, number) or None)
            if row["created_at"] < self.now - timedelta(hours=1):
                row.update(status="sent", sent_at=row["created_at"] + timedelta(seconds=30))
            out["outbox_message"].append(row)
        for row in self.timed(t, "delivery", plan):
            row.update(id=self.ids.take("delivery"), message_id=message_ids[row["message_id"]])
            if row["created_at"] < self.now - timedelta(hours=1):
                row.update(status="sent", attempts=1, sent_at=row["created_at"] + timedelta(seconds=30))
            out["delivery"].append(row)
        for row in self.timed(t, "portal_link", plan):
            row.update(id=self.ids.take("portal_link"), token_hash=secrets.token_hex(32), complaint_id=complaint_id,
                       message_id=message_ids.get(row["message_id"]))
            out["portal_link"].append(row)
        return out

    def number_in_time_order(self, batch: dict, chain_heads: dict):
        """Append-only rows of a batch of complaints get ids in time order across complaints (as a live
        system writes them); audit rows also their place in their complaint's chain."""
        for table in ("element_visit", "audit_event"):
            batch[table].sort(key=lambda r: r[ANCHORS[table]])       # stable: a complaint's order stays
            for row in batch[table]:
                row["id"] = self.ids.take(table)
        for row in batch["audit_event"]:
            if self.chain_columns:
                # The lead's per-complaint chains (migration 0015): the complaint number, or the instance.
                chain = row["business_key"] or (f"instance:{row['instance_id']}" if row["instance_id"] else "system")
                seq = chain_heads.get(chain, 0) + 1
                chain_heads[chain] = seq
                row.update(chain=chain, seq=seq)
            else:
                for column in ("chain", "seq"):
                    row.pop(column, None)
            # Placeholders: the seeded rows are for reads only, their chains do not verify.
            row["prev_hash"], row["hash"] = "seeded", f"seeded-{row['id']}"


def insert_rows(conn, table_name, rows):
    """SQLAlchemy Core executemany, 5,000 rows a statement. On PostgreSQL COPY instead: executemany gives
    about 8,000 rows/s there on the 2-core machine, 25 minutes for the 11 million rows of 100,000 complaints."""
    if not rows:
        return
    table = db.metadata.tables[table_name]
    if conn.dialect.name == "postgresql":
        copy_rows(conn, table, rows)
        return
    for start in range(0, len(rows), BATCH_ROWS):
        conn.execute(insert(table), rows[start:start + BATCH_ROWS])


def copy_rows(conn, table, rows):
    """COPY `rows` (dicts with the same keys) into `table`, in the connection's transaction."""
    columns = [c for c in table.columns if c.name in rows[0]]
    as_json = {c.name for c in columns if isinstance(c.type, JSON)}
    names = ", ".join(f'"{c.name}"' for c in columns)
    with conn.connection.dbapi_connection.cursor() as cursor:
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c.name]) if c.name in as_json and row[c.name] is not None
                                else row[c.name] for c in columns])


INSERT_ORDER = ("process_instance", "complaint", "human_task", "deadline", "element_visit", "audit_event",
                "outbox_message", "delivery", "portal_link")


def audit_chain_support(conn) -> tuple[bool, bool]:
    """(audit_event has chain/seq, an audit_chain head table exists): migration 0015 changes the audit trail."""
    names = inspect(conn).get_table_names()
    columns = {c["name"] for c in inspect(conn).get_columns("audit_event")}
    return {"chain", "seq"} <= columns, "audit_chain" in names


def seed_heads(conn, heads: dict):
    """One head row per seeded chain, so an append after seeding continues the chain (migration 0015)."""
    table = MetaData()
    table.reflect(bind=conn, only=["audit_chain"])
    head = table.tables["audit_chain"]
    extra = {c.name: False for c in head.columns if c.name not in ("chain", "seq", "hash") and not c.nullable
             and c.server_default is None and str(c.type) == "BOOLEAN"}
    rows = [{"chain": chain, "seq": seq, "hash": "seeded", **extra} for chain, seq in heads.items()]
    for start in range(0, len(rows), BATCH_ROWS):
        conn.execute(insert(head), rows[start:start + BATCH_ROWS])


def extra_users(app, people) -> dict:
    """Pools of handlers per role (the benchmark's own users among them), bulk-inserted with one password."""
    pools = {role: [(people[role].user_id, people[role].username)] for role in POOL_SIZES}
    with app.app_context():
        probe = User(username="x", display_name="x")
        probe.set_password("pw-pool")
        rows = [{"username": f"{role}_{k:03d}", "display_name": f"{role} {k}", "password_hash": probe.password_hash,
                 "roles": role, "active": True, "failed_logins": 0, "created_at": utcnow()}
                for role, size in POOL_SIZES.items() for k in range(1, size)]
        db.session.execute(insert(User.__table__), rows)
        db.session.commit()
        for user_id, username, roles in db.session.execute(
                select(User.id, User.username, User.roles_csv).where(User.username.in_([r["username"] for r in rows]))):
            pools[roles].append((user_id, username))
        db.session.remove()
    return pools


def seed(app, templates, pools, n, seed_value=11) -> dict:
    """Insert n complaints copied from the templates; returns counts per table and seconds."""
    rng = random.Random(seed_value)
    now = utcnow()
    plans = make_plans(rng, templates, n, pools, now)
    counts = dict.fromkeys(INSERT_ORDER, 0)
    t0 = time.perf_counter()
    with app.app_context():
        conn = db.session.connection()
        has_chain, has_heads = audit_chain_support(conn)
        expander = Expander(rng, IdSource(conn, [name for name in INSERT_ORDER if name != "human_task"]), now,
                            has_chain)
        heads = {}
        for start in range(0, len(plans), PLANS_PER_BATCH):
            batch = {name: [] for name in INSERT_ORDER}
            for plan in plans[start:start + PLANS_PER_BATCH]:
                for name, rows in expander.expand(plan).items():
                    batch[name] += rows
            expander.number_in_time_order(batch, heads)
            for name in INSERT_ORDER:
                insert_rows(conn, name, batch[name])
                counts[name] += len(batch[name])
            db.session.commit()
            conn = db.session.connection()
        if has_heads:
            seed_heads(conn, heads)
        db.session.commit()
        after_bulk_load(db.engine, INSERT_ORDER)
        db.session.remove()
    return {"complaints": n, "open": sum(1 for p in plans if not p.template.closed),
            "seconds": time.perf_counter() - t0, "rows": counts}


def after_bulk_load(engine, tables):
    """PostgreSQL: move the id sequences past the inserted ids, and VACUUM ANALYZE as autovacuum would
    after a load. SQLite: nothing (the app never runs ANALYZE there)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        for name in tables:
            if name == "human_task":        # its ids are SpiffWorkflow's task ids
                continue
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                              f"(SELECT coalesce(max(id), 1) FROM {name}))"))
        conn.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


# ---- reads -------------------------------------------------------------------------------------------
class StatementCounter:
    """Counts the SQL statements a call runs, and keeps them for EXPLAIN."""

    def __init__(self, engine):
        self.n, self.keep, self.kept = 0, False, []
        event.listen(engine, "before_cursor_execute", self.seen)

    def seen(self, conn, cursor, statement, parameters, context, executemany):
        self.n += 1
        if self.keep:
            self.kept.append((statement, parameters))


@dataclass
class Read:
    name: str
    target: float | None            # p95 ms; None: a reference without a target
    request: object                 # i -> (method, url, json body)
    who: str


def time_read(client, person, read: Read, repeat, counter, budget_s) -> dict:
    """p50/p95 over `repeat` calls (fewer, but at least 5, when they take more than `budget_s` together),
    after two warm-up calls; the first of those is reported apart (e.g. the statistics summarize the
    days no read needed before)."""
    first = None
    for i in range(2):
        t0 = time.perf_counter()
        tp.call(client, *read.request(i)[:2], person, read.request(i)[2])
        first = 1000 * (time.perf_counter() - t0) if first is None else first
    samples, statements, started = [], [], time.perf_counter()
    for i in range(repeat):
        method, url, body = read.request(i)
        counter.n = 0
        t0 = time.perf_counter()
        tp.call(client, method, url, person, body)
        samples.append(1000 * (time.perf_counter() - t0))
        statements.append(counter.n)
        if len(samples) >= 5 and time.perf_counter() - started > budget_s:
            break
    return {"p50": tp.percentile(samples, 0.5), "p95": tp.percentile(samples, 0.95),
            "statements": statistics.fmean(statements), "first": first, "calls": len(samples)}


def sample_complaints(app, reader_name, k, seed_value=5) -> list[dict]:
    """k seeded complaints the reader may see (no 回避), at random, for the reads that name one."""
    with app.app_context():
        rows = db.session.execute(select(Complaint.number, Complaint.policy_number, Complaint.phone, Complaint.status,
                                         Complaint.customer_name)
                                  .where(Complaint.claim_handler.is_(None), Complaint.number.like("TS-%"))).all()
        db.session.remove()
    rng = random.Random(seed_value)
    return [r._asdict() for r in rng.sample(rows, min(k, len(rows)))]


def reads(sample) -> list[Read]:
    pick = lambda i: sample[i % len(sample)]        # noqa: E731
    return [
        Read("baseline: a search that finds nothing (token check and index lookups: too short to match in part)",
             None, lambda i: ("GET", "/api/v1/complaints?q=NO", None), "customer_service"),
        Read("role queue (GET /tasks?queue=available, 50 a page)", TARGET_MS,
             lambda i: ("GET", "/api/v1/tasks?queue=available&per_page=50", None), "claims_specialist"),
        Read("my tasks (GET /tasks?queue=mine)", TARGET_MS,
             lambda i: ("GET", "/api/v1/tasks?queue=mine&per_page=50", None), "claims_specialist"),
        Read("search by number (GET /complaints?q=)", TARGET_MS,
             lambda i: ("GET", f"/api/v1/complaints?q={pick(i)['number']}", None), "customer_service"),
        Read("search by policy number (GET /complaints?q=)", TARGET_MS,
             lambda i: ("GET", f"/api/v1/complaints?q={pick(i)['policy_number']}", None), "customer_service"),
        Read("search by phone (POST /complaints/search)", TARGET_MS,
             lambda i: ("POST", "/api/v1/complaints/search", {"q": pick(i)["phone"]}), "customer_service"),
        Read("search by part of a number (GET /complaints?q=, its last 6 characters)", SEARCH_TARGET_MS,
             lambda i: ("GET", f"/api/v1/complaints?q={pick(i)['number'][-6:]}", None), "customer_service"),
        Read("search by part of a policy number (GET /complaints?q=, 7 characters)", SEARCH_TARGET_MS,
             lambda i: ("GET", f"/api/v1/complaints?q={pick(i)['policy_number'][-7:]}", None), "customer_service"),
        Read("search by part of a customer's name (POST /complaints/search)", SEARCH_TARGET_MS,
             lambda i: ("POST", "/api/v1/complaints/search", {"q": pick(i)["customer_name"][1:]}), "customer_service"),
        Read("complaint list, newest first (GET /complaints, compliance's landing)", SEARCH_TARGET_MS,
             lambda i: ("GET", "/api/v1/complaints", None), "compliance"),
        Read("complaint list: open and overdue (GET /complaints?status=open&overdue=1)", SEARCH_TARGET_MS,
             lambda i: ("GET", "/api/v1/complaints?status=open&overdue=1", None), "compliance"),
        Read("complaint list: a channel over a quarter (GET /complaints?channel=&from=&to=)", SEARCH_TARGET_MS,
             lambda i: ("GET", "/api/v1/complaints?channel=website&from="
                        + (utcnow() - timedelta(days=91)).date().isoformat(), None), "compliance"),
        Read("complaint page JSON (GET /complaints/<n>), compliance: masked", TARGET_MS,
             lambda i: ("GET", f"/api/v1/complaints/{pick(i)['number']}", None), "compliance"),
        Read("complaint page JSON, customer service: full view, one audit row written", TARGET_MS,
             lambda i: ("GET", f"/api/v1/complaints/{pick(i)['number']}", None), "customer_service"),
        Read("per-element statistics (GET /processes/complaint_handling/stats, 90 days)", STATS_TARGET_MS,
             lambda i: ("GET", "/api/v1/processes/complaint_handling/stats", None), "management"),
        Read("per-element statistics, 365 days", STATS_TARGET_MS,
             lambda i: ("GET", "/api/v1/processes/complaint_handling/stats?since="
                        + (utcnow() - timedelta(days=365)).isoformat().replace("+", "%2B"), None), "management"),
    ]


def time_counts(app, username, repeat, counter) -> dict:
    """The counts the top bar shows on every page, as a supervisor sees them: my tasks, the role queue, the tasks
    nobody may work and the notifications (notifications.top_bar_counts, in-process: no route of their own)."""
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == username)).scalar_one()
        independent = app.config["INDEPENDENT_PROCESSES"]
        samples, statements, totals = [], [], {}
        for i in range(repeat + 3):
            counter.n = 0
            t0 = time.perf_counter()
            totals = notifications.top_bar_counts(db.session, user, utcnow(), independent=independent, supervisor=True)
            if i >= 3:
                samples.append(1000 * (time.perf_counter() - t0))
                statements.append(counter.n)
            db.session.rollback()
        db.session.remove()
    return {"p50": tp.percentile(samples, 0.5), "p95": tp.percentile(samples, 0.95),
            "statements": statistics.fmean(statements), "totals": totals}


QUEUE_PAGE = "the queue page (GET /, HTML: my tasks and the role queue, a page of each; claims specialist)"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def time_queue_page(app, username, repeat, counter, budget_s) -> dict:
    """The handler's landing page as a browser gets it: logged in with a password (set here on the benchmark's
    user), each call in an app context of its own, as in production."""
    password = "bench-" + secrets.token_hex(8)
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == username)).scalar_one()
        user.set_password(password)
        user.must_change_password = False
        db.session.commit()
        db.session.remove()
    client = app.test_client()

    def get(url):
        with app.app_context():
            return client.get(url)
    token = CSRF_FIELD.search(get("/login").get_data(as_text=True)).group(1)
    with app.app_context():
        assert client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token}).status_code == 302
    samples, statements, started = [], [], time.perf_counter()
    for i in range(repeat + 2):
        counter.n = 0
        t0 = time.perf_counter()
        assert get("/").status_code == 200
        if i >= 2:
            samples.append(1000 * (time.perf_counter() - t0))
            statements.append(counter.n)
        if len(samples) >= 5 and time.perf_counter() - started > budget_s:
            break
    return {"p50": tp.percentile(samples, 0.5), "p95": tp.percentile(samples, 0.95),
            "statements": statistics.fmean(statements), "calls": len(samples), "target": None}


def worth_explaining(statement: str) -> bool:
    """A SELECT of the read itself, not the token and user lookups every call makes."""
    head = statement.split("WHERE")[0]
    return statement.lstrip().upper().startswith("SELECT") and "api_token" not in head \
        and not re.search(r'FROM "?user"?\s*$', head.strip())


def explain(app, client, person, read: Read, counter) -> list[str]:
    """The plan of every SELECT one call of `read` runs (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on
    PostgreSQL)."""
    counter.keep, counter.kept = True, []
    tp.call(client, *read.request(0)[:2], person, read.request(0)[2])
    counter.keep = False
    lines = []
    with app.app_context():
        sqlite_db = db.engine.dialect.name == "sqlite"
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for statement, params in counter.kept:
                if not worth_explaining(statement):
                    continue
                cursor.execute(("EXPLAIN QUERY PLAN " if sqlite_db else "EXPLAIN (ANALYZE, COSTS OFF) ") + statement,
                               params)
                plan = [r[-1] if sqlite_db else r[0] for r in cursor.fetchall()]
                lines.append("    " + " ".join(statement.split())[:160])
                lines += [f"      {p}" for p in plan]
            raw.rollback()
        finally:
            raw.close()
    return lines


# ---- driver ------------------------------------------------------------------------------------------
def version_ids(app) -> dict:
    with app.app_context():
        rows = db.session.execute(select(ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.id)).all()
        db.session.remove()
    return {(process_id, version): id_ for process_id, version, id_ in rows}


def for_backend(templates: list[Template], versions: dict) -> list[Template]:
    """The templates walked on another backend, with this backend's process version ids (the rest of a
    template maps by role and number, whatever the backend)."""
    old = templates[0].versions
    new_id = {old_id: versions[key] for key, old_id in old.items()}
    out = []
    for t in templates:
        rows = {**t.rows, "process_instance": [{**r, "version_id": new_id[r["version_id"]]}
                                               for r in t.rows["process_instance"]]}
        out.append(Template(**{**t.__dict__, "rows": rows, "versions": versions}))
    return out


def setup(url, args, reuse, templates=None) -> tuple:
    """A migrated, deployed database with the benchmark's users and N seeded complaints (seeded once when
    reused). The templates are walked on the first backend and reused on the next."""
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    tp.quiet_logging()
    t0 = time.perf_counter()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))       # on a reused database: the migrations since
        seeded = db.session.execute(select(func.count()).select_from(Complaint)).scalar_one()
        db.session.remove()
    migrated_s = time.perf_counter() - t0
    if reuse and seeded >= args.n:
        people = {}
        with app.app_context():
            for role in (*tp.WORK_ROLES, "compliance"):
                user = db.session.execute(select(User).where(User.username == f"bench_{role}")).scalar_one()
                people[role] = tp.Person(user.username, user.id, issue_token(user, 1, name="benchmark"))
            db.session.remove()
        return app, people, {"complaints": seeded, "reused": True, "migrated_s": migrated_s}
    app, people, _bundles = tp.setup_backend(url)
    with app.app_context():
        people["compliance"] = tp.make_person("bench_compliance", "compliance")
        db.session.remove()
    t0 = time.perf_counter()
    if templates is None:
        templates = capture_templates(app, people, QUICK_SHAPES if args.quick else None)
    else:
        templates = for_backend(templates, version_ids(app))
    walked = time.perf_counter() - t0
    pools = extra_users(app, people)
    seeded = seed(app, templates, pools, args.n)
    seeded.update(templates_s=walked, templates=templates)
    return app, people, seeded


def run_backend(label, url, args, reuse=False, templates=None) -> dict:
    print(f"\n== {label}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    t0 = time.perf_counter()
    app, people, seeded = setup(url, args, reuse, templates)
    if seeded.get("reused"):
        print(f"  reusing {seeded['complaints']:,} seeded complaints (migrations to the head: "
              f"{seeded['migrated_s']:.1f} s)", flush=True)
    else:
        print(f"  templates {'walked' if templates is None else 'taken over'} in {seeded['templates_s']:.1f} s; "
              f"seeded {seeded['complaints']:,} complaints ({seeded['open']:,} open) in {seeded['seconds']:.0f} s: "
              + ", ".join(f"{name} {count:,}" for name, count in seeded["rows"].items()), flush=True)
    with app.app_context():
        counter = StatementCounter(db.engine)
    client = app.test_client()
    sample = sample_complaints(app, people["customer_service"].username, 300)
    results = {}
    for read in reads(sample):
        r = results[read.name] = time_read(client, people[read.who], read, args.repeat, counter, args.budget)
        r["target"] = read.target
        print(f"  {read.name}: p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms over {r['calls']} calls, "
              f"{r['statements']:.1f} statements; first call {r['first']:.0f} ms", flush=True)
        if args.explain:
            print("\n".join(explain(app, client, people[read.who], read, counter)), flush=True)
    counts = time_counts(app, people["claims_specialist"].username, args.repeat, counter)
    counts["target"] = TARGET_MS
    results["the top bar's counts (mine, available, unstaffed, notifications; in-process)"] = counts
    print(f"  the top bar's counts {counts['totals']}: p50 {counts['p50']:.1f} ms, p95 {counts['p95']:.1f} ms", flush=True)
    page = results[QUEUE_PAGE] = time_queue_page(app, people["claims_specialist"].username, args.repeat, counter,
                                                 args.budget)
    print(f"  {QUEUE_PAGE}: p50 {page['p50']:.1f} ms, p95 {page['p95']:.1f} ms, {page['statements']:.1f} statements",
          flush=True)
    with app.app_context():
        db.engine.dispose()
    return {"results": results, "seeded": seeded, "wall_s": time.perf_counter() - t0}


def table(by_backend: dict) -> str:
    labels = [label for label, r in by_backend.items() if r is not None]
    lines = ["| read | target p95 | " + " | ".join(f"{label} p50 / p95 ms (statements)" for label in labels)
             + " | " + " | ".join(f"{label}: met?" for label in labels) + " |",
             "|---|---:|" + "---:|" * len(labels) + "---|" * len(labels)]
    names = list(by_backend[labels[0]]["results"]) if labels else []
    for name in names:
        rows = [by_backend[label]["results"][name] for label in labels]
        cells = [f"{r['p50']:.1f} / {r['p95']:.1f} ({r['statements']:.0f})" for r in rows]
        met = ["-" if r["target"] is None else "met" if r["p95"] <= r["target"] else "NOT MET" for r in rows]
        target = "-" if rows[0]["target"] is None else f"≤ {rows[0]['target']:.0f} ms"
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " | " + " | ".join(met) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="complaints to seed (default 100,000; quick: 300)")
    parser.add_argument("--repeat", type=int, help="calls per read (default 200; quick: 3)")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL); a database of the benchmark's "
                             "own is created from it and dropped afterwards")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 complaints, 3 calls per read")
    parser.add_argument("--explain", action="store_true", help="print the plan of every SELECT of each read")
    parser.add_argument("--reuse", metavar="DIR",
                        help=f"keep the seeded databases (SQLite in DIR, PostgreSQL as {KEPT_PG_DB_NAME!r}) and "
                             "reuse them when they hold at least --n complaints (migrations still run)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds of calls per read at most (at least 5 calls; default 30)")
    args = parser.parse_args(argv)
    args.n = args.n or (300 if args.quick else 100_000)
    args.repeat = args.repeat or (3 if args.quick else 200)

    t0 = time.perf_counter()
    results, templates = {"SQLite": None}, None
    if not args.postgres_only:
        tmp = Path(args.reuse).resolve() if args.reuse else Path(tempfile.mkdtemp(prefix="complaints-bench-reads-"))
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            results["SQLite"] = run_backend("SQLite", f"sqlite:///{tmp}/reads.db", args, bool(args.reuse))
            templates = results["SQLite"]["seeded"].get("templates")
        finally:
            if not args.reuse:
                shutil.rmtree(tmp, ignore_errors=True)
    results["PostgreSQL"] = None
    if args.postgres_url and not args.sqlite_only:
        if args.reuse:
            url = ensure_pg_database(args.postgres_url, KEPT_PG_DB_NAME)
            results["PostgreSQL"] = run_backend("PostgreSQL", url, args, True, templates)
        else:
            try:
                results["PostgreSQL"] = run_backend("PostgreSQL", tp.postgres_bench_url(args.postgres_url), args,
                                                    False, templates)
            finally:
                tp.drop_postgres_bench_db(args.postgres_url)
    else:
        print("\n== PostgreSQL: skipped (pass --postgres-url URL or set TEST_POSTGRES_URL)")
    print(f"\n## Reads at {args.n:,} complaints (90% closed over the past year), {args.repeat} calls each "
          f"(total {time.perf_counter() - t0:.0f} s)\n")
    print(table(results))
    return 0


def ensure_pg_database(admin_url, name) -> str:
    """The URL of the kept database, created unless it exists (--reuse)."""
    import psycopg
    admin = make_url(admin_url)
    with psycopg.connect(host=admin.host, port=admin.port, user=admin.username, password=admin.password,
                         dbname=admin.database or "postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    sys.exit(main())

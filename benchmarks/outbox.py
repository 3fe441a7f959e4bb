"""Outbox figures, printed (never asserted).

    .venv/bin/python benchmarks/outbox.py              # SQLite; PostgreSQL too if TEST_POSTGRES_URL is set
    .venv/bin/python benchmarks/outbox.py --quick      # smoke run: 60 messages, 2 complaints per phase

For each backend (set up as benchmarks/throughput.py does; PostgreSQL in a database of its own,
`complaints_bench_outbox_<pid>`, dropped afterwards), with scripts/mail_sink.py (aiosmtpd) running in
its own process:

1. Dispatch: N e-mail messages (the content of a real acknowledgement, one delivery each) inserted as
   rows, then sent by one dispatcher pinned to one core, with no pace: messages/s, end to end (claim,
   SMTP, record, audit).
2. Completion latency: the throughput benchmark's HTTP happy path (register + 6 completions), K
   complaints each with a dispatcher process held, sending a backlog at full speed, and sending it at
   its default pace (OUTBOX_MAX_PER_SECOND), in alternating rounds: ms per request, p50 / p95 / mean,
   and the differences.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import throughput  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app import create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Delivery, OutboxMessage  # noqa: E402
from app.outbox.dispatch import DEFAULT_MAX_PER_SECOND, Dispatcher  # noqa: E402
from app.timeutil import utcnow  # noqa: E402
from scripts.mail_sink import free_port  # noqa: E402

# Its own database, never the throughput benchmark's nor another run's (the smoke test may run beside one).
throughput.PG_DB_NAME = f"complaints_bench_outbox_{os.getpid()}"
REQUESTS_PER_COMPLAINT = 1 + len(throughput.HAPPY_PATH)


# ---- the sink and the dispatcher, each in its own process ---------------------------------------
def pinned(cpu):
    """A preexec_fn that keeps a child process on one core (when the machine has it)."""
    def pin():
        if hasattr(os, "sched_setaffinity") and cpu < os.cpu_count():
            os.sched_setaffinity(0, {cpu})
    return pin


def start_sink() -> tuple[subprocess.Popen, tuple[int, int]]:
    """scripts/mail_sink.py in its own process; returns it and its (SMTP, HTTP) ports."""
    ports = (free_port(), free_port())
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "mail_sink.py"), "--smtp-port", str(ports[0]),
                             "--http-port", str(ports[1])], stdout=subprocess.DEVNULL, preexec_fn=pinned(1))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", ports[0]), timeout=0.1).close()
            return proc, ports
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise throughput.BenchError("the mail sink did not start")


def outbox_app(url, ports, pace=0):
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, SMTP_HOST="127.0.0.1", SMTP_PORT=ports[0],
                     SMTP_SECURITY="none", SMS_GATEWAY_URL=f"http://127.0.0.1:{ports[1]}/sms",
                     OUTBOX_MAX_PER_SECOND=pace)
    throughput.quiet_logging()
    return app


def dispatcher_loop(url, ports, control: Path):
    """Child process: dispatch one batch after another at the pace written in the file `control`
    (messages/s, 0: full speed; "hold": wait), until terminated; then print how many it sent."""
    sent = 0

    def stop(*_):
        print(f"dispatcher sent {sent}", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    app = outbox_app(url, ports)
    dispatcher = Dispatcher(app)
    while True:
        pace = control.read_text().strip()
        if pace == "hold":
            time.sleep(0.02)
            continue
        app.config["OUTBOX_MAX_PER_SECOND"] = float(pace)
        counts = dispatcher.dispatch_due(max_batches=1)      # one batch a pass: it can hold between them
        sent += counts.sent
        if not counts.claimed:
            time.sleep(0.05)


# ---- queueing rows directly ----------------------------------------------------------------------
def queue_rows(app, n) -> int:
    """Insert `n` e-mail messages copying a real acknowledgement's content; returns how many e-mails
    are queued."""
    with app.app_context():
        model = db.session.execute(select(OutboxMessage).where(OutboxMessage.template == "acknowledgement")
                                   .order_by(OutboxMessage.id)).scalars().first()
        now = utcnow()
        rows = [{"instance_id": model.instance_id, "business_key": model.business_key, "template": model.template,
                 "payload": model.payload, "status": "queued", "key": uuid.uuid4().hex, "language": model.language,
                 "subject": model.subject, "body": model.body, "sms_text": model.sms_text, "created_at": now}
                for _ in range(n)]
        ids = db.session.execute(insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True),
                                 rows).scalars().all()
        db.session.execute(insert(Delivery), [{"message_id": i, "channel": "email", "status": "queued", "attempts": 0,
                                               "next_attempt_at": now, "created_at": now} for i in ids])
        db.session.commit()
        queued = db.session.execute(select(func.count()).select_from(Delivery)
                                    .where(Delivery.status == "queued", Delivery.channel == "email")).scalar_one()
        db.session.remove()
    return queued


def drain_queued(app):
    """Send what the setup's own complaints queued, so the dispatch figure counts only the rows."""
    Dispatcher(app).dispatch_due()


# ---- 1. dispatch rate ----------------------------------------------------------------------------
def bench_dispatch(app, n) -> dict:
    drain_queued(app)
    queued = queue_rows(app, n)
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pinned(0)()
    try:
        t0 = time.perf_counter()
        counts = Dispatcher(app).dispatch_due()
        seconds = time.perf_counter() - t0
    finally:
        if before:
            os.sched_setaffinity(0, before)
    if counts.sent != queued or counts.retried or counts.failed:
        raise throughput.BenchError(f"dispatch: {queued} queued, but {counts.as_dict()}")
    return {"n": counts.sent, "seconds": seconds, "per_s": counts.sent / seconds}


# ---- 2. completion latency with and without a dispatcher -----------------------------------------
def time_complaints(app, people, k, offset) -> list[float]:
    """ms per request of `k` HTTP happy paths (the throughput benchmark's inner loop)."""
    client = app.test_client()
    samples = []
    for i in range(k):
        t0 = time.perf_counter()
        throughput.happy_path(client, people, offset + i)
        samples.append(1000 * (time.perf_counter() - t0) / REQUESTS_PER_COMPLAINT)
    return samples


def summary(samples) -> dict:
    return {"p50": throughput.percentile(samples, 0.5), "p95": throughput.percentile(samples, 0.95),
            "mean": statistics.fmean(samples)}


def bench_latency(app, people, url, ports, k, backlog, rounds=5) -> dict:
    """Rounds of k/rounds complaints with the dispatcher held, then as many while it sends at full
    speed, then at its default pace: drift in a shared machine hits every side alike."""
    drain_queued(app)
    queue_rows(app, backlog)
    control = Path(tempfile.mkdtemp(prefix="outbox-bench-")) / "pace"
    set_pace(control, "hold")
    child = subprocess.Popen([sys.executable, __file__, "--dispatcher-loop", url, *map(str, ports), str(control)],
                             stdout=subprocess.PIPE, text=True, preexec_fn=pinned(1))
    samples, per = {"alone": [], "full": [], "paced": []}, max(1, k // rounds)
    paces = {"alone": "hold", "full": "0", "paced": str(DEFAULT_MAX_PER_SECOND)}
    try:
        time_complaints(app, people, 1, 39_000_000)             # warm-up
        for r in range(rounds):
            for i, (side, pace) in enumerate(paces.items()):
                set_pace(control, pace)
                wait_for_sending(app, child, busy=pace != "hold")
                samples[side] += time_complaints(app, people, per, 40_000_000 + 100_000 * i + 1000 * r)
    finally:
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
        shutil.rmtree(control.parent, ignore_errors=True)
    sent = int(out.split()[-1]) if out.strip() else 0
    return {"k": len(samples["alone"]), **{side: summary(v) for side, v in samples.items()}, "dispatcher_sent": sent}


def set_pace(control: Path, pace: str):
    """Tell the dispatcher process its pace; written whole (rename), so it never reads half a file."""
    part = control.with_suffix(".part")
    part.write_text(pace)
    os.replace(part, control)


def wait_for_sending(app, child, busy: bool, timeout=30):
    """Until the dispatcher process is sending (busy; or has nothing left to send) or has recorded its
    last batch (not busy)."""
    end = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < end:
            if child.poll() is not None:
                raise throughput.BenchError(f"the dispatcher process ended with {child.returncode}")
            sending, queued = db.session.execute(select(
                func.count().filter(Delivery.status == "sending"),
                func.count().filter(Delivery.status == "queued", Delivery.channel == "email"))).one()
            db.session.rollback()
            if bool(sending) == busy or (busy and not queued):
                break
            time.sleep(0.02)
        db.session.remove()


# ---- driver --------------------------------------------------------------------------------------
def run_backend(label, url, args) -> dict:
    print(f"\n== {label}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    sink, ports = start_sink()
    try:
        _, people, _ = throughput.setup_backend(url)
        app = outbox_app(url, ports)
        throughput.register(app.test_client(), people, -1)    # one real acknowledgement to copy
        d = bench_dispatch(app, args.n)
        print(f"  dispatch: {d['n']:,} e-mails in {d['seconds']:.1f} s = {d['per_s']:.0f} messages/s (one core)",
              flush=True)
        lat = bench_latency(app, people, url, ports, args.k, args.n)
        print(f"  completion latency, ms/request p50 / p95 / mean: alone {fmt(lat['alone'])}; beside a dispatcher "
              f"at full speed {fmt(lat['full'])}, at {DEFAULT_MAX_PER_SECOND}/s {fmt(lat['paced'])} "
              f"(it sent {lat['dispatcher_sent']:,} meanwhile)", flush=True)
        with app.app_context():
            db.engine.dispose()
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return {"dispatch": d, "latency": lat}


def fmt(s) -> str:
    return f"{s['p50']:.1f} / {s['p95']:.1f} / {s['mean']:.1f}"


def table(results) -> str:
    labels = [label for label, r in results.items() if r]
    lines = ["| Metric | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]

    def row(name, fn):
        lines.append(f"| {name} | " + " | ".join(fn(results[label]) for label in labels) + " |")
    row("Dispatch to a local SMTP sink, messages/s (one core)",
        lambda r: f"{r['dispatch']['per_s']:.0f} (N={r['dispatch']['n']:,})")
    row("Completion latency alone, ms/request p50 / p95 / mean", lambda r: fmt(r["latency"]["alone"]))
    for side, name in (("full", "at full speed"), ("paced", f"at its default pace ({DEFAULT_MAX_PER_SECOND}/s)")):
        row(f"... beside a dispatcher process sending {name}", lambda r, side=side: fmt(r["latency"][side]))
        row("  difference in mean, ms/request",
            lambda r, side=side: f"{r['latency'][side]['mean'] - r['latency']['alone']['mean']:+.1f}")
    row("  e-mails the dispatcher sent meanwhile", lambda r: f"{r['latency']['dispatcher_sent']:,}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="messages to dispatch (default 10,000; quick: 60)")
    parser.add_argument("--k", type=int, help="complaints per latency phase (default 50; quick: 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 messages, 2 complaints per phase")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"),
                        help="PostgreSQL admin URL (default: $TEST_POSTGRES_URL)")
    parser.add_argument("--dispatcher-loop", nargs=4, help=argparse.SUPPRESS)     # URL SMTP_PORT HTTP_PORT PAUSE_FILE
    args = parser.parse_args(argv)
    if args.dispatcher_loop:
        url, smtp_port, http_port, paused = args.dispatcher_loop
        return dispatcher_loop(url, (int(smtp_port), int(http_port)), Path(paused))
    args.n = args.n or (60 if args.quick else 10_000)
    args.k = args.k or (2 if args.quick else 50)
    results = {}
    with throughput.sqlite_bench_url("outbox-bench-") as url:
        results["SQLite"] = run_backend("SQLite", url, args)
    results["PostgreSQL"] = None
    if args.postgres_url:
        with throughput.postgres_bench(args.postgres_url) as url:
            results["PostgreSQL"] = run_backend("PostgreSQL", url, args)
    else:
        print("\n== PostgreSQL: skipped (pass --postgres-url URL or set TEST_POSTGRES_URL)")
    print("\n## Outbox results\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

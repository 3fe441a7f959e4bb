"""The benchmarks still run: each script's `--quick` mode end to end, on SQLite and, when TEST_POSTGRES_URL is
set, PostgreSQL (throughput.py, outbox.py and peer.py on SQLite only: the bench-database helpers they share, and
gunicorn serving the app on PostgreSQL, run in the other scripts' runs). It asserts no figure (targets live in the script
and the README, not in timed tests); it only keeps the script from rotting."""
import os
import subprocess
import sys

from app.config import ROOT


def run_quick(script, cwd, postgres=True) -> str:
    """`script --quick`; `postgres=False`: on SQLite only (the scripts that time one engine path whose
    PostgreSQL side, the shared bench-database helpers, the other scripts' smoke runs exercise)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not postgres:
        env.pop("TEST_POSTGRES_URL", None)
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if postgres and os.environ.get("TEST_POSTGRES_URL"):
        assert "PostgreSQL" in result.stdout
    return result.stdout


def test_the_benchmark_runs_in_quick_mode(tmp_path):
    out = run_quick("throughput.py", tmp_path, postgres=False)
    assert "GET tasks?queue=available" in out and "| mean of " in out and "first / last 3 rounds (fewer below 6" in out


def test_the_outbox_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/outbox.py --quick: 60 messages to a local aiosmtpd sink, and completion latency
    with and without a dispatcher process."""
    out = run_quick("outbox.py", tmp_path, postgres=False)
    assert "messages/s (one core)" in out and "beside a dispatcher process sending at full speed" in out


def test_the_peer_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/peer.py --quick: the peer's 2-task scenario and the full procedure over gunicorn (one
    sync worker), with the SQL counts, the engine ceiling and the targets printed."""
    out = run_quick("peer.py", tmp_path, postgres=False)     # its gunicorn on PostgreSQL: the concurrency smoke run
    for heading in ("## Peer scenario", "## SQL statements per call", "## Full procedure over gunicorn",
                    "## Targets"):
        assert heading in out
    assert "server CPU ms per instance" in out


def test_the_concurrency_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/concurrency.py --quick: 1 worker × 1 client and 4 workers × 4 clients over gunicorn on
    PostgreSQL, with the lock-wait sampling and the targets printed; without TEST_POSTGRES_URL it only
    says that it needs PostgreSQL."""
    out = run_quick("concurrency.py", tmp_path)
    if not os.environ.get("TEST_POSTGRES_URL"):
        assert "needs PostgreSQL" in out
        return
    for heading in ("## Concurrency on PostgreSQL", "## Lock waits", "## Targets (issue 10, target 3)"):
        assert heading in out
    assert "4 workers × 4 clients" in out and "another complaint's rows" in out


def test_the_timers_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/timers.py --quick: 2 x 10 complaints registered for real, their review deadlines fired
    by one scheduler and then by two at once, every deadline once, and the due query's plan printed."""
    out = run_quick("timers.py", tmp_path)
    assert "## Timers at volume" in out and "| due query: range scan on" in out
    assert "|   of which SpiffWorkflow alone, ms CPU per instance: load + fire + compact and dump |" in out
    once = [line for line in out.splitlines() if line.startswith(("| every deadline", "|   every deadline"))]
    assert len(once) == 2 and not any("NO" in line for line in once), once


def test_the_reads_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/reads.py --quick: 300 complaints seeded from a few walked through the API (90% closed
    over the past year), and the role queue, my tasks, the searches, the complaint page, the per-element
    statistics and the queue counts timed against their targets."""
    out = run_quick("reads.py", tmp_path)
    assert "## Reads at 300 complaints" in out and "| role queue (GET /tasks?queue=available" in out
    assert "| per-element statistics (GET /processes/complaint_handling/stats, 90 days) | ≤ 100 ms |" in out


def test_the_analysis_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/analysis.py --quick: 2,000 complaints seeded as rows over the past year, the analysis of the
    last whole quarter, the page, the exports of the tables and of the complaints (the quarter's, the year's)."""
    out = run_quick("analysis.py", tmp_path)
    assert "## Analysis at 2,000 complaints" in out and "| GET /analysis?quarter=… (the page, rendered) |" in out
    assert "| SQL statements per analysis / any of them reads workflow_json |" in out and "/ YES" not in out

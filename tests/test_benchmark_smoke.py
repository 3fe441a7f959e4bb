"""The benchmarks still run: `benchmarks/throughput.py --quick` (tiny N, 1,000 queue rows) and
`benchmarks/outbox.py --quick` (60 messages) end to end, on
SQLite and, when TEST_POSTGRES_URL is set, PostgreSQL. It asserts no figure (targets live in the script
and the README, not in timed tests); it only keeps the script from rotting."""
import os
import subprocess
import sys

from app.config import ROOT


def run_quick(script, cwd) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if os.environ.get("TEST_POSTGRES_URL"):
        assert "PostgreSQL" in result.stdout
    return result.stdout


def test_the_benchmark_runs_in_quick_mode(tmp_path):
    out = run_quick("throughput.py", tmp_path)
    assert "GET tasks?queue=available" in out and "| mean of " in out


def test_the_outbox_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/outbox.py --quick: 60 messages to a local aiosmtpd sink, and completion latency
    with and without a dispatcher process."""
    out = run_quick("outbox.py", tmp_path)
    assert "messages/s (one core)" in out and "beside a dispatcher process sending at full speed" in out


def test_the_peer_benchmark_runs_in_quick_mode(tmp_path):
    """benchmarks/peer.py --quick: the peer's 2-task scenario and the full procedure over gunicorn (one
    sync worker), with the SQL counts, the engine ceiling and the targets printed."""
    out = run_quick("peer.py", tmp_path)
    for heading in ("## Peer scenario", "## SQL statements per call", "## Full procedure over gunicorn",
                    "## Targets"):
        assert heading in out
    assert "server CPU ms per instance" in out

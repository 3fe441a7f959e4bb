"""The benchmark still runs: `benchmarks/throughput.py --quick` (tiny N, 1,000 queue rows) end to end, on
SQLite and, when TEST_POSTGRES_URL is set, PostgreSQL. It asserts no figure (targets live in the script
and the README, not in timed tests); it only keeps the script from rotting."""
import os
import subprocess
import sys

from app.config import ROOT


def test_the_benchmark_runs_in_quick_mode(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "GET tasks?queue=available" in result.stdout and "| mean of " in result.stdout
    if os.environ.get("TEST_POSTGRES_URL"):
        assert "PostgreSQL" in result.stdout

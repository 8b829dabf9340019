"""The scan-workers benchmark runs end to end in its smoke configuration: SQLite, PostgreSQL with the owner alone,
and the owner with a real worker process, every photo written once in each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_workers_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}  # the caller's settings stay out
    command = [sys.executable, str(REPO / "bench" / "bench_workers.py"), "--smoke", "--out", str(out)]
    proc = subprocess.run(
        [*command, "--cache", str(tmp_path / "cache")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CPU-s/photo (all processes)" in proc.stdout and "load average" in proc.stdout
    report = json.loads((out / "bench_workers.json").read_text(encoding="utf-8"))
    runs = report["runs"]
    assert set(runs) == {"sqlite", "postgres_owner_alone", "postgres_owner_and_a_worker"}
    for run in runs.values():
        assert run["photos"] == 6 and sum(run["files_by_process"].values()) == 6
    assert len(runs["postgres_owner_and_a_worker"]["files_by_process"]) == 2  # the worker is in the roll call

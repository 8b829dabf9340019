"""The faces benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_faces_smoke(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_faces", "--smoke", "--out", str(out), "--cache", str(tmp_path / "cache")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "faces add" in proc.stdout
    report = json.loads((out / "bench_faces.json").read_text(encoding="utf-8"))
    assert report["photos"] == {"mixed": 4, "labelled_faces": 11, "total": 15}
    # Every labelled face photo has its faces (13 labelled faces, the two partial ones optional); 6 people at most.
    assert report["faces_pass"]["faces"] >= 11 and 1 <= report["faces_pass"]["people"] <= 6
    assert report["scan"]["own_cpu_s"] > 0 and report["faces_pass"]["own_cpu_s"] > 0
    assert report["faces_cpu_ms_per_photo"] > 0 and report["faces_share_of_scan_cpu"] > 0

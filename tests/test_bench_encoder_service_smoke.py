"""The encoder-service benchmark runs end to end in its smoke configuration: a real ``serve-encoder`` process, a
scan here and one through it, and the per-photo CPU split it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_encoder_service_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}  # the caller's settings stay out
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_encoder_service.py"),
            "--smoke",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "scanning side CPU-s/photo" in proc.stdout and "load average" in proc.stdout
    report = json.loads((out / "bench_encoder_service.json").read_text(encoding="utf-8"))
    for run in ("local", "through_service"):
        assert report[run]["photos"] == 4 and report[run]["scanning_side_cpu_s_per_photo"] > 0
    assert report["through_service"]["service_cpu_s_per_photo"] > 0  # the model ran in the other process
    assert report["local"]["service_cpu_s_per_photo"] == 0

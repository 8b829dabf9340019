"""The video benchmark runs end to end in its smoke configuration and reports every measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_video_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    command = [sys.executable, str(REPO / "bench" / "bench_video.py"), "--smoke", "--out", str(out)]
    command += ["--cache", str(tmp_path / "cache")]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| H.264 180p" in proc.stdout and "| HEVC 180p" in proc.stdout
    report = json.loads((out / "bench_video.json").read_text(encoding="utf-8"))
    for row in report["rows"]:
        assert row["sampled"] == 2 and row["embedded_frames"] == 2  # 3 s at one frame per 2 s
        assert row["frames_in_file"] == 90 and row["decoded_by_sampler"] < row["frames_in_file"]
        assert row["rtf_scan"] > 0 and row["rtf_sample"] > 0

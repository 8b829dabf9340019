"""The browsing benchmark runs end to end in its smoke configuration and reports every measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_browse_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    command = [sys.executable, str(REPO / "bench" / "bench_browse.py"), "--smoke", "--out", str(out)]
    command += ["--cache", str(tmp_path / "cache")]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(cursor)" in proc.stdout and "good+stack" in proc.stdout
    report = json.loads((out / "bench_browse.json").read_text(encoding="utf-8"))
    timeline = report["timeline"]
    assert timeline["items"] == 3000 and timeline["deep_position"] == 2700
    assert timeline["first_page_ms"]["p50"] > 0 and timeline["deep_page_ms"]["p50"] > 0
    variants = report["search"]["variants"]
    assert set(variants) == {"plain", "good", "stack", "good+stack", "date_desc (good)"}
    assert variants["plain"]["median_total"] == 2000 and 0 < variants["good"]["median_total"] < 2000
    assert len(report["load_before_timeline"]) == 3

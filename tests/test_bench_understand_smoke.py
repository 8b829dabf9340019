"""The sentence-reading benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_understand_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}  # the caller's settings stay out
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_understand.py"), "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "understand(sentence)" in proc.stdout and "load average" in proc.stdout
    report = json.loads((out / "bench_understand.json").read_text(encoding="utf-8"))
    result = report["result"]
    assert report["smoke"] is True and result["rounds"] == 20 and result["places"] > 10_000
    assert 0 < result["us"]["p50"] < 1000  # well under a millisecond a sentence

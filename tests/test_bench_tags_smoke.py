"""The tagging benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_tags_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_tags.py"), "--smoke", "--out", str(out), "--cache", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "bench_tags.json").read_text(encoding="utf-8"))
    assert report["library"] == {"vectors": 2000, "photos": 1900, "videos": 5}
    assert report["labels"] >= 70 and report["tagging_s"] > 0 and report["classify_requests"] == 10
    assert report["classify_ms"]["p50"] > 0 and len(report["load_before"]) == 3

"""The duplicate-grouping benchmark runs in its smoke configuration, finds its planted groups and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_duplicates_smoke(tmp_path, media_dir):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_duplicates.py"),
            "--smoke",
            "--out",
            str(out),
            "--media",
            str(media_dir),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "bench_duplicates.json").read_text(encoding="utf-8"))
    assert report["smoke"] is True and report["photos"] == 3000
    assert report["groups_found"] == report["groups_planted"] == report["groups_exact"] > 0
    assert report["pair_precision"] == report["pair_recall"] == 1.0
    assert report["same_scene_grouped"] == 0 < report["same_scene_pairs"]
    assert report["thumbnail_phash_ms"] > 0 and len(report["load_average_before"]) == 3

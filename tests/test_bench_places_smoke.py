"""The places benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_places_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}  # the caller's settings stay out
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_places.py"),
            "--smoke",
            "--out",
            str(out),
            "--cache",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GET /api/places" in proc.stdout and "load average" in proc.stdout
    report = json.loads((out / "bench_places.json").read_text(encoding="utf-8"))
    assert report["smoke"] is True and report["items"] == 500
    assert report["geocoding"]["with_place"] > 450 and report["geocoding"]["bulk_per_s"] > 0
    api = report["api"]
    assert api["GET /api/places"]["located"] == report["geocoding"]["with_place"]
    placed = [row for name, row in api.items() if "place=" in name]
    assert len(placed) == 3 and all(0 < row["total"] < api["search, no place"]["total"] for row in placed)

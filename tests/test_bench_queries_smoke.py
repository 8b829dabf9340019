"""The HTTP query-latency benchmark runs end to end in its smoke configuration (tiny model, the real server per
backend choice) and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_queries_smoke(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}  # the caller's settings stay out
    env["MS_BENCH_CACHE"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_queries.py"), "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Query latency over HTTP" in proc.stdout
    report = json.loads((out / "bench_queries.json").read_text(encoding="utf-8"))
    assert report["smoke"] is True and [row["config"] for row in report["rows"]] == ["auto", "onnx:int8"]
    auto, forced = report["rows"]
    assert auto["measure_cost_s"] is not None and forced["measure_cost_s"] is None  # only auto measured
    assert {t["use"] for t in auto["query_timings"]} == {"query sentences", "query pictures"}
    assert forced["query_timings"] == []
    assert forced["scan_backend"] == "onnx int8"
    for row in report["rows"]:
        assert row["server_exit_code"] == 0 and row["indexed"] == 2
        assert row["text_ms"]["n"] == 4 and len(set(row["text_sentences"])) == 4  # new sentences each time
        assert set(row["image_ms"]) == {"jpeg", "heic"} and all(v["n"] == 2 for v in row["image_ms"].values())
        assert 0 < row["text_ms"]["p50"] <= row["text_ms"]["p99"]

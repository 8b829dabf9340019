"""The indexing benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_index_smoke(tmp_path):
    out = tmp_path / "out"
    # Settings come from MS_* variables: keep the caller's (a library, a device ...) out of the benchmark.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_index.py"),
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
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "end-to-end / model-alone = " in proc.stdout

    report = json.loads((out / "bench_index.json").read_text(encoding="utf-8"))
    assert report["smoke"] is True
    assert report["machine"]["nproc"] >= 1 and report["machine"]["torch_threads"] >= 1
    assert report["config"]["images"] == 8 and report["config"]["queries"] == 5
    res = report["results"]
    for key in (
        "model_load_s",
        "model_alone",
        "end_to_end",
        "ratio_end_to_end_over_model_alone",
        "decode_only",
        "per_image_ms_1_thread",
        "queries",
        "rss_mb",
        "phases",
    ):
        assert key in res, key
    assert res["model_alone"]["images_per_s"] > 0
    assert res["end_to_end"]["images_per_s"] > 0
    assert res["end_to_end"]["added"] == 8 and res["end_to_end"]["errors"] == 0
    assert res["ratio_end_to_end_over_model_alone"] > 0
    assert res["decode_only"]["images_per_s_1_thread"] > 0 and res["decode_only"]["images_per_s_pool"] > 0
    for part in ("total_ms", "encode_ms", "search_ms"):
        assert res["queries"][part]["n"] == 5
        assert 0 < res["queries"][part]["p50"] <= res["queries"][part]["p99"]
    assert res["rss_mb"]["peak"] >= res["rss_mb"]["after_model_load"] > 0

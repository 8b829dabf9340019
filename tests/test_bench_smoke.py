"""The indexing benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_bench_run_smoke(tmp_path):
    """bench/run.py (the speed table: backends, HEIC/JPEG/mixed scans, query latency, peer row) in smoke mode."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    proc = subprocess.run(
        [
            *(sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--compare-prelook"),
            *("--out", str(out), "--cache", str(tmp_path / "c")),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Indexing: photos/s end to end" in proc.stdout and "Text queries, ms" in proc.stdout

    report = json.loads((out / "bench_run.json").read_text(encoding="utf-8"))
    assert report["smoke"] is True
    rows = {row["config"]: row for row in report["indexing"]}
    assert set(rows) == {"torch:fp32", "onnx:int8"}
    for row in rows.values():
        assert row["model_alone_images_per_s"] > 0
        assert len(row["model_alone_runs_images_per_s"]) == 2  # before and after the scans
        for name in ("jpeg", "heic", "mixed"):
            assert row["scans"][name]["photos"] == 4 and row["scans"][name]["photos_per_s"] > 0
        for mode, where in (("scan", "in the scan"), ("pass", "in the OCR pass")):
            forced = row["scans"][f"mixed_prelook_{mode}"]
            assert forced["photos"] == 4 and forced["ocr_prelook"] == f"{where} (MS_OCR_PRELOOK={mode})"
    assert "mixed, MS_OCR_PRELOOK=pass" in proc.stdout
    assert rows["torch:fp32"]["fidelity"] == {"image_min_cos": 1.0, "text_min_cos": 1.0}
    assert 0.99 < rows["onnx:int8"]["fidelity"]["image_min_cos"] <= 1.0
    assert all(f["cosine"] > 0.99 for f in report["heic_thumbnail_fidelity"].values())
    (size,) = report["queries"]
    assert size["items"] == 2000 and size["indexes"]["auto"]["layout"]["type"] == "ivf"
    assert size["indexes"]["auto"]["recall_at_10"] >= 0.98
    assert 0 < size["text_query_ms"]["total"]["p50"] <= size["text_query_ms"]["total"]["p99"]
    assert size["peer_query_ms"]["n"] == 1 and size["rss_mb_after"] > 0
    assert set(size["image_query_ms"]) == {"jpeg_12mp", "heic_12mp"}

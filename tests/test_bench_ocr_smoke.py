"""The OCR benchmark runs end to end in its smoke configuration and writes the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_ocr_smoke(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_ocr", "--smoke", "--out", str(out), "--cache", str(tmp_path / "cache")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pre-pass found text in 6/6 text photos" in proc.stdout

    report = json.loads((out / "bench_ocr.json").read_text(encoding="utf-8"))
    assert len(report["text_free"]) == 2 and len(report["text_heavy"]) == 6
    assert all(photo["cpu_ms"] > 0 for photo in report["text_free"] + report["text_heavy"])
    assert report["index"]["items"] == 2000 and report["index"]["lines"] > 2000
    queries = report["index"]["queries"]
    assert queries["CJK phrase (6 chars, 1 item)"]["hits"] == 1 and queries["no match"]["hits"] == 0
    assert all(q["p50"] > 0 for q in queries.values())
    indexing = report["indexing"]  # the OCR's share of indexing: two scans and the pass on the tiny model
    assert (indexing["photos"], indexing["with_text"], indexing["ocr_read"]) == (3, 1, 3)
    assert indexing["ocr_found_text"] == 1 and indexing["share_wall"] > -1
    assert "OCR adds" in proc.stdout

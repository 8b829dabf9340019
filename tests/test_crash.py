"""A scan killed with SIGKILL mid-way resumes without losing committed work or duplicating anything."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO


def _make_library(root, count: int) -> None:
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(count):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((512, 384)).save(root / f"img_{i:03d}.jpg", quality=80)


def _indexed_count(db: str) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("select count(*) from items").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_mid_scan_then_rescan_indexes_everything_once(tmp_path, tiny_model):
    library, data = tmp_path / "library", tmp_path / "data"
    _make_library(library, 120)
    env = {
        **os.environ,
        "MS_LIBRARY": str(library),
        "MS_DATA_DIR": str(data),
        "MS_MODEL": tiny_model,
        "MS_BATCH_SIZE": "4",
        "MS_DECODE_THREADS": "1",
    }
    command = [sys.executable, "-m", "materialsearch", "scan"]
    victim = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = str(data / "materialsearch.db")
    deadline = time.monotonic() + 60
    while _indexed_count(db) < 8 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    committed = _indexed_count(db)
    assert 0 < committed < 120, "the kill should land mid-scan"

    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"{120 - committed} added" in finished.stdout

    from config import Settings
    from materialsearch.services import Services

    services = Services(Settings.from_env(environ=env))
    try:
        states = services.store.file_states()
        assert len(states) == 120 and all(s.status == "ok" for s in states.values())
        count, _ = services.store.vector_checksum()
        assert count == 120  # exactly one vector per photo
        assert services.index.checksum() == services.store.vector_checksum()
    finally:
        services.close()

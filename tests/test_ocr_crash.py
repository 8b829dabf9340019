"""An OCR pass killed with SIGKILL mid-way: the restarted pass reads only what was not committed, and every photo's
text is stored exactly once (one state row, its lines once, the full-text indexes in step with the lines)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import MEDIA, REPO
from tests.test_ocr_pass import PHRASES, TEXT_FREE

COPIES = 2  # each text photo twice under different names: 12 text photos, more than a batch of OCR


def _read_count(db: str) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("select count(*) from ocr_state").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_mid_ocr_pass_then_restart_stores_every_text_once(tmp_path, tiny_model):
    library, data = tmp_path / "library", tmp_path / "data"
    library.mkdir()
    for name in PHRASES:
        for copy in range(COPIES):
            shutil.copy2(MEDIA / name, library / f"{copy}_{name}")
    for name in TEXT_FREE:
        shutil.copy2(MEDIA / name, library / name)
    photos = len(PHRASES) * COPIES + len(TEXT_FREE)
    env = {
        **os.environ,
        "MS_LIBRARY": str(library),
        "MS_DATA_DIR": str(data),
        "MS_MODEL": tiny_model,
        "MS_DECODE_THREADS": "1",
    }

    def run(command: str, **options):
        return subprocess.run(
            [sys.executable, "-m", "materialsearch", command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            **options,
        )

    scanned = run("scan", timeout=300)
    assert scanned.returncode == 0, scanned.stderr[-2000:]

    victim = subprocess.Popen(
        [sys.executable, "-m", "materialsearch", "ocr"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = str(data / "materialsearch.db")
    deadline = time.monotonic() + 300
    while _read_count(db) < 8 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    committed = _read_count(db)
    assert 0 < committed < photos, "the kill should land mid-pass"

    finished = run("ocr", timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    read = int(re.search(r"OCR: (\d+) photos read", finished.stdout).group(1))
    assert read == photos - committed  # committed batches are not read again

    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("select item_id, line_count from ocr_state where status = 'done'"))
        lines = dict(conn.execute("select item_id, count(*) from ocr_text_lines group by item_id"))
        ok = {row[0] for row in conn.execute("select id from items where status = 'ok' and kind = 'image'")}
        assert set(states) == ok and len(ok) == photos
        assert {item: n for item, n in states.items() if n} == lines  # each photo's lines, once
        for fts in ("ocr_text", "ocr_text_short"):  # the full-text indexes agree with the lines they index
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")
        for phrase in ("正品促销", "我是中国人"):
            found = conn.execute(
                "select count(distinct l.item_id) from ocr_text join ocr_text_lines l on l.id = ocr_text.rowid"
                " where ocr_text match ?",
                (f'"{phrase}"',),
            ).fetchone()[0]
            assert found == COPIES, phrase
    again = run("ocr", timeout=300)
    assert "OCR: 0 photos read" in again.stdout

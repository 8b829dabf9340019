"""Scan control and progress: pause/resume/cancel over the API, the window, search while scanning, model changes,
graceful SIGTERM and a real server answering 16 concurrent searchers while it scans."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from materialsearch.web import services_of
from tests.conftest import REPO

PHOTOS = 24


def make_photos(root: Path, count: int, seed: int = 0, start: int = 0) -> None:
    """``count`` small JPEGs of distinct random content."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((256, 192)).save(root / f"photo_{i:03d}.jpg", quality=80)


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    make_photos(root, PHOTOS)
    return root


class Gate:
    """Wraps an encoder's ``encode_prepared`` (what the scan calls per batch): can hold the scan inside a chosen
    batch and slow every batch down."""

    def __init__(self, encoder, hold_at: int | None = None, delay: float = 0.0):
        self.original = encoder.encode_prepared
        self.hold_at = hold_at
        self.delay = delay
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        encoder.encode_prepared = self  # an instance attribute: only this encoder is affected

    def __call__(self, pixels):
        self.calls += 1
        if self.calls == self.hold_at:
            self.entered.set()
            assert self.release.wait(30), "the test never released the scan"
        time.sleep(self.delay)
        return self.original(pixels)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def app_for(make_app):
    """Apps on this test's data dir in small batches, one decode thread and no schedule (closed at teardown)."""

    def build(**overrides):
        return make_app(**{"batch_size": 2, "decode_threads": 1, "scan_cron": "", **overrides})

    return build


def scan_status(client) -> dict:
    return client.get("/api/status").get_json()["scan"]


# --- pause, resume, cancel --------------------------------------------------------------------------------------
def test_pause_blocks_between_batches_then_resume_finishes(app_for, photos):
    app = app_for(library=str(photos))
    client, services = app.test_client(), services_of(app)
    gate = Gate(services.encoder, hold_at=3)
    assert client.post("/api/scan").status_code == 202
    assert gate.entered.wait(20)
    assert client.post("/api/scan").status_code == 409
    paused = client.post("/api/scan/pause")
    assert paused.status_code == 200
    assert paused.get_json()["state"] == "paused" and paused.get_json()["paused_reason"] == "paused by user"
    gate.release.set()  # the batch in hand finishes and is committed; then the scan blocks
    wait_for(lambda: scan_status(client)["progress"]["done"] == 6, what="the third batch to be committed")
    time.sleep(0.5)
    status = scan_status(client)
    assert status["state"] == "paused" and status["progress"]["done"] == 6 and gate.calls == 3
    # Entering the pause saved the index: a crash during a long pause needs no rebuild.
    stamp = json.loads(Path(services.index.stamp_path).read_text())
    assert (stamp["count"], stamp["id_sum"]) == services.store.vector_checksum() == services.index.checksum()
    resumed = client.post("/api/scan/resume")
    assert resumed.status_code == 200 and resumed.get_json()["state"] == "scanning"
    assert services.scans.wait(30)
    last = scan_status(client)["last"]
    assert last["stats"]["added"] == PHOTOS and not last["cancelled"] and last["trigger"] == "manual"
    assert services.index.ntotal == PHOTOS


def test_cancel_keeps_committed_work_and_the_next_scan_does_the_rest(app_for, photos):
    app = app_for(library=str(photos))
    client, services = app.test_client(), services_of(app)
    gate = Gate(services.encoder, hold_at=2)
    assert client.post("/api/scan").status_code == 202
    assert gate.entered.wait(20)
    cancelled = client.post("/api/scan/cancel")
    assert cancelled.status_code == 202
    gate.release.set()
    assert services.scans.wait(20)
    status = scan_status(client)
    assert status["state"] == "idle" and status["last"]["cancelled"]
    committed = status["last"]["stats"]["added"]
    assert 4 <= committed < PHOTOS  # the batch in hand (and whatever was decoded) is committed, not thrown away
    assert services.index.checksum() == services.store.vector_checksum()
    assert services.scans.run().added == PHOTOS - committed


def test_cancel_wakes_a_paused_scan(app_for, photos):
    app = app_for(library=str(photos))
    client, services = app.test_client(), services_of(app)
    gate = Gate(services.encoder, hold_at=1)
    assert client.post("/api/scan").status_code == 202
    assert gate.entered.wait(20)
    client.post("/api/scan/pause")
    gate.release.set()
    wait_for(lambda: services.scans.status().progress.done == 2, what="the first batch")
    assert client.post("/api/scan/cancel").status_code == 202
    assert services.scans.wait(5), "a paused scan must stop when cancelled"
    assert services.scans.last["cancelled"]


def test_control_without_a_scan_is_409(app_for, photos):
    client = app_for(library=str(photos)).test_client()
    for action in ["pause", "resume", "cancel"]:
        response = client.post(f"/api/scan/{action}")
        assert response.status_code == 409 and response.get_json()["message"] == "no scan is running"
    assert client.get("/api/scan/pause").status_code == 405


def test_progress_reports_rate_and_eta(app_for, photos):
    app = app_for(library=str(photos))
    client, services = app.test_client(), services_of(app)
    Gate(services.encoder, delay=0.15)  # about 13 photos/s: long enough to measure, short enough to wait for
    assert client.post("/api/scan").status_code == 202
    progress = wait_for(
        lambda: (scan_status(client)["progress"] or {}).get("rate") and scan_status(client)["progress"],
        what="a rate",
    )
    assert progress["phase"] == "embedding" and progress["total"] == PHOTOS and progress["found"] == PHOTOS
    assert 1 < progress["rate"] < 100 and progress["eta_s"] is not None and progress["eta_s"] >= 0
    assert progress["current"].startswith(str(photos)) and progress["trigger"] == "manual"
    services.scans.wait(30)


def test_last_scan_survives_a_restart(app_for, photos, make_settings):
    from materialsearch.services import Services

    app = app_for(library=str(photos))
    services = services_of(app)
    services.scans.run()
    services.close()
    reopened = Services(make_settings(library=str(photos)))
    try:
        last = reopened.scans.status().last
        assert last.stats["added"] == PHOTOS and last.trigger == "command line" and last.seconds >= 0
    finally:
        reopened.close()


# --- the window -------------------------------------------------------------------------------------------------
def test_window_pauses_scheduled_scans_and_manual_ones_ignore_it(app_for, photos):
    app = app_for(library=str(photos), scan_window=(22 * 60 + 30, 7 * 60))
    client, services = app.test_client(), services_of(app)
    now = [dt.datetime(2024, 1, 1, 12, 0)]
    services.scans.clock = lambda: now[0]
    assert services.scans.start("scheduled")
    time.sleep(0.3)
    status = scan_status(client)
    assert status["state"] == "paused" and status["paused_reason"] == "outside scan window 22:30-07:00"
    assert status["progress"]["phase"] == "starting" and status["schedule"]["window"] == "22:30-07:00"
    now[0] = dt.datetime(2024, 1, 1, 23, 0)  # the window opens
    services.scans.poke()
    assert services.scans.wait(20) and services.index.ntotal == PHOTOS

    # A scheduled scan running when the window closes pauses; resuming it by hand overrides the window.
    make_photos(photos, 8, seed=1, start=PHOTOS)
    gate = Gate(services.encoder, hold_at=1)
    assert services.scans.start("scheduled")
    assert gate.entered.wait(20)
    now[0] = dt.datetime(2024, 1, 2, 7, 30)
    gate.release.set()
    wait_for(lambda: scan_status(client)["state"] == "paused", what="the window to pause the scan")
    assert "outside scan window" in scan_status(client)["paused_reason"]
    assert client.post("/api/scan/resume").status_code == 200
    assert services.scans.wait(20) and services.index.ntotal == PHOTOS + 8

    # A scan started by hand runs at once, outside the window too.
    assert client.post("/api/scan").status_code == 202
    assert services.scans.wait(20) and services.scans.last["trigger"] == "manual"


# --- search while scanning --------------------------------------------------------------------------------------
def test_items_are_searchable_while_the_scan_runs(app_for, photos):
    app = app_for(library=str(photos))
    client, services = app.test_client(), services_of(app)
    gate = Gate(services.encoder, hold_at=4)
    assert client.post("/api/scan").status_code == 202
    assert gate.entered.wait(20)
    body = client.get("/api/search", query_string={"q": "photo", "limit": 50}).get_json()
    assert body["total"] == len(body["results"]) == 6  # the three committed batches, no more
    assert all(Path(r["path"]).parent == photos for r in body["results"])
    gate.release.set()
    assert services.scans.wait(20)
    assert client.get("/api/search", query_string={"q": "photo", "limit": 50}).get_json()["total"] == PHOTOS


def test_an_unchanged_rescan_opens_no_library_file(open_services, photos):
    """Only walk and stat: on a network share, opening or hashing every unchanged file would be the slow part."""
    services = open_services(library=str(photos))
    services.scans.run()
    opened: list[str] = []
    watching = threading.Event()
    root = str(photos)

    def audit(event: str, args) -> None:
        if watching.is_set() and event == "open" and isinstance(args[0], str) and args[0].startswith(root):
            opened.append(args[0])

    sys.addaudithook(audit)  # hooks cannot be removed; this one is inert once ``watching`` is cleared
    watching.set()
    try:
        stats = services.scans.run()
    finally:
        watching.clear()
    assert (stats.unchanged, stats.decoded) == (PHOTOS, 0)
    assert opened == []


# --- model change -----------------------------------------------------------------------------------------------
def test_model_change_re_embeds_in_the_background_without_dimension_errors(app_for, photos, make_model):
    first = services_of(app_for(library=str(photos)))
    first.scans.run()
    item_ids = sorted(s.id for s in first.store.file_states().values())
    assert first.encoder.describe().dim == 64
    first.close()

    other = make_model(seed=5, embed_dim=32)
    app = app_for(library=str(photos), model=other, scan_on_start=False)
    client, services = app.test_client(), services_of(app)
    assert services.encoder.describe().dim == services.index.dim == 32 and services.index.ntotal == 0
    # Before anything is re-embedded: searches answer (nothing yet) and say why, for every kind of query.
    body = client.get("/api/search", query_string={"q": "photo"}).get_json()
    assert body["results"] == [] and body["reindexing"]["pending"] == PHOTOS
    assert "Re-indexing" in body["reindexing"]["message"]
    assert client.get("/api/search", query_string={"like": item_ids[0]}).status_code == 404

    gate = Gate(services.encoder, hold_at=3)
    services.start_background()  # MS_SCAN_ON_START is off, but a model change re-embeds anyway
    assert gate.entered.wait(20) and services.scans.trigger == "model change"
    status = client.get("/api/status").get_json()
    assert status["reindexing"]["pending"] == PHOTOS - 4 and status["reindexing"]["running"]
    assert "Re-indexing" in status["model"]["notice"] and status["model"]["dim"] == 32
    partial = client.get("/api/search", query_string={"q": "photo", "limit": 50}).get_json()
    assert len(partial["results"]) == 4 and partial["reindexing"]  # the two committed batches
    similar = client.get("/api/search", query_string={"like": partial["results"][0]["id"]})
    assert similar.status_code == 200 and len(similar.get_json()["results"]) == 3
    gate.release.set()
    assert services.scans.wait(30)
    done = client.get("/api/search", query_string={"q": "photo", "limit": 50}).get_json()
    assert done["total"] == PHOTOS and "reindexing" not in done
    assert client.get("/api/status").get_json()["model"]["notice"] is None
    assert services.store.item_vectors(item_ids[0]).shape == (1, 32)


def test_a_restart_mid_re_embedding_carries_on(app_for, photos, make_model):
    first = services_of(app_for(library=str(photos)))
    first.scans.run()
    first.close()
    other = make_model(seed=5, embed_dim=32)
    changed = services_of(app_for(library=str(photos), model=other, scan_on_start=False))
    gate = Gate(changed.encoder, hold_at=2)
    changed.start_background()
    assert gate.entered.wait(20)
    changed.scans.cancel()
    gate.release.set()
    changed.close()  # as a restart would: the identity is already the new one, some items still pending
    again = services_of(app_for(library=str(photos), model=other, scan_on_start=False))
    assert 0 < again.pending_count(fresh=True) < PHOTOS
    again.start_background()
    assert again.scans.trigger == "model change" and again.scans.wait(30)
    assert again.reindexing() is None and again.index.ntotal == PHOTOS


def test_a_read_only_process_with_another_model_refuses_clearly(open_services, library, make_model):
    from materialsearch.encoders import ModelError

    owner = open_services(library=str(library))
    owner.scans.run()
    other = make_model(seed=5, embed_dim=32)
    with pytest.raises(ModelError, match="another model"):
        open_services(library=str(library), model=other)
    assert owner.index.ntotal == 5 and owner.store.vector_checksum()[0] == 5  # nothing was dropped


# --- a real server: 16 searchers during a scan, pause over HTTP, the lock, SIGTERM ------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, timeout: float = 30.0) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_real_server_searches_while_scanning_pauses_and_stops_on_sigterm(tmp_path, tiny_model, make_settings):
    library, data = tmp_path / "library", tmp_path / "data"
    make_photos(library, 300)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MS_")},
        "MS_LIBRARY": str(library),
        "MS_DATA_DIR": str(data),
        "MS_MODEL": tiny_model,
        "MS_PORT": str(port),
        "MS_BATCH_SIZE": "2",
        "MS_DECODE_THREADS": "1",
        "MS_SCAN_CRON": "",
    }
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: _up(base), timeout=90, what="the server to start")
        stop, errors, totals, latencies = threading.Event(), [], [], []

        def searcher(n: int) -> None:
            queries = ["photo", "海边的日落", "a red car", "猫", "mountains at night"]
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    code, body = http("GET", f"{base}/api/search?q={urllib.parse.quote(queries[n % 5])}&limit=5")
                    if code != 200:
                        errors.append(f"{code}: {body}")
                    else:
                        totals.append(body["total"])
                        latencies.append(time.perf_counter() - started)
                except Exception as exc:  # noqa: BLE001 - every failure counts as an error of the search
                    errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=searcher, args=(n,), daemon=True) for n in range(16)]
        for thread in threads:
            thread.start()
        wait_for(
            lambda: (
                http("GET", f"{base}/api/status")[1]["scan"]["progress"]
                and http("GET", f"{base}/api/status")[1]["scan"]["progress"]["done"] >= 10
            ),
            timeout=60,
            what="the start-up scan to embed something",
        )
        assert http("POST", f"{base}/api/scan")[0] == 409
        code, paused = http("POST", f"{base}/api/scan/pause")
        assert code == 200 and paused["state"] == "paused"
        done = wait_for(lambda: _stable_done(base), what="the paused scan to stand still")

        # The server holds the data dir: another process opening it neither scans nor schedules, and says who does.
        from materialsearch.services import Services

        other = Services(make_settings(library=str(library), data_dir=str(data)))
        try:
            assert not other.owner and f"process {server.pid}" in other.scans.try_start("manual")
        finally:
            other.close()

        assert http("POST", f"{base}/api/scan/resume")[0] == 200
        wait_for(lambda: http("GET", f"{base}/api/status")[1]["scan"]["progress"]["done"] > done, what="progress")
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert errors == [], errors[:5]
        assert len(latencies) >= 16 and min(totals) < max(totals), "results must grow while the scan runs"

        state = http("GET", f"{base}/api/status")[1]["scan"]["state"]
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    output = log_path.read_text()
    assert "stopping: finishing the current scan batch" in output and "stopped" in output
    # The index on disk was saved at shutdown and matches the database exactly: no rebuild on the next start.
    with sqlite3.connect(data / "materialsearch.db") as conn:
        count, id_sum = conn.execute("select count(*), coalesce(sum(id), 0) from vectors").fetchone()
    stamp = json.loads((data / "index.faiss.json").read_text())
    assert (stamp["count"], stamp["id_sum"]) == (count, id_sum)
    if state == "scanning":
        assert count < 300, "SIGTERM mid-scan stops after the current batch"


def _up(base: str) -> bool:
    try:
        return http("GET", f"{base}/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def _stable_done(base: str) -> int | None:
    first = http("GET", f"{base}/api/status")[1]["scan"]
    time.sleep(0.4)
    second = http("GET", f"{base}/api/status")[1]["scan"]
    if first["state"] == second["state"] == "paused" and first["progress"]["done"] == second["progress"]["done"]:
        return second["progress"]["done"] or None
    return None

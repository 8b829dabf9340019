"""Scan workers on one PostgreSQL catalog (``python -m materialsearch worker``): the owner's scan plans its files into
the work queue and works it beside any number of workers; claims never overlap, a claim that lapses moves on, a
worker killed mid-batch loses nothing, and every file is written exactly once.

Real pieces throughout: the embedded PostgreSQL server (``postgres``), worker processes started as a user starts
them, the tiny model loaded the way real weights are, torch fp32 on every side (one identity).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from sqlalchemy import text

from tests.conftest import settings_on

LAPSED = "SELECT bool_and(claimed_until < now()) FROM scan_queue"
HELD_BY_WORKERS = "SELECT path FROM scan_queue WHERE claimed_by LIKE '% worker' AND done_by IS NULL"
# One identity on every side: the owner here, the workers in their processes.
SAME_MODEL = {"backend": "torch", "precision": "fp32"}


def _library(tmp_path, media_dir, patterns=("jpg_orient*.jpg", "faces_*.jpg")):
    """Copies of some shared photos (a workers' test writes nothing near the shared media)."""
    library = tmp_path / "library"
    library.mkdir()
    for pattern in patterns:
        for path in sorted(media_dir.glob(pattern)):
            shutil.copy(path, library / path.name)
    return library


def _worker(tiny_model, data_dir, url: str, library, *, lease: float = 120, batch: int = 2, once: bool = False):
    """``python -m materialsearch worker`` in a process of its own, configured from the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MS_")} | {
        "MS_MODEL": tiny_model,
        "MS_DATA_DIR": str(data_dir),
        "MS_DATABASE_URL": url,
        "MS_LIBRARY": str(library),
        "MS_BACKEND": SAME_MODEL["backend"],
        "MS_PRECISION": SAME_MODEL["precision"],
        "MS_BATCH_SIZE": str(batch),
        "MS_DECODE_THREADS": "1",
        "MS_TORCH_THREADS": "1",
        "MS_WORKER_LEASE": str(lease),
    }
    command = [sys.executable, "-m", "materialsearch", "worker", *(["--once"] if once else [])]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def _stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    return out


# --- the queue itself ------------------------------------------------------------------------------------------
def test_claims_never_overlap_and_a_lapsed_claim_moves_on(postgres):
    """Eight claimers at once take disjoint files; a claim whose lease ran out is taken by the next claimer, and the
    first holder's late write is dropped (nothing written twice); a file that outlived three leases is given up."""
    from materialsearch.catalog.records import Kind
    from materialsearch.catalog.store import Store
    from materialsearch.catalog.work_queue import GIVE_UP_AFTER, WorkClaim, WorkQueue
    from materialsearch.errors import ProblemCode
    from materialsearch.scan.prepare import error_record
    from materialsearch.scan.walk import FileEntry

    store = Store(postgres())
    try:
        queue = WorkQueue(store.engine, lease_s=60)
        files = [FileEntry(f"/library/{n:03}.jpg", 1000 + n, n, Kind.IMAGE) for n in range(40)]
        run = queue.plan(files, known=["/library/000.jpg"])
        taken: list[list[str]] = []
        start = threading.Barrier(8)

        def claimer(name: str) -> None:
            start.wait()
            taken.append([file.path for file in queue.claim(name, 4)])

        threads = [threading.Thread(target=claimer, args=(f"claimer {n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        claimed = [path for batch in taken for path in batch]
        assert len(claimed) == 32 and len(set(claimed)) == 32  # SKIP LOCKED: nobody waits, nobody shares
        assert queue.counts(run).claimed == 32

        # A claim that lapses (its holder paused, cut off, dead) goes to the next claimer.
        short = WorkQueue(store.engine, lease_s=0.3)
        first = short.claim("slow", 2)
        assert [f.attempts for f in first] == [1, 1]
        _wait_for(
            lambda: _rows(
                store.engine, "SELECT bool_and(claimed_until < now()) FROM scan_queue WHERE claimed_by = 'slow'"
            )[0][0],
            what="the lease to run out",
        )
        second = short.claim("fast", 2)
        assert [f.path for f in second] == [f.path for f in first] and [f.attempts for f in second] == [2, 2]

        def records(batch):
            return [
                error_record(FileEntry(f.path, f.size, f.mtime_ns, Kind.IMAGE), "test", ProblemCode.CORRUPT_IMAGE)
                for f in batch
            ]

        late = WorkClaim(short, "slow")
        store.write_batch(records(first), late)
        assert late.dropped == [f.path for f in first] and late.dropped_count == 2 and store.counts().errors == 0
        on_time = WorkClaim(short, "fast")
        store.write_batch(records(second), on_time)
        assert on_time.dropped == [] and store.counts().errors == 2
        assert queue.counts(run).outcomes == {"error": 2}

        # A file every worker died on is given up after GIVE_UP_AFTER leases, not read again.
        victim = short.claim("doomed 1", 1)[0]
        for attempt in range(2, GIVE_UP_AFTER + 2):
            _wait_for(
                lambda: _rows(
                    store.engine, "SELECT claimed_until < now() FROM scan_queue WHERE id = :id", id=victim.id
                )[0][0],
                what="the lease to run out",
            )
            again = short.claim(f"doomed {attempt}", 1)[0]
            assert again.id == victim.id and again.attempts == attempt
        assert again.given_up and not victim.given_up

        # A stop hands back what its worker holds at once, without counting an attempt.
        held = queue.claim("stopping", 3)
        assert queue.release("stopping") == 3
        assert [f.attempts for f in queue.claim("next", 3)] == [f.attempts for f in held]
    finally:
        store.close()


# --- workers as processes --------------------------------------------------------------------------------------
def test_workers_and_the_scan_index_a_library_exactly_once(postgres, tiny_model, tmp_path, media_dir):
    """Two worker processes wait; the owner's scan plans the library and works the queue beside them. Every file is
    written once (the roll call's counts add up to the library), the vectors equal the embedded SQLite catalog's
    scan of the same files, the status lists the workers, and a stopped worker says so."""
    from materialsearch.services import Services
    from materialsearch.web import create_app, services_of

    library = _library(tmp_path, media_dir)
    names = sorted(path.name for path in library.iterdir())
    url = postgres()
    settings = settings_on(
        tmp_path / "owner", tiny_model, library=str(library), database_url=url, batch_size=2, **SAME_MODEL
    )
    app = create_app(settings)
    owner = services_of(app)
    workers = [_worker(tiny_model, tmp_path / f"worker{n}", url, library) for n in range(2)]
    try:
        _wait_for(lambda: len(owner.work_queue.workers()) == 2, what="both workers in the roll call")
        stats = owner.scans.run()
        assert (stats.added, stats.errors) == (len(names), 0), stats.summary()
        counts = owner.store.counts()
        assert (counts.images, counts.errors, counts.pending) == (len(names), 0, 0)
        assert owner.store.vector_checksum()[0] == len(names)  # one vector a photo: nobody wrote one twice
        done = _rows(owner.store.engine, "SELECT done_by, count(*) FROM scan_queue GROUP BY done_by")
        assert sum(count for _by, count in done) == len(names) and all(by for by, _count in done)
        roll = {worker.name: worker for worker in owner.work_queue.workers()}
        assert sum(worker.files for worker in roll.values()) == len(names)
        assert {worker.role for worker in roll.values()} == {"scan", "worker"}

        status = app.test_client().get("/api/status").get_json()
        listed = {worker["name"]: worker for worker in status["workers"]}
        assert set(listed) == set(roll) and all(worker["alive"] for worker in listed.values())
        assert all(worker["pid"] in {w.pid for w in workers} | {os.getpid()} for worker in listed.values())

        # The same vectors as the embedded catalog's own scan of the same files.
        lite = Services(settings_on(tmp_path / "lite", tiny_model, library=str(library), **SAME_MODEL))
        try:
            lite.scans.run()
            for name in names:
                path = str(library / name)
                pg_item = next(i for i in owner.store.get_items(range(1, 1000)).values() if i.path == path)
                lite_item = next(i for i in lite.store.get_items(range(1, 1000)).values() if i.path == path)
                ours = owner.store.item_vectors(pg_item.id)
                theirs = lite.store.item_vectors(lite_item.id)
                cosine = float(np.dot(ours[0], theirs[0]) / np.linalg.norm(ours[0]) / np.linalg.norm(theirs[0]))
                assert cosine >= 0.9999, (name, cosine)
        finally:
            lite.close()
    finally:
        outputs = [_stop(worker) for worker in workers]
        owner.close()
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert all("files written" in out for out in outputs), outputs


def test_a_worker_killed_mid_batch_loses_nothing(postgres, tiny_model, tmp_path, media_dir):
    """The planner queues the library; worker A claims a batch and is SIGKILLed holding it (frozen first, so the
    kill lands mid-batch). Worker B, started with ``--once``, waits for A's lease to run out, takes its files and
    finishes: every file written exactly once, none failed, A's files claimed twice, A no longer alive."""
    from materialsearch.catalog.store import Store
    from materialsearch.catalog.work_queue import WorkQueue
    from materialsearch.scan.walk import walk_library

    library = _library(tmp_path, media_dir)
    url = postgres()
    store = Store(url)
    try:
        # The catalog's model identity is the owner's to set: a scan of nothing makes it (and the schema).
        from materialsearch.services import Services

        Services(settings_on(tmp_path / "owner", tiny_model, database_url=url, **SAME_MODEL)).close()
        queue = WorkQueue(store.engine, lease_s=2)
        entries = list(walk_library([str(library)], (".jpg",)))
        run = queue.plan(entries, known=())

        a = _worker(tiny_model, tmp_path / "a", url, library, lease=2, batch=1)
        victim: list = []

        def holding_mid_batch() -> bool:
            held = _rows(
                store.engine, "SELECT path FROM scan_queue WHERE claimed_by LIKE '% worker' AND done_by IS NULL"
            )
            if not held:
                return False
            a.send_signal(signal.SIGSTOP)  # frozen while it holds files: the kill lands mid-batch
            held = _rows(
                store.engine, "SELECT path FROM scan_queue WHERE claimed_by LIKE '% worker' AND done_by IS NULL"
            )
            if held:
                victim.extend(path for (path,) in held)
                return True
            a.send_signal(signal.SIGCONT)  # it finished that batch just now: catch the next one
            return False

        _wait_for(holding_mid_batch, what="worker A holding a claim")
        a.kill()
        a.wait(timeout=30)
        assert queue.counts(run).open > 0

        b = _worker(tiny_model, tmp_path / "b", url, library, lease=2, once=True)
        out, _ = b.communicate(timeout=300)
        assert b.returncode == 0, out
        counts = queue.counts(run)
        assert (counts.open, counts.outcomes) == (0, {"added": len(entries)}), counts
        items = store.counts()
        assert (items.images, items.errors, items.pending) == (len(entries), 0, 0)
        assert store.vector_checksum()[0] == len(entries)  # nothing embedded twice
        retaken = _rows(store.engine, "SELECT path, attempts, done_by FROM scan_queue WHERE path = ANY(:p)", p=victim)
        assert retaken and all(attempts == 2 and "worker" in by for _path, attempts, by in retaken), retaken
        roll = {worker.pid: worker for worker in queue.workers()}
        assert not roll[a.pid].alive and roll[b.pid].state == "stopped"
        assert roll[a.pid].files + roll[b.pid].files == len(entries)
    finally:
        store.close()


def test_a_worker_needs_the_postgresql_catalog(tiny_model, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "materialsearch", "worker", "--once"],
        env={k: v for k, v in os.environ.items() if not k.startswith("MS_")}
        | {"MS_MODEL": tiny_model, "MS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "MS_DATABASE_URL" in done.stderr, done.stderr


def test_the_frozen_schema_steps_make_what_the_declarations_say(postgres):
    """PostgreSQL's schema steps are frozen SQL: a database made by them has every declared table with its columns
    and nullability (a change to the declarations without a new step fails here)."""
    from sqlalchemy import inspect

    from materialsearch.catalog.schema import Base
    from materialsearch.catalog.store import Store

    store = Store(postgres())
    try:
        found = inspect(store.engine)
        for table in Base.metadata.sorted_tables:
            columns = {column["name"]: column for column in found.get_columns(table.name)}
            assert set(columns) == {column.name for column in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
            indexes = {index["name"] for index in found.get_indexes(table.name)}
            assert {index.name for index in table.indexes} <= indexes, table.name
        assert {"scan_queue", "scan_workers", "ocr_text_lines", "schema_version"} <= set(found.get_table_names())
    finally:
        store.close()


def test_a_worker_that_cannot_see_the_library_leaves_its_files_to_others(postgres, tiny_model, tmp_path):
    """Files planned in a folder this host does not have (the library mounted elsewhere) are handed back untouched,
    never recorded as unreadable; the worker says what to mount (``--once``: and exits non-zero)."""
    from materialsearch.catalog.records import Kind
    from materialsearch.scan.walk import FileEntry
    from materialsearch.services import Services

    url = postgres()
    owner = Services(settings_on(tmp_path / "owner", tiny_model, database_url=url, **SAME_MODEL))
    try:
        missing = tmp_path / "mounted-on-the-nas-only"
        files = [FileEntry(str(missing / f"IMG_{n}.jpg"), 1000, n, Kind.IMAGE) for n in range(3)]
        run = owner.work_queue.plan(files, known=())
        worker = _worker(tiny_model, tmp_path / "w", url, tmp_path, once=True)
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 1 and f"cannot see {missing}" in out, out
        rows = _rows(owner.store.engine, "SELECT claimed_by, attempts, done_by FROM scan_queue ORDER BY id")
        assert rows == [(None, 0, None)] * 3  # back on the queue as they were, for a host that sees them
        assert owner.work_queue.counts(run).open == 3 and owner.store.counts().errors == 0
        (seen,) = owner.work_queue.workers()
        assert (seen.state, seen.files, seen.alive) == ("stopped", 0, False)
    finally:
        owner.close()


@pytest.mark.browser
def test_the_page_names_the_live_workers_by_host(postgres, tiny_model, tmp_path, media_dir, new_page):
    """The status area lists the worker processes in the roll call that are alive, by host (two on one host: ×2),
    in English and Chinese; a stopped worker leaves the list. Real PostgreSQL, real worker processes, real server."""
    from playwright.sync_api import expect

    from materialsearch.web import create_app, services_of
    from tests.conftest import PHONE, served

    library = _library(tmp_path, media_dir, patterns=("jpg_orient1*.jpg",))
    url = postgres()
    app = create_app(settings_on(tmp_path / "owner", tiny_model, library=str(library), database_url=url, **SAME_MODEL))
    owner = services_of(app)
    workers = [_worker(tiny_model, tmp_path / f"worker{n}", url, library) for n in range(2)]
    try:

        def live() -> list:
            return [w for w in owner.work_queue.workers() if w.role == "worker" and w.alive]

        _wait_for(lambda: len(live()) == 2, what="both workers in the roll call")
        host = live()[0].host
        with served(app) as server:
            base = f"http://127.0.0.1:{server.effective_port}/"
            english, chinese = new_page(), new_page(PHONE, locale="zh-CN")
            for page in (english, chinese):
                page.goto(base)
            expect(english.locator("#scan-info")).to_contain_text(f"Workers: {host} ×2 (0 files written)")
            expect(chinese.locator("#scan-info")).to_contain_text(f"工作进程：{host} ×2（已写入 0 个文件）")
            _stop(workers[0])
            _wait_for(lambda: len(live()) == 1, what="the stopped worker to leave the roll call's live ones")
            english.reload()
            expect(english.locator("#scan-info")).to_contain_text(f"Workers: {host} (0 files written)")
            assert english.problems == [] and chinese.problems == []
    finally:
        outputs = [_stop(worker) for worker in workers]
        owner.close()
    assert [worker.returncode for worker in workers] == [0, 0], outputs

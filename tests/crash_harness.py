"""Kill real scans with SIGKILL at chosen points, again and again, and check nothing is lost or doubled.

Used by tests/test_crash.py; also runs by hand for a long soak:

    python tests/crash_harness.py --library L --data D --model M --iterations 200 --seed 7

Importing torch takes seconds, so the parent imports the app once and forks one child process per attempt. A child
installs one kill point — a monkeypatch that SIGKILLs its own process the n-th time a step of the scan runs — and
runs the command-line scan (``python -m materialsearch scan``'s code). After every kill a fresh child opens the data
dir as a restarted process would and checks that the database is consistent and that the index it loads (or
rebuilds) agrees with it. Between kills the library changes a little (a file removed, one added, one rewritten),
so removals and re-embeddings are killed too. At the end an uninterrupted scan must finish and index every file of
the library exactly once. The parent prints one JSON line describing what happened.

Kill points: walking (n files into the walk), decoding (n-th decode), embedding (n-th model batch), mid-commit
(inside the n-th batch's database transaction, just before COMMIT), after-commit (batch committed, index not yet
updated), removing (deleted from the database, not yet from the index), index-write (half of the index file
written to its temp file), index-stamp (new index file in place, its stamp not yet written), and random (the
parent kills the child after a random delay).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = (
    "walking",
    "decoding",
    "embedding",
    "mid-commit",
    "after-commit",
    "removing",
    "index-write",
    "index-stamp",
    "random",
)


def die() -> None:
    """SIGKILL this process: no cleanup, no flushing, like a power cut (as far as this process can tell)."""
    os.kill(os.getpid(), signal.SIGKILL)


class Counter:
    """Kills the process the n-th time ``hit`` is called (thread-safe: decoding runs in a pool)."""

    def __init__(self, n: int):
        self.n = n
        self.count = 0
        self.lock = threading.Lock()

    def hit(self) -> bool:
        with self.lock:
            self.count += 1
            return self.count == self.n


def install(phase: str, n: int) -> None:
    """Patch the app in this (child) process so that it SIGKILLs itself at ``phase``, the n-th time."""
    from materialsearch.catalog import store
    from materialsearch.catalog import vector_index as index
    from materialsearch.encoders import registered_backends
    from materialsearch.scan import prepare
    from materialsearch.scan import scanner as scan

    counter = Counter(n)
    if phase == "walking":
        original_walk = scan.walk_library

        def walk(*args, **kwargs):
            for entry in original_walk(*args, **kwargs):
                if counter.hit():
                    die()
                yield entry

        scan.walk_library = walk
    elif phase == "decoding":
        original_photo = prepare.Preparer._photo

        def photo(self, entry):
            if counter.hit():
                die()
            return original_photo(self, entry)

        prepare.Preparer._photo = photo
    elif phase == "embedding":
        # Whichever backend the settings pick (torch, or ONNX Runtime where it is the default) is killed inside.
        for cls in registered_backends().values():

            def encode_prepared(self, batch, _original=cls.encode_prepared):
                if counter.hit():
                    die()
                return _original(self, batch)

            cls.encode_prepared = encode_prepared
    elif phase == "mid-commit":
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        inside = threading.local()
        original_write = store.Store.write_batch

        def write_batch(self, records, claim=None):
            inside.on = True
            try:
                return original_write(self, records, claim)
            finally:
                inside.on = False

        def on_commit(_conn) -> None:
            # Fires just before the DBAPI COMMIT: the batch's rows are written but not committed.
            if getattr(inside, "on", False) and counter.hit():
                die()

        event.listen(Engine, "commit", on_commit)
        store.Store.write_batch = write_batch
    elif phase == "after-commit":
        original_add = index.VectorIndex.add

        def add(self, ids, vectors):
            if counter.hit():
                die()
            return original_add(self, ids, vectors)

        index.VectorIndex.add = add
    elif phase == "removing":
        original_delete = store.Store.delete_items

        def delete_items(self, item_ids):
            removed = original_delete(self, item_ids)
            if counter.hit():
                die()
            return removed

        store.Store.delete_items = delete_items
    elif phase in {"index-write", "index-stamp"}:
        scan.INDEX_SAVE_INTERVAL_S = 0.0  # save after every batch, so saves happen mid-scan
        original_atomic = index._atomic_write

        def atomic_write(path, data):
            is_stamp = str(path).endswith(".json")
            if phase == "index-write" and not is_stamp and counter.hit():
                raw = bytes(data)
                with open(f"{path}.tmp", "wb") as handle:
                    handle.write(raw[: len(raw) // 2])
                    handle.flush()
                    os.fsync(handle.fileno())
                die()
            if phase == "index-stamp" and is_stamp and counter.hit():
                die()
            return original_atomic(path, data)

        index._atomic_write = atomic_write
    elif phase != "random":
        raise ValueError(f"unknown phase {phase!r}")


def child_scan(phase: str | None, n: int, log_path: str) -> None:
    """In a forked child: install the kill point, run the CLI scan, exit with its code."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 70
    try:
        if phase:
            install(phase, n)
        from materialsearch import cli

        code = cli.main(["scan"])
    except BaseException as exc:  # noqa: BLE001 - a forked child must always reach os._exit below
        print(f"child failed: {type(exc).__name__}: {exc}", flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def child_verify(library: str | None, log_path: str) -> None:
    """In a forked child: open the data dir as a restarted process does, and check it; exit 0 when consistent.

    With ``library``, also check that every file in it is indexed exactly once (after the final scan).
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 1
    try:
        from config import Settings
        from materialsearch.catalog.filters import Filters
        from materialsearch.search.service import Page
        from materialsearch.services import Services

        settings = Settings.from_env()
        problems = stamp_problems(Path(settings.data_dir) / "index.faiss")
        services = Services(settings, claim=False)
        try:
            problems += db_problems(services.store.path)
            if services.index.checksum() != services.store.vector_checksum():
                problems.append(f"index {services.index.checksum()} != database {services.store.vector_checksum()}")
            if library:
                files = {str(p) for p in Path(library).rglob("*.jpg")}
                states = services.store.file_states()
                if set(states) != files:
                    problems.append(f"indexed paths differ from the library: {sorted(set(states) ^ files)[:5]}")
                if any(s.status != "ok" for s in states.values()):
                    problems.append("some items are not ok")
                if services.store.vector_checksum()[0] != len(files):
                    problems.append(f"{services.store.vector_checksum()[0]} vectors for {len(files)} files")
                hits = services.search.search(services.search.text_vector("photo"), Filters(), Page(limit=10))
                if len(hits.hits) != min(10, len(files)):
                    problems.append(f"a search found {len(hits.hits)} items")
        finally:
            services.close()
        print(json.dumps({"problems": problems}), flush=True)
        code = 0 if not problems else 1
    except BaseException as exc:  # noqa: BLE001 - a forked child must always reach os._exit below
        print(f"verify failed: {type(exc).__name__}: {exc}", flush=True)
    finally:
        sys.stdout.flush()
        os._exit(code)


def stamp_problems(index_path: Path) -> list[str]:
    """A stamp on disk must always describe the index file beside it: never a half-written or mismatched pair."""
    import faiss

    stamp_path = Path(f"{index_path}.json")
    if not stamp_path.exists():
        return []  # no stamp: the next start rebuilds from the database
    stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    try:
        ntotal = faiss.read_index(str(index_path)).ntotal
    except RuntimeError as exc:
        return [f"a stamp sits beside an unreadable index file: {exc}"]
    return [] if ntotal == stamp["count"] else [f"the stamp says {stamp['count']} vectors, the file has {ntotal}"]


def db_problems(db: str) -> list[str]:
    """Database invariants a crash must never break: one vector per indexed item, none for others."""
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute(
            "select i.path, i.status, count(v.id) from items i left join vectors v on v.item_id = i.id group by i.id"
        ).fetchall()
        orphans = conn.execute(
            "select count(*) from vectors v left join items i on i.id = v.item_id where i.id is null"
        ).fetchone()[0]
    problems = [f"{path}: status {status} with {count} vectors" for path, status, count in rows if count > 1]
    problems += [f"{path}: ok without a vector" for path, status, count in rows if status == "ok" and count != 1]
    problems += [f"{path}: {status} with a vector" for path, status, count in rows if status != "ok" and count]
    if orphans:
        problems.append(f"{orphans} vectors without an item")
    return problems


def fork(target, *args) -> int:
    """Run ``target(*args)`` in a forked child; returns its pid."""
    pid = os.fork()
    if pid == 0:
        target(*args)
        os._exit(99)  # targets exit themselves
    return pid


def wait(pid: int, timeout: float) -> int:
    """The child's wait status; SIGKILLs it (a hang is a failure) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"child {pid} hung for {timeout}s")
        time.sleep(0.01)


def indexed_paths(db: Path) -> list[str]:
    """Paths the database holds as indexed."""
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        return sorted(row[0] for row in conn.execute("select path from items where status = 'ok'"))


def write_photo(path: Path, rng: random.Random) -> None:
    """A small JPEG of random pixels (distinct content, so no two files look like a move)."""
    from PIL import Image

    pixels = bytes(rng.randrange(256) for _ in range(48 * 64 * 3))
    Image.frombytes("RGB", (64, 48), pixels).resize((256, 192)).save(path, quality=80)


def mutate(library: Path, db: Path, rng: random.Random, serial: int, rewrite: int) -> dict:
    """Remove an indexed photo, add a new one, rewrite ``rewrite`` indexed ones (new content and mtime).

    Gives the next scan work of every kind (a removal, new and changed files), whatever earlier attempts did.
    """
    indexed = [Path(p) for p in indexed_paths(db) if Path(p).exists()]
    rng.shuffle(indexed)
    change = {"added": f"new_{serial:03d}.jpg", "removed": None, "rewritten": 0}
    if indexed:
        removed = indexed.pop()
        removed.unlink()
        change["removed"] = removed.name
    for path in indexed[:rewrite]:
        before = path.stat().st_mtime_ns
        write_photo(path, rng)
        os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
        change["rewritten"] += 1
    write_photo(library / change["added"], rng)
    return change


def make_library(root: Path, count: int, seed: int) -> None:
    """``count`` small distinct JPEGs."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_photo(root / f"img_{i:03d}.jpg", rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--files", type=int, default=40, help="photos in a new library")
    parser.add_argument("--iterations", type=int, default=len(PHASES), help="kill attempts (phases in turn)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--rewrite", type=int, default=6, help="indexed photos rewritten before each attempt")
    args = parser.parse_args(argv)

    library, data = Path(args.library), Path(args.data)
    if not library.exists():
        make_library(library, args.files, args.seed)
    data.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "MS_LIBRARY": str(library),
            "MS_DATA_DIR": str(data),
            "MS_MODEL": args.model,
            "MS_BATCH_SIZE": "4",
            "MS_DECODE_THREADS": "2",
        }
    )
    # Imported once here, before any fork, and never run here: the children use it (torch is slow to import).
    import apscheduler.triggers.cron  # noqa: F401
    import cn_clip.clip  # imports torch and torchvision
    import cn_clip.clip.model  # noqa: F401
    import faiss  # noqa: F401
    import tqdm  # noqa: F401

    import materialsearch.cli
    import materialsearch.services  # noqa: F401

    rng = random.Random(args.seed)
    log_path = str(data.parent / "crash-harness.log")
    report: dict = {"seed": args.seed, "attempts": [], "problems": []}
    db = data / "materialsearch.db"
    for attempt in range(args.iterations):
        phase = PHASES[attempt % len(PHASES)]
        n = {"walking": rng.randint(1, args.files), "decoding": rng.randint(1, 6), "removing": 1}.get(
            phase, rng.randint(1, 2)
        )
        report.setdefault("mutations", []).append(mutate(library, db, rng, attempt, args.rewrite))
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"\n=== attempt {attempt}: {phase} n={n}\n")
        started = time.monotonic()
        pid = fork(child_scan, None if phase == "random" else phase, n, log_path)
        if phase == "random":
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(pid, signal.SIGKILL)
        status = wait(pid, 120)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            report["problems"].append(f"attempt {attempt} ({phase}): the scan failed with status {status}")
        verify = wait(fork(child_verify, None, log_path), 120)
        if verify != 0:
            report["problems"].append(f"attempt {attempt} ({phase} n={n}): inconsistent after restart; see {log_path}")
        report["attempts"].append(
            {"phase": phase, "n": n, "killed": killed, "seconds": round(time.monotonic() - started, 2)}
        )
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("\n=== final scan\n")
    final = wait(fork(child_scan, None, 0, log_path), 300)
    if final != 0:
        report["problems"].append(f"the final uninterrupted scan failed with status {final}")
    if wait(fork(child_verify, str(library), log_path), 120) != 0:
        report["problems"].append(f"the final state is wrong; see {log_path}")
    report["files"] = len(list(library.glob("*.jpg")))
    print(json.dumps(report), flush=True)
    return 0 if not report["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())

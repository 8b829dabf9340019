#!/usr/bin/env python
"""Encoding on another process over loopback HTTP (``serve-encoder`` + ``MS_ENCODER_URLS``) against encoding here.

One process scans the bench's phone mix (70 % real iPhone HEICs, 30 % 12 MP JPEGs) twice on fresh data dirs:
with its own model, then through an encoder service started as its own process (``python -m materialsearch
serve-encoder``, same checkpoint, same backend and precision). On one machine both share the cores, so wall-clock
rates say little; what is measured is **where the CPU goes, per photo**: the scanning side (the NAS: walk, read,
hash, decode, thumbnail, preparing the JPEG it sends, HTTP, SQLite, FAISS) and the service (JPEG decode,
preprocessing, the model). The NAS side's CPU-seconds per photo give the rate at which it becomes the bound once
the model runs elsewhere: ``cores / (NAS CPU-s per photo)``.

    .venv/bin/python bench/bench_encoder_service.py                 # ViT-B-16 (random weights), 24 photos
    .venv/bin/python bench/bench_encoder_service.py --smoke --out /tmp/b   # tiny model, 4 photos (seconds)

Prints a table (CPU and load named) and writes ``<out>/bench_encoder_service.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

if not __package__:  # run as a file: import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench.common import log

REPO = Path(__file__).resolve().parents[1]
HEIC_SOURCES = ("heic_iphone12pro_orient6_irot_gps.heic", "heic_iphone8plus_arrow_orient6_irot.heic")
TOKEN = "bench-token"


def mixed_library(cache: Path, photos: int, media: str, width: int, height: int) -> Path:
    jpegs = sorted(common.ensure_images(cache, photos, width, height, 90, 6.0, media).glob("*.jpg"))
    heics = [Path(media) / name for name in HEIC_SOURCES]

    def make(tmp: Path) -> None:
        heic_count = round(photos * 0.7)
        for i in range(photos):
            if i < heic_count:
                common.link_or_copy(heics[i % len(heics)], tmp / f"IMG_{i:05d}.HEIC")
            else:
                common.link_or_copy(jpegs[i], tmp / f"IMG_{i:05d}.jpg")

    return common.cached_dir(cache / f"encoder-service-mix-{photos}-{width}x{height}", make)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_service(checkpoint: Path, data_dir: Path, backend: str, precision: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MS_")}
    env.update(
        MS_MODEL=str(checkpoint),
        MS_DATA_DIR=str(data_dir),
        MS_HOST="127.0.0.1",
        MS_PORT=str(port),
        MS_ENCODER_TOKEN=TOKEN,
        MS_BACKEND=backend,
        MS_PRECISION=precision,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "materialsearch", "serve-encoder"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # the first start may export the model to ONNX
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("serve-encoder did not start") from None
            time.sleep(0.5)


def scan(settings, library: Path, service_pid: int | None) -> dict:
    services = product.Services(settings)
    try:
        services.encoder.describe()  # loaded (and its identity pinned) before the timed part
        own0 = common._own_cpu_s()
        service0 = _process_cpu_s(service_pid) if service_pid else 0.0
        started = time.perf_counter()
        stats = services.scans.run()
        wall = time.perf_counter() - started
        own = common._own_cpu_s() - own0
        service = (_process_cpu_s(service_pid) - service0) if service_pid else 0.0
    finally:
        services.close()
    photos = len(list(library.iterdir()))
    if stats.added != photos or stats.errors:
        raise SystemExit(f"the scan did not index every photo: {stats.summary()}")
    cores = os.cpu_count() or 1
    return {
        "photos": photos,
        "wall_s": round(wall, 2),
        "photos_per_s": round(photos / wall, 2),
        "scanning_side_cpu_s_per_photo": round(own / photos, 4),
        "service_cpu_s_per_photo": round(service / photos, 4),
        # The scanning side alone on this machine's cores, the model elsewhere: where it becomes the bound.
        "scanning_side_bound_photos_per_s": round(cores * photos / own, 1) if own else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--model", default="vit-b-16", help="vit-b-16 (random weights), tiny, or a checkpoint path")
    parser.add_argument("--config", default="onnx:fp32", help="backend:precision on both sides (default onnx:fp32)")
    parser.add_argument("--width", type=int, default=4032)
    parser.add_argument("--height", type=int, default=3024)
    common.add_place_arguments(parser, "bench_encoder_service.json", media=True)
    parser.add_argument("--smoke", action="store_true", help="tiny model, 4 small photos")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.photos, args.width, args.height = "tiny", 4, 1600, 1200
    backend, precision = args.config.split(":")
    cache = Path(args.cache).expanduser().resolve()
    checkpoint, what = common.ensure_model(cache, args.model)
    library = mixed_library(cache, args.photos, args.media, args.width, args.height)
    dirs = common.DataDirs("ms-bench-encsvc-", shared_models=cache / "data-models")
    load0 = os.getloadavg()[0]
    try:
        base = {"model": str(checkpoint), "library": str(library), "backend": backend, "precision": precision}
        log("scan with this process's own model ...")
        local = scan(product.Settings.from_env(environ={}, data_dir=str(dirs.new()), **base), library, None)
        process, url = start_service(checkpoint, dirs.new(), backend, precision)
        try:
            log(f"scan through the encoder service at {url} ...")
            # This side has no weights (a NAS whose model runs on the GPU host): everything goes to the service.
            remote_settings = product.Settings.from_env(
                environ={},
                data_dir=str(dirs.new()),
                **{**base, "model": str(dirs.new() / "no-weights-here.pt")},
                encoder_urls=(url,),
                encoder_token=TOKEN,
            )
            remote = scan(remote_settings, library, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        dirs.cleanup()
    report = {
        "machine": common.machine_facts(),
        "model": what,
        "config": args.config,
        "load_average_at_start": round(load0, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "smoke": args.smoke,
        "local": local,
        "through_service": remote,
    }
    rows = [
        (
            name,
            r["photos_per_s"],
            r["scanning_side_cpu_s_per_photo"],
            r["service_cpu_s_per_photo"],
            r["scanning_side_bound_photos_per_s"],
        )
        for name, r in (("model here", local), ("model in serve-encoder (loopback)", remote))
    ]
    lines = [
        f"{args.photos} photos (70 % iPhone HEIC), {what}, {args.config}; CPU: {common.cpu_model()}, "
        f"{os.cpu_count()} cores, load average {load0:.1f} → {os.getloadavg()[0]:.1f}",
        *common.text_table(
            (
                "scan",
                "photos/s (shared cores)",
                "scanning side CPU-s/photo",
                "service CPU-s/photo",
                "scanning side bound, photos/s",
            ),
            rows,
            "<>>>>",
        ),
    ]
    common.publish(args.out, "bench_encoder_service.json", report, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

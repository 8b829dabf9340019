#!/usr/bin/env python
"""The speed benchmark of materialsearch: one command, one process, one table.

    .venv/bin/python bench/run.py                 # ViT-B-16 (random weights), every backend that runs here
    .venv/bin/python bench/run.py --million       # also the 1M-item query run (~10 min, ~6 GB RAM)
    .venv/bin/python bench/run.py --smoke --out /tmp/b   # tiny model, a few photos, 2k items (seconds)

Indexing, per backend+precision (torch fp32 = the reference; onnx fp32; onnx int8; torch bf16 where the CPU has
native bf16, or with ``--configs``): the model alone (``encode_prepared`` on prepared pictures) and end-to-end
scans (``Services.scans.run()`` on a fresh data dir: walk, read, hash, decode, thumbnail, preprocess, encode,
SQLite, FAISS) of three folders: 12 MP JPEGs, real iPhone 12 MP HEICs, and a HEIC-heavy phone mix; with the
fidelity of each precision (worst cosine to torch fp32 on the same pictures and sentences) and of decoding HEICs
from their embedded thumbnail (vs the full decode).

Queries, at 10k / 100k (/ 1M) items: a real SQLite store and the product's ``VectorIndex`` (``MS_INDEX=auto``)
over synthetic clustered unit vectors resembling CLIP embeddings; text queries end to end through
``SearchService`` (tokenize + encode + search + database lookup) with the default backend; recall@10 of the index
vs exact search; exact (flat) search for comparison; and the peer's method on the same data (load every vector
from SQLite, numpy matmul, top 20) as a reference row. Image queries (decode + encode + search) at the largest
size. RSS after each step.

Video (``bench_video.py``'s measurements): 1080p H.264 and HEVC phone-like clips, real-time factor (video seconds
per wall second) of sampling at MS_FRAME_INTERVAL, of decoding every frame, of the end-to-end scan with the
default backend and of the model alone; plus sampling an hour of video (memory must stay flat).

Prints the tables and writes ``<out>/bench_run.json``. Other processes' CPU use per phase is recorded (a shared
machine makes numbers noisy); ``--wait-quiet S`` waits for a quiet machine before each phase.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/run.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_video, common, product
from bench.common import QUERIES, log, percentiles, rss_mb

SCHEMA = 1
HEIC_SOURCES = ("heic_iphone12pro_orient6_irot_gps.heic", "heic_iphone8plus_arrow_orient6_irot.heic")
HEIC_SHARE_OF_MIX = 0.7  # an iPhone library is mostly HEIC; screenshots, downloads and Android shots are JPEG
CONFIG_NAMES = {
    "torch:fp32": "torch fp32",
    "onnx:fp32": "onnx fp32",
    "onnx:int8": "onnx int8",
    "torch:bf16": "torch bf16",
}
FIDELITY_BAR = 0.999


# --------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------
def ensure_sets(args, cache: Path) -> dict[str, Path]:
    """Folders of photos: ``jpeg`` (generated 12 MP phone-like JPEGs), ``heic`` (copies of the real iPhone
    HEICs of the media set), ``mixed`` (HEIC_SHARE_OF_MIX HEIC, the rest JPEG)."""
    n = args.photos
    jpeg_source = common.ensure_images(cache, n, args.width, args.height, 90, 6.0, args.media)
    jpegs = sorted(jpeg_source.glob("*.jpg"))
    heics = [Path(args.media) / name for name in HEIC_SOURCES if (Path(args.media) / name).is_file()]
    if not heics:
        raise SystemExit(f"no real iPhone HEICs in {args.media} ({', '.join(HEIC_SOURCES)})")

    def make(tmp: Path) -> None:
        for name in ("jpeg", "heic", "mixed"):
            (tmp / name).mkdir()
        for jpeg in jpegs:
            common.link_or_copy(jpeg, tmp / "jpeg" / jpeg.name)
        for i in range(n):
            # Copies of real phone files: their decode cost (and embedded thumbnails) are the real thing.
            common.link_or_copy(heics[i % len(heics)], tmp / "heic" / f"IMG_{i:05d}.HEIC")
        heic_count = round(n * HEIC_SHARE_OF_MIX)
        for i in range(n):
            if i < heic_count:
                common.link_or_copy(heics[i % len(heics)], tmp / "mixed" / f"IMG_{i:05d}.HEIC")
            else:
                common.link_or_copy(jpegs[i], tmp / "mixed" / f"IMG_{i:05d}.jpg")

    root = common.cached_dir(cache / f"sets-{n}-{args.width}x{args.height}", make)
    return {name: root / name for name in ("jpeg", "heic", "mixed")}


def clustered(n: int, dim: int, clusters: int, seed: int = 0, spread: float = 0.5, draw: int = 0):
    """Unit vectors in clusters inside a shared cone, like CLIP embeddings of a photo library (random pairs
    ~0.33 cosine, 10th neighbour ~0.87); ``draw`` gives other points around the same centres (queries)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    centres = (common * 0.8 / np.linalg.norm(common) + rng.normal(size=(clusters, dim)) / np.sqrt(dim)).astype(
        np.float32
    )
    rng = np.random.default_rng([seed, draw])
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in blocks: float64 temporaries of 1M x 512 would need 4 GB
        m = min(100_000, n - start)
        block = centres[rng.integers(0, clusters, m)] + rng.normal(size=(m, dim)).astype(np.float32) * (
            spread / np.sqrt(dim)
        )
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


# --------------------------------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------------------------------
class Bench:
    """What the parts of one run share: the arguments, the timed phases, and fresh data dirs whose ONNX exports
    are made once (in the cache) and shared."""

    def __init__(self, args):
        self.args = args
        self.phases: dict[str, dict] = {}
        self.data_dirs = common.DataDirs("ms-bench-run-", shared_models=Path(args.cache) / "data-models")

    def phase(self, name: str) -> common.Phase:
        return common.Phase(name, self.phases, self.args.wait_quiet)

    def settings(self, **overrides):
        """Settings for a fresh data dir over the run's checkpoint (and ``--batch-size``), plus ``overrides``."""
        values = {"model": str(self.checkpoint), "data_dir": str(self.data_dirs.new())}
        if self.args.batch_size:
            values["batch_size"] = self.args.batch_size
        values.update(overrides)
        return product.Settings.from_env(**values)


def reference_inputs(encoder, sets: dict[str, Path], settings) -> tuple[list, list]:
    """Prepared pictures of the mixed set (as the scanner decodes them) and the query sentences."""
    decode = common.scanner_decoder(settings, encoder)
    pixels = [encoder.prepare(decode(path.read_bytes()).image) for path in sorted(sets["mixed"].iterdir())]
    return pixels, list(QUERIES[:16])


def measure_config(bench: Bench, key: str, sets: dict[str, Path], reference: dict | None) -> dict:
    import numpy as np

    backend, precision = key.split(":")
    settings = bench.settings(backend=backend, precision=precision)
    log(f"{key}: loading (first time: ONNX export/quantization) ...")
    t0 = time.perf_counter()
    encoder = product.make_encoder(settings)
    model_facts = encoder.describe()  # loads it
    load_s = time.perf_counter() - t0
    result: dict = {
        "config": key,
        "precision_used": model_facts.precision,
        "towers": dict(model_facts.tower_precision),
        "int8_probe_fidelity": dict(model_facts.fidelity) or None,
        "identity": model_facts.identity,
        "load_s": round(load_s, 2),
    }
    pixels, sentences = reference_inputs(encoder, sets, settings)
    with bench.phase(f"{key}:model_alone"):
        model = common.measure_model_alone(encoder, pixels, settings.batch_size)
    result["model_alone_images_per_s"] = round(model["images_per_s"], 3)
    model_cpu = bench.phases[f"{key}:model_alone"]
    # Throughput per CPU-second of this process: on a machine shared with other jobs, wall-clock rates follow
    # the others' load, CPU-seconds much less. ``x cores`` turns it into what the whole machine would give.
    model_per_cpu = len(pixels) / model_cpu["own_cpu_s"] if model_cpu["own_cpu_s"] else 0.0
    result["model_alone_images_per_cpu_s"] = round(model_per_cpu, 3)
    image_vectors = encoder.encode_prepared(pixels)
    text_vectors = encoder.encode_texts(sentences)
    text_ms = []
    for sentence in sentences:
        t0 = time.perf_counter()
        encoder.encode_texts([sentence])
        text_ms.append((time.perf_counter() - t0) * 1000)
    result["text_encode_ms"] = percentiles(text_ms)
    if reference is None:
        result["fidelity"] = {"image_min_cos": 1.0, "text_min_cos": 1.0}
        result["_vectors"] = (image_vectors, text_vectors)
    else:
        ref_images, ref_texts = reference["_vectors"]
        result["fidelity"] = {
            "image_min_cos": round(float(np.min(np.sum(image_vectors * ref_images, axis=1))), 6),
            "text_min_cos": round(float(np.min(np.sum(text_vectors * ref_texts, axis=1))), 6),
        }
    scans = {}
    runs = [(name, folder, {}) for name, folder in sets.items()]
    if model["images_per_s"] < bench.args.min_scan_rate:
        # e.g. bf16 on a CPU without native bf16: its scans would take many minutes and say nothing new
        log(f"{key}: model alone {model['images_per_s']:.2f} img/s < --min-scan-rate: scans skipped")
        runs = []
    if key == bench.args.default_config and not bench.args.smoke:
        runs.append(("heic_full_decode", sets["heic"], {"heic_thumbnail": False}))
    if runs and bench.args.compare_prelook:
        # The mixed set again with the OCR pre-look forced to each place (the plain run above is ``auto``'s).
        runs += [(f"mixed_prelook_{mode}", sets["mixed"], {"ocr_prelook": mode}) for mode in ("scan", "pass")]
    for name, folder, overrides in runs:
        scan_settings = bench.settings(backend=backend, precision=precision, library=str(folder), **overrides)
        services = product.Services(scan_settings, encoder=encoder)
        try:
            with (
                bench.phase(f"{key}:scan:{name}"),
                common.EncodeTimer(encoder) as timer,
                common.PrepareTimer(services.scanner.preparer) as decode,
            ):
                stats = services.scans.run()
            prelook = services.scans.status().ocr_prelook  # where the OCR pre-look ran, and why
        finally:
            services.close()
        if stats.added != len(list(folder.iterdir())) or stats.errors:
            raise SystemExit(f"{key} {name}: the scan did not index every photo: {stats.summary()}")
        photos_per_s = stats.added / stats.seconds
        scan_cpu = bench.phases[f"{key}:scan:{name}"]
        per_cpu = stats.added / scan_cpu["own_cpu_s"] if scan_cpu["own_cpu_s"] else 0.0
        scans[name] = {
            "photos_per_cpu_s": round(per_cpu, 3),
            "cpu_ratio_to_model_alone": round(per_cpu / model_per_cpu, 3) if model_per_cpu else None,
            "others_share_of_machine": scan_cpu["others_share_of_machine"],
            "photos": stats.added,
            "seconds": round(stats.seconds, 3),
            "photos_per_s": round(photos_per_s, 3),
            "ratio_to_model_alone": round(photos_per_s / model["images_per_s"], 3),
            "encode_seconds_in_scan": round(timer.seconds, 3),
            # Where the scan's CPU went, per photo: the decode threads, and the rest (model, SQLite, FAISS);
            # the model waits for pictures for the share of the scan spent outside encode_prepared.
            "decode_cpu_s_per_photo": round(decode.cpu_s / stats.added, 4),
            "model_and_rest_cpu_s_per_photo": round((scan_cpu["own_cpu_s"] - decode.cpu_s) / stats.added, 4),
            "model_idle_share": round(max(0.0, 1 - timer.seconds / stats.seconds), 3),
            "hours_for_100k": round(100_000 / photos_per_s / 3600, 2),
            "heic_thumbnail": scan_settings.heic_thumbnail,
            "ocr_prelook": prelook,
        }
        log(f"{key} {name}: {photos_per_s:.2f} photos/s ({photos_per_s / model['images_per_s']:.2f}x model)")
    if scans:
        # The model alone once more after the scans: on a shared or throttled machine its speed drifts over the
        # minutes the scans take, and the ratios are then against the mean of both (both are reported).
        with bench.phase(f"{key}:model_alone_after"):
            after = common.measure_model_alone(encoder, pixels, settings.batch_size)
        cpu_s = model_cpu["own_cpu_s"] + bench.phases[f"{key}:model_alone_after"]["own_cpu_s"]
        rate = (model["images"] + after["images"]) / (model["seconds"] + after["seconds"])
        model_per_cpu = (model["images"] + after["images"]) / cpu_s if cpu_s else 0.0
        result["model_alone_runs_images_per_s"] = [round(model["images_per_s"], 3), round(after["images_per_s"], 3)]
        result["model_alone_images_per_s"] = round(rate, 3)
        result["model_alone_images_per_cpu_s"] = round(model_per_cpu, 3)
        for scan in scans.values():
            scan["ratio_to_model_alone"] = round(scan["photos_per_s"] / rate, 3)
            scan["cpu_ratio_to_model_alone"] = (
                round(scan["photos_per_cpu_s"] / model_per_cpu, 3) if model_per_cpu else None
            )
    del pixels
    result["scans"] = scans
    return result


def heic_thumbnail_fidelity(encoder, media: Path) -> dict:
    """Cosine between the vectors of the embedded thumbnail and of the full decode, per real iPhone HEIC."""
    out = {}
    for name in HEIC_SOURCES:
        path = media / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        timings, pictures = [], []
        for thumbnail in (False, True):
            t0 = time.perf_counter()
            decoded = product.decode_image(
                data, min_side=encoder.describe().input_size, max_pixels=10**9, heif_thumbnail=thumbnail
            )
            timings.append((time.perf_counter() - t0) * 1000)
            pictures.append(decoded.image)
        full, fast = encoder.encode_images(pictures)
        out[name] = {
            "cosine": round(float(full @ fast), 6),
            "full_ms": round(timings[0], 1),
            "thumb_ms": round(timings[1], 1),
        }
    return out


# --------------------------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------------------------
def build_store(path: str, vectors, item_ids_base: int = 0):
    """A real database of ``len(vectors)`` photo items, one vector each, written with executemany per 50k."""
    import numpy as np
    from sqlalchemy import insert

    store = product.Store(path)
    now = dt.datetime(2024, 1, 1)
    n = len(vectors)
    with store.engine.begin() as conn:
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            conn.execute(
                insert(product.Item),
                [
                    {
                        "id": i + 1,
                        "path": f"/photos/{(i // 1000):04d}/IMG_{i:07d}.HEIC",
                        "kind": "image",
                        "size": 2_000_000 + i,
                        "mtime_ns": 1_700_000_000_000_000_000 + i,
                        "status": product.ItemStatus.OK,
                        "taken_at": now + dt.timedelta(minutes=i),
                        "width": 4032,
                        "height": 3024,
                        "indexed_at": now,
                    }
                    for i in range(start, stop)
                ],
            )
            conn.execute(
                insert(product.Vector),
                [
                    {"id": i + 1, "item_id": i + 1, "time_ms": None, "embedding": vectors[i].astype("<f4").tobytes()}
                    for i in range(start, stop)
                ],
            )
    ids = np.arange(1, n + 1, dtype=np.int64)
    return store, ids


def peer_search(store_path: str, query, k: int = 20):
    """The peer's method: load every vector from SQLite, stack, matmul, top k, then look the items up."""
    import sqlite3

    import numpy as np

    conn = sqlite3.connect(store_path)
    try:
        rows = conn.execute("SELECT item_id, embedding FROM vectors").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.vstack([np.frombuffer(r[1], dtype="<f4") for r in rows])
        scores = matrix @ query
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        wanted = ",".join(str(int(i)) for i in ids[top])
        conn.execute(f"SELECT id, path FROM items WHERE id IN ({wanted})").fetchall()
    finally:
        conn.close()
    return ids[top]


def measure_size(bench: Bench, encoder, n: int, queries: int, threshold: int) -> dict:
    import numpy as np

    model_facts = encoder.describe()
    dim = model_facts.dim
    args = bench.args
    clusters = max(50, n // 200)
    folder = bench.data_dirs.new(f"ms-bench-q{n}-")
    result: dict = {"items": n, "clusters": clusters}
    log(f"{n} items: generating vectors and the SQLite store ...")
    with bench.phase(f"q{n}:store"):
        t0 = time.perf_counter()
        vectors = clustered(n, dim, clusters)
        store, ids = build_store(str(folder / "materialsearch.db"), vectors)
        result["store_build_s"] = round(time.perf_counter() - t0, 2)
    result["db_mb"] = round(os.path.getsize(folder / "materialsearch.db") / 2**20, 1)
    query_vectors = clustered(max(queries, 20), dim, clusters, draw=1)

    def exact(query, k=10):
        scores = vectors @ query
        top = np.argpartition(-scores, k)[:k]
        return set(ids[top].tolist())

    layouts = {}
    kinds = [("auto", "index (MS_INDEX=auto)")]
    if args.sq8:
        kinds.append(("sq8", "IVF SQ8"))
    for kind, _label in kinds:
        index = product.VectorIndex(
            str(folder / f"index-{kind}.faiss"),
            dim,
            model_facts.identity,
            kind="ivf" if kind == "sq8" else "auto",
            ann_threshold=threshold,
            nprobe=args.nprobe,
            sq8=kind == "sq8",
            background=False,
        )
        log(f"{n} items: building the {kind} index ...")
        with bench.phase(f"q{n}:{kind}:build"):
            t0 = time.perf_counter()
            # As at start-up from the database: exact at once, then the IVF the policy wants (here synchronously).
            index.rebuild(
                (ids[start : start + 100_000], vectors[start : start + 100_000]) for start in range(0, n, 100_000)
            )
            build_s = time.perf_counter() - t0
        hits = 0
        search_only = []
        for query in query_vectors:
            t0 = time.perf_counter()
            _scores, found = index.search(query, 10)
            search_only.append((time.perf_counter() - t0) * 1000)
            hits += len(set(found.tolist()) & exact(query))
        layouts[kind] = {
            "layout": index.layout,
            "build_s": round(build_s, 2),
            "recall_at_10": round(hits / (10 * len(query_vectors)), 4),
            "index_search_ms": percentiles(search_only),
        }
        if kind == "auto":
            auto_index = index
        else:
            del index
    result["indexes"] = layouts

    # exact flat search over the same vectors, for comparison
    flat = product.VectorIndex(str(folder / "flat.faiss"), dim, model_facts.identity, kind="flat")
    flat.add(ids, vectors)
    flat_ms = []
    for query in query_vectors[:10]:
        t0 = time.perf_counter()
        flat.search(query, 10)
        flat_ms.append((time.perf_counter() - t0) * 1000)
    result["flat_search_ms"] = percentiles(flat_ms)
    del flat

    # text queries end to end through the product's search service
    sizes = product.decode_sizes(bench.query_settings, model_facts.input_size)
    service = product.SearchService(
        store, product.VectorSearch(store, auto_index), encoder, 10**9, sizes, queries=bench.query_encoders
    )
    with bench.phase(f"q{n}:text_queries"):
        times = common.time_text_queries(service, queries)
    if set(times["hits"]) != {20}:
        raise SystemExit(f"{n} items: a text query returned other than 20 hits: {times['hits']}")
    result["text_query_ms"] = {
        "total": percentiles(times["total_ms"]),
        "encode": percentiles(times["encode_ms"]),
        "search_and_lookup": percentiles(times["search_ms"]),
    }
    if n == max(args.sizes):
        image_ms = {}
        for label, path in (
            ("jpeg_12mp", next(iter(sorted(bench.sets["jpeg"].iterdir())))),
            ("heic_12mp", bench.sets["heic"] / "IMG_00000.HEIC"),
        ):
            data = path.read_bytes()
            decode, rest = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                product.decode_image(data, min_side=model_facts.input_size, max_pixels=10**9, heif_thumbnail=True)
                t1 = time.perf_counter()
                vector = service.image_vector(data)
                service.search(vector, product.Filters(), product.Page(limit=20))
                t2 = time.perf_counter()
                decode.append((t1 - t0) * 1000)
                rest.append((t2 - t1) * 1000 - decode[-1])  # image_vector decodes again; take that decode out
            image_ms[label] = {"decode": percentiles(decode), "encode_search_lookup": percentiles(rest)}
        result["image_query_ms"] = image_ms
    result["rss_mb_after"] = round(rss_mb()[0], 1)

    # the peer's method on the same database
    peer = []
    for query in query_vectors[: args.peer_queries]:
        t0 = time.perf_counter()
        peer_search(str(folder / "materialsearch.db"), query)
        peer.append((time.perf_counter() - t0) * 1000)
    result["peer_query_ms"] = percentiles(peer)
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    return result


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------
def render(report: dict) -> str:
    lines = []
    cfg = report["config"]
    machine = report["machine"]
    lines.append(f"materialsearch speed benchmark{' (SMOKE)' if report['smoke'] else ''} - {report['when']}")
    lines.append(
        f"model: {cfg['model_desc']}; machine: {machine['nproc']} cores, {machine['cpu']}, native bf16: "
        f"{report['native_bf16']}; batch {cfg['batch_size']}, decode threads {cfg['decode_threads']}"
    )
    lines.append(
        f"photos per set: {cfg['photos']} (jpeg: {cfg['width']}x{cfg['height']} JPEGs; heic: real 12 MP iPhone "
        f"HEICs; mixed: {int(HEIC_SHARE_OF_MIX * 100)}% HEIC + JPEG); default here: {cfg['default_config']}"
    )
    auto = report.get("auto_choice")
    if auto:
        lines.append(f"auto (measured in {auto['wall_s']:.0f} s, export cache warm or not): {auto['chosen']}")
        for m in auto["measurements"]:
            cosine = "-" if m["min_cosine"] is None else f"{m['min_cosine']:.5f}"
            lines.append(
                f"  {m['backend']:>5} {m['precision']:<4} {m['images_per_s']:7.2f} img/s on the probe, cosine "
                f"{cosine}, {m['runs']} runs, load {m['load_s']:.1f} s {m['note']}"
            )
    lines.append("")
    head = (
        f"{'backend':<11} {'model':>7} {'JPEG':>13} {'HEIC':>13} {'mixed':>13} {'100k mixed':>10} "
        f"{'cos img':>8} {'cos txt':>8} {'text ms':>7}"
    )
    lines += ["Indexing: photos/s end to end (ratio to the model alone)", head, "-" * len(head)]
    for row in report["indexing"]:
        scans = row["scans"] or {s: None for s in ("jpeg", "heic", "mixed")}
        cells = [
            f"{scans[s]['photos_per_s']:6.2f} ({scans[s]['ratio_to_model_alone']:.2f})" if scans[s] else "-"
            for s in ("jpeg", "heic", "mixed")
        ]
        hours = f"{scans['mixed']['hours_for_100k']:>8.1f} h" if scans["mixed"] else f"{'-':>10}"
        name = CONFIG_NAMES.get(row["config"], row["config"])
        if row["precision_used"] != row["config"].split(":")[1]:
            name += f"->{row['precision_used']}"
        lines.append(
            f"{name:<11} {row['model_alone_images_per_s']:7.2f} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} "
            f"{hours} {row['fidelity']['image_min_cos']:8.5f} "
            f"{row['fidelity']['text_min_cos']:8.5f} {row['text_encode_ms']['p50']:7.1f}"
        )
        if "heic_full_decode" in scans:
            full = scans["heic_full_decode"]
            lines.append(
                f"{'  HEIC, full decode (MS_HEIC_THUMBNAIL=false)':<46} {full['photos_per_s']:6.2f} "
                f"({full['ratio_to_model_alone']:.2f})"
            )
        for mode in ("scan", "pass"):
            if f"mixed_prelook_{mode}" in scans:
                forced = scans[f"mixed_prelook_{mode}"]
                label = f"  mixed, MS_OCR_PRELOOK={mode}"
                lines.append(
                    f"{label:<46} {forced['photos_per_s']:6.2f} ({forced['ratio_to_model_alone']:.2f}), decode "
                    f"threads {forced['decode_cpu_s_per_photo'] * 1000:.0f} CPU-ms a photo"
                )
    lines.append("cos img / cos txt: worst cosine to torch fp32 on the mixed set's pictures / 16 sentences")
    for row in report["indexing"]:
        if "model_alone_runs_images_per_s" in row:
            before, after = row["model_alone_runs_images_per_s"]
            name = CONFIG_NAMES.get(row["config"], row["config"])
            lines.append(
                f"model alone, {name}: {before:.2f} img/s before the scans, {after:.2f} after (the mean above)"
            )
    cores = machine["nproc"]
    lines.append("")
    head = f"{'backend':<11} {'model':>7} {'JPEG':>13} {'HEIC':>13} {'mixed':>13} {'100k mixed':>10}"
    lines += [
        f"Same runs per CPU-second of this process x {cores} cores (what the machine gives when nothing else runs; "
        "ratio to the model alone in brackets)",
        head,
        "-" * len(head),
    ]
    for row in report["indexing"]:
        scans = row["scans"]
        if not scans:
            continue
        model_rate = row["model_alone_images_per_cpu_s"] * cores
        cells = [
            f"{scans[s]['photos_per_cpu_s'] * cores:6.2f} ({scans[s]['cpu_ratio_to_model_alone'] or 0:.2f})"
            for s in ("jpeg", "heic", "mixed")
        ]
        mixed_rate = scans["mixed"]["photos_per_cpu_s"] * cores
        hours = 100_000 / mixed_rate / 3600 if mixed_rate else float("inf")
        name = CONFIG_NAMES.get(row["config"], row["config"])
        lines.append(f"{name:<11} {model_rate:7.2f} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {hours:>8.1f} h")
    lines.append("")
    lines.append("CPU-seconds per photo in the scans (decode threads / model + SQLite + FAISS), share of the scan the")
    lines.append("model waited for pictures:")
    for row in report["indexing"]:
        for folder, scan in (row["scans"] or {}).items():
            if "decode_cpu_s_per_photo" in scan:
                lines.append(
                    f"  {CONFIG_NAMES.get(row['config'], row['config']):<11} {folder:<17} decode "
                    f"{scan['decode_cpu_s_per_photo'] * 1000:6.0f} ms, model+rest "
                    f"{scan['model_and_rest_cpu_s_per_photo'] * 1000:6.0f} ms, model idle "
                    f"{scan['model_idle_share'] * 100:3.0f} %"
                )
                if scan.get("ocr_prelook"):
                    lines.append(f"  {'':<11} {'':<17} OCR pre-look {scan['ocr_prelook']}")
    fid = report.get("heic_thumbnail_fidelity") or {}
    for name, f in fid.items():
        lines.append(
            f"HEIC thumbnail vs full decode, {name}: cosine {f['cosine']:.6f}, decode {f['thumb_ms']:.0f} ms vs "
            f"{f['full_ms']:.0f} ms"
        )
    lines.append("")
    head = (
        f"{'items':>8} {'index':<22} {'build s':>7} {'recall@10':>9} {'text p50':>8} {'text p99':>8} "
        f"{'search p50':>10} {'search p99':>10} {'flat p50':>8} {'peer p50':>9} {'RSS MiB':>8}"
    )
    lines += [
        f"Text queries, ms (tokenize + encode + search + DB lookup; {cfg['query_backend']})",
        head,
        "-" * len(head),
    ]
    for row in report["queries"]:
        auto = row["indexes"]["auto"]
        layout = auto["layout"]
        label = "flat" if layout["type"] == "flat" else f"IVF{layout['nlist']} nprobe {cfg['nprobe']}"
        q = row["text_query_ms"]
        lines.append(
            f"{row['items']:>8} {label:<22} {auto['build_s']:>7.1f} {auto['recall_at_10']:>9.3f} "
            f"{q['total']['p50']:>8.1f} {q['total']['p99']:>8.1f} {q['search_and_lookup']['p50']:>10.2f} "
            f"{q['search_and_lookup']['p99']:>10.2f} {row['flat_search_ms']['p50']:>8.1f} "
            f"{row['peer_query_ms']['p50']:>9.0f} {row['rss_mb_after']:>8.0f}"
        )
        if "sq8" in row["indexes"]:
            sq8 = row["indexes"]["sq8"]
            lines.append(
                f"{'':>8} {'IVF SQ8 (index only)':<22} {sq8['build_s']:>7.1f} {sq8['recall_at_10']:>9.3f} "
                f"{'':>8} {'':>8} {sq8['index_search_ms']['p50']:>10.2f} {sq8['index_search_ms']['p99']:>10.2f}"
            )
        for label, times in (row.get("image_query_ms") or {}).items():
            lines.append(
                f"{'':>8} image query {label}: decode p50 {times['decode']['p50']:.0f} ms + encode/search/lookup "
                f"p50 {times['encode_search_lookup']['p50']:.0f} ms"
            )
    lines.append("peer = load every vector from SQLite + numpy matmul + top 20 + item lookup, per query")
    video = report.get("video")
    if video:
        lines += ["", bench_video.render(video["rows"], video["interval_s"])]
        if video["long"]:
            lines.append(bench_video.render_long(video["long"]))
    busy = [
        f"{k} {v['others_share_of_machine'] * 100:.0f}%"
        for k, v in report["phases"].items()
        if v["others_share_of_machine"]
    ]
    lines.append(f"other processes' share of the CPU per phase: {', '.join(busy) or 'none measured'}")
    lines.append(f"peak RSS: {report['peak_rss_mb']:.0f} MiB")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--photos", type=int, default=24, help="photos per folder (default 24)")
    parser.add_argument("--width", type=int, default=4032)
    parser.add_argument("--height", type=int, default=3024)
    parser.add_argument("--model", default="vit-b-16", help="vit-b-16 (default, random weights), tiny, or a path")
    parser.add_argument(
        "--configs",
        default="",
        help="backend:precision list (default: torch:fp32,onnx:fp32,onnx:int8, plus torch:bf16 on a CPU with "
        "native bf16); the first is the fidelity reference",
    )
    parser.add_argument("--sizes", default="10000,100000", help="item counts for the query runs")
    parser.add_argument("--million", action="store_true", help="add the 1,000,000-item query run")
    parser.add_argument("--queries", type=int, default=50, help="text queries per size (default 50)")
    parser.add_argument("--peer-queries", type=int, default=3, help="queries with the peer's method (default 3)")
    parser.add_argument(
        "--threshold", type=int, default=0, help="MS_ANN_THRESHOLD for the query runs (default: setting)"
    )
    parser.add_argument("--nprobe", type=int, default=0, help="MS_IVF_NPROBE for the query runs (default: setting)")
    parser.add_argument("--sq8", action="store_true", help="also build an IVF SQ8 index at each size")
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument(
        "--min-scan-rate",
        type=float,
        default=1.0,
        help="skip the scans of a config whose model alone is slower than this many images/s (default 1)",
    )
    parser.add_argument(
        "--compare-prelook",
        action="store_true",
        help="scan the mixed set twice more, with the OCR pre-look in the scan and in the OCR pass",
    )
    parser.add_argument("--skip-indexing", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--interval", type=float, default=2.0, help="video frame interval, s (default 2)")
    parser.add_argument(
        "--long-minutes", type=float, default=None, help="minutes of the long video (default 60; smoke 0)"
    )
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    common.add_place_arguments(parser, "bench_run.json", media=True)
    parser.add_argument("--smoke", action="store_true", help="tiny model, 4 photos, 2k items, 5 queries")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.photos, args.width, args.height = "tiny", 4, 1152, 864
        args.sizes, args.queries, args.peer_queries, args.threshold, args.million = "2000", 5, 1, 1000, False
        args.wait_quiet = 0.0
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    if args.million and 1_000_000 not in args.sizes:
        args.sizes.append(1_000_000)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cache = Path(args.cache).expanduser().resolve()
    bench = Bench(args)
    bench.checkpoint, model_desc = common.ensure_model(cache, args.model)
    defaults = product.Settings.from_env(environ={})
    machine = product.Machine.probe()
    device = product.choose_device(defaults.device, machine)
    default_choice = product.choose_backend(defaults.backend, defaults.precision, device, machine)
    auto_choice = None
    if default_choice is None:  # auto on a CPU: measured, as the product does at its first start
        log("auto: measuring every backend/precision on the probe batch, as the product's first start does ...")
        t0 = time.perf_counter()
        default_choice = product.make_encoder(bench.settings()).choice
        auto_choice = {
            "chosen": f"{default_choice.backend}:{default_choice.precision}",
            "wall_s": round(time.perf_counter() - t0, 1),
            "measure_cost_s": default_choice.measure_cost_s,
            "reason": default_choice.reason,
            "measurements": [dataclasses.asdict(m) for m in default_choice.measurements],
        }
        log(f"auto: {default_choice.reason}")
    args.default_config = f"{default_choice.backend}:{default_choice.precision}"
    configs = [c.strip() for c in args.configs.split(",") if c.strip()] or [
        "torch:fp32",
        "onnx:fp32",
        "onnx:int8",
        *(["torch:bf16"] if machine.native_bf16 else []),
    ]
    if args.smoke:
        configs = ["torch:fp32", "onnx:int8"]
    args.nprobe = args.nprobe or defaults.ivf_nprobe
    threshold = args.threshold or defaults.ann_threshold
    bench.sets = ensure_sets(args, cache)
    report: dict = {
        "schema": SCHEMA,
        "when": common.now_iso(),
        "smoke": args.smoke,
        "machine": common.machine_facts(),
        "native_bf16": machine.native_bf16,
        "auto_choice": auto_choice,
        "config": {
            "model_desc": model_desc,
            "photos": args.photos,
            "width": args.width,
            "height": args.height,
            "configs": configs,
            "default_config": args.default_config,
            "batch_size": args.batch_size or defaults.batch_size,
            "decode_threads": defaults.decode_threads,
            "sizes": args.sizes,
            "nprobe": args.nprobe,
            "ann_threshold": threshold,
        },
        "indexing": [],
        "queries": [],
    }
    try:
        if not args.skip_indexing:
            reference = None
            for key in configs:
                row = measure_config(bench, key, bench.sets, reference)
                if reference is None:
                    reference = row
                report["indexing"].append(row)
            for row in report["indexing"]:
                row.pop("_vectors", None)
            ref_settings = bench.settings(backend="torch", precision="fp32")
            ref_encoder = product.make_encoder(ref_settings)
            report["heic_thumbnail_fidelity"] = heic_thumbnail_fidelity(ref_encoder, Path(args.media))
            del ref_encoder
        if not args.skip_queries:
            bench.query_settings = bench.settings()
            encoder = product.make_encoder(bench.query_settings)  # the default backend for this machine
            encoder.describe()  # loads it
            # As the server runs queries: on the backend ``auto`` chose for each query use, where it chose one.
            bench.query_encoders = product.make_query_encoders(bench.query_settings, encoder)
            sentences = bench.query_encoders.sentences.describe()
            pictures = bench.query_encoders.pictures.describe()
            report["config"]["query_backend"] = (
                f"sentences {sentences.backend} {sentences.precision} "
                f"text tower {sentences.tower_precision[product.Tower.TEXT]}; "
                f"pictures {pictures.backend} {pictures.precision}"
            )
            for n in args.sizes:
                report["queries"].append(measure_size(bench, encoder, n, args.queries, threshold))
                log(f"{n} items: done, RSS {rss_mb()[0]:.0f} MiB")
        else:
            report["config"]["query_backend"] = "skipped"
        if not args.skip_video:
            rows, long_row = bench_video.run_inputs(cache, Path(args.media), bench.checkpoint, args)
            report["video"] = {"interval_s": args.interval, "rows": rows, "long": long_row}
    finally:
        bench.data_dirs.cleanup()
    report["phases"] = bench.phases
    report["peak_rss_mb"] = round(rss_mb()[1], 1)
    common.publish(args.out, "bench_run.json", report, render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

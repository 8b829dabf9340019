#!/usr/bin/env python
"""Duplicate-grouping benchmark: ``duplicates.group_photos`` (FAISS range search proposal + pHash confirmation +
union-find) over synthetic stored vectors with planted near-duplicates, as the product calls it.

The vectors imitate a CLIP library: clusters of related photos (cosine ≈ 0.6-0.8 within a cluster), "same scene"
pairs that the vectors propose (cosine ≈ 0.92-0.96) but whose hashes differ, and planted duplicate groups of 2-4
(cosine ≥ 0.97, hashes a few bits apart). The hashes are synthetic too (no thumbnails): the cost of hashing real
thumbnails is measured separately, per thumbnail, on real photos — it is paid once per file (the hashes are stored).

    .venv/bin/python bench/bench_duplicates.py                 # 100k vectors of 512 dims
    .venv/bin/python bench/bench_duplicates.py --smoke --out /tmp/x   # 3k vectors (seconds)

Prints a table and writes ``<out>/bench_duplicates.json`` (with the load average next to the numbers).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_duplicates.py): import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench import common
from bench import product as duplicates  # the product's duplicate grouping, through bench.product

SMOKE_COUNT = 3000
CLUSTERS_PER_ITEM = 1 / 50  # one cluster of related photos per 50 photos
PLANTED_SHARE = 0.05  # share of photos that are the base of a planted duplicate group
SCENE_SHARE = 0.05  # share of photos with a "same scene, different photo" neighbour


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _near(rng, base: np.ndarray, cosine: float) -> np.ndarray:
    """Unit vectors at about ``cosine`` from each row of ``base``."""
    noise = _unit(rng.standard_normal(base.shape))
    noise -= (noise * base).sum(axis=1, keepdims=True) * base  # orthogonal to the base
    noise = _unit(noise)
    return _unit(cosine * base + np.sqrt(1 - cosine**2) * noise)


def synthetic_library(count: int, dim: int, seed: int = 0):
    """(vectors, hashes, planted groups as sets of rows, same-scene pairs) for ``count`` photos."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((max(1, int(count * CLUSTERS_PER_ITEM)), dim)))
    planted_bases = int(count * PLANTED_SHARE)
    sizes = rng.integers(2, 5, planted_bases)  # 2-4 members each
    copies = int(sizes.sum() - planted_bases)
    scenes = int(count * SCENE_SHARE)
    distinct = count - copies - scenes
    vectors = _near(rng, centres[rng.integers(0, len(centres), distinct)], rng.uniform(0.75, 0.9))
    hashes = [int(h) for h in rng.integers(0, 2**63, distinct, dtype=np.int64)]
    groups: list[set[int]] = []
    extra_vectors, row = [], distinct
    for base, size in enumerate(sizes.tolist()):
        members = {base}
        for _ in range(size - 1):
            extra_vectors.append(_near(rng, vectors[base : base + 1], float(rng.uniform(0.97, 0.999))))
            flips = rng.choice(64, int(rng.integers(0, 5)), replace=False)
            hashes.append(hashes[base] ^ int(sum(1 << int(bit) for bit in flips)))
            members.add(row)
            row += 1
        groups.append(members)
    scene_pairs = []
    for other in rng.choice(np.arange(planted_bases, distinct), scenes, replace=False).tolist():
        extra_vectors.append(_near(rng, vectors[other : other + 1], float(rng.uniform(0.92, 0.96))))
        hashes.append(int(rng.integers(0, 2**63)))  # a different picture: an unrelated hash
        scene_pairs.append((other, row))
        row += 1
    vectors = np.concatenate([vectors, *extra_vectors])
    return vectors, hashes, groups, scene_pairs


def pair_set(groups) -> set[tuple[int, int]]:
    """Every pair of members within each group."""
    return {(a, b) for g in groups for a in g for b in g if a < b}


def thumbnail_hash_ms(media: str, repeats: int = 20) -> float:
    """Milliseconds per pHash of a real photo's thumbnail (256 px JPEG, as the scanner caches them)."""
    from PIL import Image

    source = Path(media) / "jpeg_nikon_d5000_gps.jpeg"  # a real camera photo
    with tempfile.TemporaryDirectory() as tmp:
        thumb = os.path.join(tmp, "t.jpg")
        with Image.open(source) as image:
            image.draft("RGB", (512, 512))
            image = image.convert("RGB")
            image.thumbnail((256, 256))
            image.save(thumb, quality=85)
        duplicates.phash_of_file(thumb)  # imports imagehash/scipy once
        started = time.perf_counter()
        for _ in range(repeats):
            duplicates.phash_of_file(thumb)
        return (time.perf_counter() - started) * 1000 / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="photos (default 100000)")
    parser.add_argument("--dim", type=int, default=512, help="vector length (default 512, ViT-B-16)")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_COUNT} photos: checks it runs")
    common.add_place_arguments(parser, "bench_duplicates.json", media=True)
    args = parser.parse_args(argv)
    count = SMOKE_COUNT if args.smoke else args.count
    load_before = os.getloadavg()
    vectors, hashes, planted, scenes = synthetic_library(count, args.dim)
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)  # item ids = row + 1

    started, cpu_started = time.perf_counter(), time.process_time()
    found, proposed, confirmed = duplicates.group_photos(ids, vectors, lambda item: hashes[item - 1])
    grouping_s = time.perf_counter() - started
    # CPU seconds of all this process's threads: on a machine shared with other work the wall time is inflated,
    # the CPU time much less so (on 2 idle cores, wall ≈ CPU / 2 for the FAISS part).
    grouping_cpu_s = time.process_time() - cpu_started

    found_pairs = pair_set([{i - 1 for i in g} for g in found])
    truth = pair_set(planted)
    true_positive = len(found_pairs & truth)
    precision = true_positive / len(found_pairs) if found_pairs else 1.0
    recall = true_positive / len(truth) if truth else 1.0
    scene_grouped = sum(1 for a, b in scenes if (min(a, b), max(a, b)) in found_pairs)
    exact_groups = sum(1 for g in found if {i - 1 for i in g} in planted)
    hash_ms = thumbnail_hash_ms(args.media)
    report = {
        "when": common.now_iso(),
        "smoke": args.smoke,
        "photos": len(vectors),
        "dim": args.dim,
        "search": "exact" if len(vectors) <= duplicates.EXACT_SEARCH_MAX else "ivf",
        "grouping_s": round(grouping_s, 2),
        "grouping_cpu_s": round(grouping_cpu_s, 2),
        "pairs_proposed": proposed,
        "pairs_confirmed": confirmed,
        "groups_found": len(found),
        "groups_planted": len(planted),
        "groups_exact": exact_groups,
        "pair_precision": round(precision, 4),
        "pair_recall": round(recall, 4),
        "same_scene_pairs": len(scenes),
        "same_scene_grouped": scene_grouped,
        "thumbnail_phash_ms": round(hash_ms, 2),
        "first_run_hashing_s_if_all_proposed": round(hash_ms * len(vectors) / 1000, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "faiss_threads": __import__("faiss").omp_get_max_threads(),
        "machine": {"nproc": os.cpu_count(), "cpu": common.cpu_model()},
    }
    rows = [
        ("photos", report["photos"]),
        ("grouping wall / CPU (s)", f"{grouping_s:.2f} / {grouping_cpu_s:.2f}"),
        ("pairs proposed / confirmed", f"{proposed} / {confirmed}"),
        ("groups found / planted / exact", f"{len(found)} / {len(planted)} / {exact_groups}"),
        ("pair precision / recall", f"{precision:.4f} / {recall:.4f}"),
        ("same-scene pairs grouped", f"{scene_grouped} of {len(scenes)}"),
        ("pHash per thumbnail (ms)", report["thumbnail_phash_ms"]),
        ("load average before / after", f"{load_before[0]:.2f} / {report['load_average_after'][0]:.2f}"),
    ]
    common.publish(args.out, "bench_duplicates.json", report, "\n".join(common.text_table(("", ""), rows, "<>")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

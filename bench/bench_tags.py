"""Tagging the library from its stored vectors, and ``POST /api/classify`` on an item id, at 100k vectors.

    python -m bench.bench_tags                          # ViT-B-16 (random weights), 100k vectors, 83 labels
    python -m bench.bench_tags --smoke --out /tmp/b     # tiny model, 2k vectors (seconds; a test runs it)

A real SQLite store holds ``--vectors`` synthetic clustered unit vectors (``run.clustered``: like CLIP embeddings
of a photo library) of photos and of videos (``--video-share`` of the vectors are frames, 20 per video), opened by
the real app (``create_app``; the index is rebuilt from the store as at start-up). Timed: the tagger's whole
refresh (the labels' prompts through the text tower, every vector read from SQLite, scores, the rule, the tags
written in one transaction), its parts, and classify requests through the Flask test client (5 labels, the first
request encodes them, the others find them cached). Report the load average next to the numbers (it is in the
JSON): the machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_tags.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench.run import build_store, clustered

REPORT = "bench_tags.json"
FRAMES_PER_VIDEO = 20
PLANTED = 0.5  # how strongly an item that shows a label leans towards it (cosine to it rises by ~0.3)
CLASSIFY_LABELS = ["猫", "狗", "海边的日落", "a city at night", "一张收据"]


def add_videos(store, vectors, first_id: int) -> int:
    """Video items of ``FRAMES_PER_VIDEO`` frame vectors each, after the photos; returns how many."""
    from sqlalchemy import insert

    videos = len(vectors) // FRAMES_PER_VIDEO
    now = dt.datetime(2024, 1, 1)
    with store.engine.begin() as conn:
        items = [
            {
                "id": first_id + v,
                "path": f"/videos/VID_{v:06d}.MOV",
                "kind": "video",
                "size": 50_000_000,
                "mtime_ns": 1_700_000_000_000_000_000 + v,
                "status": product.ItemStatus.OK,
                "taken_at": now,
                "indexed_at": now,
                "duration_ms": FRAMES_PER_VIDEO * 2000,
            }
            for v in range(videos)
        ]
        conn.execute(insert(product.Item), items)
        frames = [
            {
                "item_id": first_id + v,
                "time_ms": f * 2000,
                "embedding": vectors[v * FRAMES_PER_VIDEO + f].astype("<f4").tobytes(),
            }
            for v in range(videos)
            for f in range(FRAMES_PER_VIDEO)
        ]
        conn.execute(insert(product.Vector), frames)
    return videos


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_place_arguments(parser, REPORT)
    parser.add_argument("--model", default="vit-b-16", help="vit-b-16 (random weights, default), tiny, or a path")
    parser.add_argument("--vectors", type=int, default=100_000, help="stored vectors (default 100k)")
    parser.add_argument("--video-share", type=float, default=0.05, help="share of the vectors that are frames")
    parser.add_argument("--showing", type=float, default=0.3, help="share of items that clearly show a label")
    parser.add_argument("--requests", type=int, default=100, help="timed classify requests (default 100)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2k vectors, 10 requests")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.vectors, args.requests = "tiny", 2000, 10
    import numpy as np

    create_app, label_vectors, services_of = product.create_app, product.label_vectors, product.services_of

    model, what = common.ensure_model(Path(args.cache), args.model)
    report: dict = {"machine": common.machine_facts(), "model": what, "made_at": common.now_iso()}
    report["load_before"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-tags-") as tmp:
        settings = product.Settings.from_env(
            environ={}, data_dir=str(Path(tmp) / "data"), model=str(model), backend="torch", precision="fp32"
        )
        services_of(create_app(settings)).close()  # a database that records this model
        app = create_app(settings)
        services = services_of(app)
        dim = services.encoder.describe().dim
        frames = int(args.vectors * args.video_share) // FRAMES_PER_VIDEO * FRAMES_PER_VIDEO
        vectors = clustered(args.vectors, dim, clusters=max(10, args.vectors // 500))
        # A share of the items shows one label clearly (its direction mixed in), so tags are written as in a real
        # library, where many items get one to three.
        labels = label_vectors(services.encoder, services.tagger.labels)
        rng = np.random.default_rng(1)
        showing = rng.random(len(vectors)) < args.showing
        vectors[showing] += PLANTED * labels[rng.integers(0, len(labels), int(showing.sum()))]
        vectors = product.normalise(vectors)
        services.close()
        store, _ids = build_store(str(Path(tmp) / "data" / "materialsearch.db"), vectors[: args.vectors - frames])
        videos = add_videos(store, vectors[args.vectors - frames :], args.vectors - frames + 1)
        store.close()
        app = create_app(settings)  # opens the store as at start-up (the index is rebuilt from the vectors)
        services = services_of(app)
        tagger = services.tagger
        report["library"] = {"vectors": args.vectors, "photos": args.vectors - frames, "videos": videos}
        report["labels"] = len(tagger.labels)

        started, cpu = time.perf_counter(), time.process_time()
        assert tagger.refresh(force=True)
        report["tagging_s"] = round(time.perf_counter() - started, 3)
        report["tagging_cpu_s"] = round(time.process_time() - cpu, 3)  # all threads of this process
        parts: dict = {}

        def part(name, fn):
            started, cpu = time.perf_counter(), time.process_time()
            result = fn()
            parts[name] = {
                "wall_s": round(time.perf_counter() - started, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
            }
            return result

        owners, stored = part("read_vectors", tagger._stored_vectors)
        assigned = part("compute_with_cached_labels", tagger.compute)
        part("write", lambda: tagger._write(assigned, tagger._state()))
        part("second_refresh", lambda: tagger.refresh(force=True))
        report["tagging_parts"] = parts
        report["tags_written"] = len(assigned.item_ids)
        report["tagged_items"] = len(set(assigned.item_ids.tolist()))
        del owners, stored

        client = app.test_client()
        rng = np.random.default_rng(0)
        item_ids = rng.integers(1, args.vectors - frames + videos, args.requests + 1)
        times, cpu_times = [], []
        for i, item_id in enumerate(item_ids):
            started, cpu = time.perf_counter(), time.process_time()
            response = client.post("/api/classify", json={"labels": CLASSIFY_LABELS, "item_id": int(item_id)})
            elapsed = (time.perf_counter() - started) * 1000
            cpu_times.append((time.process_time() - cpu) * 1000)
            assert response.status_code == 200, response.get_json()
            if i == 0:
                report["classify_first_ms"] = round(elapsed, 2)  # the labels are encoded
            else:
                times.append(elapsed)
        report["classify_ms"] = common.percentiles(times, (50, 95, 99))
        report["classify_cpu_ms"] = common.percentiles(cpu_times[1:], (50, 95, 99))
        report["classify_requests"] = len(times)
        services.close()
    report["load_after"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    common.log(json.dumps({k: v for k, v in report.items() if k != "machine"}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

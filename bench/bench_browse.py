"""Browsing benchmark: the timeline's first and deep pages at 1M items, and what narrowing a search costs.

    .venv/bin/python bench/bench_browse.py                  # timeline over 1M items; searches over 100k x 512-d
    .venv/bin/python bench/bench_browse.py --smoke          # 3k items, 2k x 64-d vectors, 5 queries (seconds)
    .venv/bin/python bench/bench_browse.py --items 200000 --vectors 1000000 --queries 20

One process, in this order, so ratios compare like with like:
  timeline   a real SQLite file of ``--items`` photo rows (the product's schema, capture times spread at random
             over ten years): ``timeline_page`` newest first — the first page, and a page at item 90 % deep from
             its keyset cursor — against the OFFSET query the same page would need without a cursor
  search     ``--vectors`` clustered unit vectors like CLIP embeddings (``bench.run.clustered``) in a real store
             and the product's ``VectorIndex`` (exact): ``SearchService.search`` per query vector plain (score
             order, every match), with ``match=good``, with stacks, with both, and in date order (good matches)
The load average is read before and after each part: on a shared machine compare the ratios of one run.
Results go to ``<out>/bench_browse.json``; the timeline database is cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_browse.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import product
from bench.common import add_place_arguments, log, now_iso, percentiles, publish, text_table
from bench.run import build_store, clustered

TEN_YEARS_S = 10 * 365 * 86400
PAGE = 100  # items per timeline page (a screenful or three of thumbnails)


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def timeline_db(cache: Path, items: int) -> Path:
    """A cached database of ``items`` photos whose capture times are spread at random over ten years."""
    path = cache / f"browse-timeline-{items}" / "materialsearch.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the timeline database of {items} items (once)")
    store, _ids = build_store(str(path), clustered(items, 8, 16))  # the timeline never reads the vectors
    with store.engine.begin() as conn:
        conn.exec_driver_sql(  # the product's DateTime text format, so keyset comparisons are exact
            "UPDATE items SET taken_at = strftime('%Y-%m-%d %H:%M:%S.000000', '2015-01-01', "
            f"'+' || (abs(random()) % {TEN_YEARS_S}) || ' seconds')"
        )
    store.close()
    return path


def bench_timeline(path: Path, repeats: int) -> dict:
    """First page and a 90 %-deep page by keyset cursor, and the same deep page by OFFSET."""
    Sort, encode_cursor, timeline_page = product.Sort, product.encode_cursor, product.timeline_page
    store = product.Store(str(path))
    filters = product.Filters()
    total = store.counts().images
    depth = int(total * 0.9)
    with store.engine.connect() as conn:
        taken, item_id = conn.exec_driver_sql(
            "SELECT taken_at, id FROM items WHERE status = 'ok' ORDER BY taken_at DESC, id DESC LIMIT 1 OFFSET ?",
            (depth - 1,),
        ).one()
    cursor = encode_cursor(Sort.DATE_DESC, (dt.datetime.fromisoformat(taken), item_id))
    first, deep, offset = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        page = timeline_page(store, filters, Sort.DATE_DESC, PAGE, None)
        first.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        deep_page = timeline_page(store, filters, Sort.DATE_DESC, PAGE, cursor)
        deep.append((time.perf_counter() - started) * 1000)
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    item = product.Item
    by_offset_query = (
        select(item)
        .where(item.status == product.ItemStatus.OK)
        .order_by(item.taken_at.desc(), item.id.desc())
        .limit(PAGE)
        .offset(depth)
    )
    for _ in range(max(1, repeats // 5)):  # the same rows as the same ORM objects, found by skipping
        started = time.perf_counter()
        with Session(store.engine) as session:
            by_offset = list(session.scalars(by_offset_query))
        offset.append((time.perf_counter() - started) * 1000)
    assert [i.id for i in deep_page.items] == [i.id for i in by_offset], "keyset and OFFSET disagree"
    assert len(page.items) == PAGE and deep_page.next_cursor
    store.close()
    return {
        "items": total,
        "deep_position": depth,
        "first_page_ms": percentiles(first),
        "deep_page_ms": percentiles(deep),
        "offset_deep_page_ms": percentiles(offset),
    }


def bench_search(tmp: Path, vectors: int, dim: int, queries: int) -> dict:
    """Per-query cost of each narrowing over the same vectors and queries."""
    Match, Narrowing, QueryKind, Sort = product.Match, product.Narrowing, product.QueryKind, product.Sort
    data = clustered(vectors, dim, max(16, vectors // 500))
    store, ids = build_store(str(tmp / "materialsearch.db"), data)
    index = product.VectorIndex(str(tmp / "index.faiss"), dim, "bench", kind="flat", background=False)
    index.add(ids, data)
    search = product.SearchService(store, product.VectorSearch(store, index), None, 10**8, {}, 0.95)
    probes = clustered(queries, dim, max(16, vectors // 500), draw=1)
    page = product.Page(limit=40)
    variants = {
        "plain": Narrowing(),
        "good": Narrowing(match=Match.GOOD, kind=QueryKind.IMAGE),
        "stack": Narrowing(stack=True),
        "good+stack": Narrowing(match=Match.GOOD, stack=True, kind=QueryKind.IMAGE),
        "date_desc (good)": Narrowing(sort=Sort.DATE_DESC, kind=QueryKind.IMAGE),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    kept: dict[str, list[int]] = {name: [] for name in variants}
    search.search(probes[0], product.Filters(), page, narrowing=variants["good"])  # warm: the library sample
    for probe in probes:
        for name, narrowing in variants.items():  # interleaved: a load spike hits every variant alike
            started = time.perf_counter()
            result = search.search(probe, product.Filters(), page, narrowing=narrowing)
            times[name].append((time.perf_counter() - started) * 1000)
            kept[name].append(result.total)
    store.close()
    plain = percentiles(times["plain"])["p50"]
    return {
        "vectors": vectors,
        "dim": dim,
        "queries": queries,
        "variants": {
            name: {
                "ms": percentiles(samples),
                "vs_plain": round(percentiles(samples)["p50"] / plain, 2) if plain else None,
                "median_total": sorted(kept[name])[len(kept[name]) // 2],
            }
            for name, samples in times.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000, help="timeline rows (default 1M)")
    parser.add_argument("--vectors", type=int, default=100_000, help="vectors searched (default 100k)")
    parser.add_argument("--dim", type=int, default=512, help="vector length (default 512, ViT-B-16)")
    parser.add_argument("--queries", type=int, default=30, help="query vectors per search variant")
    parser.add_argument("--repeats", type=int, default=30, help="timeline page reads per measurement")
    parser.add_argument("--smoke", action="store_true", help="3k items, 2k x 64-d vectors, 5 queries")
    add_place_arguments(parser, "bench_browse.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.items, args.vectors, args.dim, args.queries, args.repeats = 3000, 2000, 64, 5, 5

    report: dict = {"made": now_iso(), "args": vars(args)}
    path = timeline_db(Path(args.cache), args.items)
    report["load_before_timeline"] = load()
    report["timeline"] = bench_timeline(path, args.repeats)
    report["load_before_search"] = load()
    with tempfile.TemporaryDirectory(prefix="bench-browse-") as tmp:
        report["search"] = bench_search(Path(tmp), args.vectors, args.dim, args.queries)
    report["load_after"] = load()
    timeline = report["timeline"]
    lines = [f"timeline over {timeline['items']} items (load {report['load_before_timeline']})", ""]
    lines += text_table(
        ["page", "p50 ms", "p99 ms"],
        [
            ["first page", timeline["first_page_ms"]["p50"], timeline["first_page_ms"]["p99"]],
            [
                f"at {timeline['deep_position']} (cursor)",
                timeline["deep_page_ms"]["p50"],
                timeline["deep_page_ms"]["p99"],
            ],
            [f"at {timeline['deep_position']} (OFFSET)", *(timeline["offset_deep_page_ms"][k] for k in ("p50", "p99"))],
        ],
        "<>>",
    )
    search = report["search"]
    lines += ["", f"search over {search['vectors']} x {search['dim']}-d (load {report['load_before_search']})", ""]
    lines += text_table(
        ["variant", "p50 ms", "p99 ms", "x plain", "median total"],
        [
            [name, row["ms"]["p50"], row["ms"]["p99"], row["vs_plain"], row["median_total"]]
            for name, row in search["variants"].items()
        ],
        "<>>>>",
    )
    lines.append(f"\nload after: {report['load_after']}")
    publish(args.out, "bench_browse.json", report, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

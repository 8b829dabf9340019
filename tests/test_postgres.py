"""The catalog on PostgreSQL + pgvector (``MS_DATABASE_URL``) answers as the SQLite + FAISS catalog does.

The shared media is scanned once into each engine with the tiny model through the product's real scan (the SQLite
side is the session's scan, ``media_app``), then the faces pass, the tags and the same OCR lines (written through
the catalog's OCR store) go into both, and the API is asked the same questions on both: sentences with filters
(kind, dates, place, tag, text, person, hidden duplicates), timeline pages, similar-to-item. Same items in the same
order, scores within 1e-4. The server is a real PostgreSQL 18 with pgvector 0.8.6 (``postgres`` in conftest).
"""

from __future__ import annotations

import numpy as np
import pytest

from materialsearch.ocr.engine import OcrLine
from tests.conftest import settings_on

SENTENCES = ["a red bus in the street", "一只猫", "people on a beach", "document with text", "sunset over the sea"]
FILTERS = [
    {},
    {"kind": "image"},
    {"kind": "video"},
    {"date_from": "2015-01-01", "date_to": "2022-12-31"},
    {"place": "London"},
    {"name": "jpg"},
    {"path": "faces_"},
    {"limit": 5, "offset": 3},
]
# Lines "read" in a few photos (written through the catalog's OCR store on both engines, as the OCR pass writes).
OCR_LINES = {
    "ocr_ad_zh_en_numbers.jpg": ["限时优惠 50% OFF", "电话 400-123-4567"],
    "ocr_english_page.jpg": ["The quick brown fox", "jumps over the lazy dog"],
    "ocr_document_photo_zh.jpeg": ["发票 金额 128元", "优惠券"],
    "ocr_gym_sign_phone_numbers.jpg": ["GYM OPEN 24 HOURS", "call 400 888"],
}


def _with_lines(services) -> None:
    """The same OCR outcome stored for the same photos (matched by file name) through ``OcrStore.write``."""
    from materialsearch.catalog.text import OcrRead

    jobs = {job.path.rsplit("/", 1)[-1]: job for job in services.ocr_store.waiting(0, 10_000)}
    reads = [
        OcrRead(
            jobs[name], [OcrLine(text, (0.1, 0.1 + i / 10, 0.9, 0.15 + i / 10), 0.99) for i, text in enumerate(lines)]
        )
        for name, lines in OCR_LINES.items()
    ]
    assert services.ocr_store.write(reads) == len(reads)


# Tags on a few photos (by file-name prefix), written through the catalog's tag rows as the tagger writes them: the
# tiny random model's own tags (computed too, alike on both) may be none on this library.
TAGGED = {"beach": "jpg_", "document": "ocr_", "sunset": "heic_"}


def _prepare(services) -> None:
    services.faces.run()
    assert services.tagger.refresh()
    items = services.store.get_items(range(1, 1000)).values()
    rows = [
        (item.id, tag, 3.0) for tag, prefix in TAGGED.items() for item in items if _name(item.path).startswith(prefix)
    ]
    services.store.tags.replace_all(rows, "test_tags", "written by the test")
    _with_lines(services)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def engines(media_app, postgres, tiny_model, tmp_path_factory, media_dir):
    """(SQLite client, PostgreSQL client): the shared media scanned into each, prepared alike."""
    from materialsearch.web import create_app, services_of

    sqlite_app = media_app()
    # The backend the SQLite side measured and chose, forced here: measuring again under load could pick another,
    # whose vectors differ in the last bits and reorder near-ties.
    model = services_of(sqlite_app).encoder.describe()
    pg_app = create_app(
        settings_on(
            tmp_path_factory.mktemp("pg") / "data",
            tiny_model,
            library=str(media_dir),
            database_url=postgres(),
            backend=model.backend,
            precision=model.precision,
        )
    )
    # The same query encoders on both sides too: `auto` also times each backend at batch 1 for query sentences and
    # pictures, and with the tiny model those timings are within noise, so the SQLite side may encode sentences on
    # another backend than its scan (int8 against fp32 sentence vectors reorder near-ties). The catalogs are what
    # is compared here. (Seen once in a `--cpu avx512_bf16` pass: four tests of this module failed together.)
    services_of(pg_app).search.queries = services_of(sqlite_app).search.queries
    try:
        assert services_of(pg_app).store.postgres and not services_of(sqlite_app).store.postgres
        services_of(pg_app).scans.run()
        for app in (sqlite_app, pg_app):
            _prepare(services_of(app))
        yield sqlite_app.test_client(), pg_app.test_client()
    finally:
        services_of(pg_app).close()


def _same(sqlite_answer: dict, pg_answer: dict, where: str) -> int:
    """Same items in the same order, scores within 1e-4, same total; returns how many results were compared."""

    def key(hit):
        return (hit["path"], hit.get("start"))

    lite, pg = sqlite_answer["results"], pg_answer["results"]
    assert [key(h) for h in pg] == [key(h) for h in lite], where
    for a, b in zip(lite, pg, strict=True):
        assert b["score"] == pytest.approx(a["score"], abs=1e-4), where
    assert pg_answer["total"] == sqlite_answer["total"], where
    return len(lite)


def _ask(client, url: str, params: dict) -> dict:
    response = client.get(url, query_string=params)
    assert response.status_code == 200, (url, params, response.get_json())
    return response.get_json()


def test_the_same_searches_give_the_same_answers(engines):
    lite, pg = engines
    compared = 0
    for sentence in SENTENCES:
        for filters in FILTERS:
            params = {"q": sentence, "parse": "false", **filters}
            compared += _same(_ask(lite, "/api/search", params), _ask(pg, "/api/search", params), params)
        # The sentence read as one (dates, places, kinds in it become filters) reads alike on both.
        compared += _same(
            _ask(lite, "/api/search", {"q": sentence}), _ask(pg, "/api/search", {"q": sentence}), sentence
        )
    assert compared > 200  # hundreds of ranked results, not empty pages


def test_tags_people_text_and_places_filter_alike(engines):
    lite, pg = engines
    tags = [tag["key"] for tag in _ask(lite, "/api/tags", {})["tags"] if tag.get("count")]
    assert set(tags) == set(TAGGED)
    assert [t["key"] for t in _ask(pg, "/api/tags", {})["tags"] if t.get("count")] == tags
    people = _ask(lite, "/api/people", {})["people"]
    assert people, "the faces pass found people in the shared media"
    assert [(p["face_count"], p["item_count"]) for p in _ask(pg, "/api/people", {})["people"]] == [
        (p["face_count"], p["item_count"]) for p in people
    ]
    pg_people = _ask(pg, "/api/people", {})["people"]
    questions = [{"q": "a photo", "tag": tag} for tag in tags[:3]]
    questions += [{"q": "a face", "person": lp["id"]} for lp in people[:2]]
    questions += [{"text": "优惠"}, {"text": "quick fox"}, {"text": "400"}, {"text": "发票", "kind": "image"}]
    questions += [{"q": "gym", "parse": "false"}]  # the text side of q= (fusion)
    for params in questions:
        other = dict(params)
        if "person" in params:  # the same person on each side (ids are each engine's own)
            index = [p["id"] for p in people].index(params["person"])
            other["person"] = pg_people[index]["id"]
        lite_answer, pg_answer = _ask(lite, "/api/search", params), _ask(pg, "/api/search", other)
        if "text" in params and "q" not in params:
            # Which photos match is the same; the text rank (FTS5 bm25, pg_trgm similarity) may order them apart.
            assert sorted(h["path"] for h in pg_answer["results"]) == sorted(
                h["path"] for h in lite_answer["results"]
            ), params
            assert lite_answer["results"], params
        else:
            _same(lite_answer, pg_answer, params)
    assert _ask(pg, "/api/places", {}) == _ask(lite, "/api/places", {})


def test_timeline_pages_and_similar_items_agree(engines):
    lite, pg = engines
    for params in ({"limit": 7}, {"limit": 7, "sort": "date_asc"}, {"limit": 5, "kind": "video"}):
        lite_cursor = pg_cursor = None
        for _ in range(20):
            page_l = _ask(lite, "/api/items", {**params, **({"cursor": lite_cursor} if lite_cursor else {})})
            page_p = _ask(pg, "/api/items", {**params, **({"cursor": pg_cursor} if pg_cursor else {})})
            assert [i["path"] for i in page_p["results"]] == [i["path"] for i in page_l["results"]], params
            lite_cursor, pg_cursor = page_l.get("next_cursor"), page_p.get("next_cursor")
            if not lite_cursor:
                assert not pg_cursor
                break
    by_path = {i["path"]: i["id"] for i in _ask(pg, "/api/items", {"limit": 200})["results"]}
    for item in _ask(lite, "/api/items", {"limit": 200})["results"][:6]:
        _same(
            _ask(lite, "/api/search", {"like": item["id"]}),
            _ask(pg, "/api/search", {"like": by_path[item["path"]]}),
            item["path"],
        )


def test_duplicates_and_hidden_items_agree(engines):
    lite, pg = engines
    groups_l, groups_p = _ask(lite, "/api/duplicates", {}), _ask(pg, "/api/duplicates", {})
    assert groups_l["total"] > 0, "the shared media holds duplicates"

    def members(groups):
        return [[member["path"] for member in group["items"]] for group in groups["groups"]]

    assert members(groups_p) == members(groups_l)
    # Hide each group's others on both sides: the searches leave them out alike.
    for client, groups in ((lite, groups_l), (pg, groups_p)):
        others = [i for group in groups["groups"] for i in group["ids"][1:]]
        assert client.post("/api/hidden", json={"ids": others}).status_code == 200
    for sentence in SENTENCES[:2]:
        params = {"q": sentence, "parse": "false"}
        _same(_ask(lite, "/api/search", params), _ask(pg, "/api/search", params), params)
    assert _ask(pg, "/api/status", {})["index"]["vectors"] == _ask(lite, "/api/status", {})["index"]["vectors"]


def _clustered(n: int, dim: int, seed: int, draw: int = 0) -> np.ndarray:
    """Unit vectors in 50 clusters inside a shared cone, like CLIP embeddings of a library (``bench.run.clustered``);
    ``draw`` gives other points around the same centres (queries)."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    centres = common * 0.8 / np.linalg.norm(common) + rng.normal(size=(50, dim)) / np.sqrt(dim)
    rng = np.random.default_rng([seed, draw])
    points = centres[rng.integers(0, 50, n)] + rng.normal(size=(n, dim)) * (0.5 / np.sqrt(dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_an_hnsw_index_answers_filtered_searches_in_one_statement(postgres):
    """Past the threshold the catalog builds an HNSW index and the planner uses it; every filtered search gets its k
    results whichever plan the planner picks for it (the HNSW scan with the filters checked as it goes, iterative
    past ef_search, or filtering first and ranking the rest exactly), best first, near the exact answer (recall@10
    ≥ 0.9; the bench measures it at 100k)."""
    import datetime as dt

    from sqlalchemy import event

    from materialsearch.catalog.core import Catalog
    from materialsearch.catalog.filters import Filters
    from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
    from materialsearch.catalog.store import Store

    dim, n = 64, 3000
    vectors = _clustered(n, dim, seed=1)
    store = Store(postgres())
    try:
        records = [
            ItemRecord(
                path=f"/library/{i:05d}.jpg",
                kind=Kind.IMAGE,
                size=3_000_000_000 + i,  # past 32 bits: sizes and mtimes are 64-bit on PostgreSQL too
                mtime_ns=1_700_000_000_000_000_000 + i,
                status=ItemStatus.OK,
                taken_at=dt.datetime(2020, 1, 1) + dt.timedelta(hours=i),
                place_country="FR" if i % 20 == 0 else "GB",
                vectors=[(None, vectors[i])],
            )
            for i in range(n)
        ]
        catalog = Catalog(store, Catalog.vector_index("", dim, "test|model", _Layout(ann_threshold=2000), store))
        catalog.open()
        assert catalog.index.layout == {"type": "flat"}  # nothing yet: exact
        for start in range(0, n, 500):
            catalog.apply(records[start : start + 500])
        assert catalog.index.wait_for_build(120) and catalog.index.layout == {"type": "hnsw"}, catalog.index.build_error
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        # At 3000 small vectors a sequential scan is cheaper and the planner takes it; at library scale it takes
        # the index by itself (bench/bench_postgres.py). Told to prefer indexes, these connections show the HNSW
        # path: the index scan with the filters, iterative past ef_search.
        event.listen(store.engine, "connect", _prefer_indexes)
        store.engine.dispose()
        by_id = dict(zip(*_ids_and_rows(store), strict=True))
        queries = _clustered(30, dim, seed=1, draw=1)
        plans = {}
        for filters, passing in (
            (Filters(), lambda i: True),
            (Filters(place="France"), lambda i: i % 20 == 0),
            (Filters(date_from=dt.datetime(2020, 2, 1), date_to=dt.datetime(2020, 3, 1)), lambda i: 744 <= i <= 1440),
            (Filters(date_from=dt.datetime(2020, 1, 1) + dt.timedelta(hours=1500)), lambda i: i >= 1500),
        ):
            rows = np.array([i for i in range(n) if passing(i)])
            # The planner weighs the HNSW scan (filters checked as it goes) against filtering first and ranking
            # the few rows left exactly; either way it is one statement.
            plans[filters] = catalog.index.index_name in _plan(store, catalog, queries[0], filters)
            hits = 0
            for query in queries:
                found = catalog.vectors.knn(query, 10, filters)
                assert len(found) == 10, filters  # a filter keeping 5% does not starve the index scan
                assert all(passing(by_id[int(v)]) for v in found.ids), filters
                exact = rows[np.argsort(-(vectors[rows] @ query))[:10]]
                hits += len({by_id[int(v)] for v in found.ids} & set(exact.tolist()))
                assert np.all(np.diff(found.scores) <= 1e-6)  # best first
            assert hits / (10 * len(queries)) >= 0.9, (filters, hits)
        assert plans[Filters()] and sum(plans.values()) >= 2, plans  # the index answers, with a filter too
        # Opened again (a restart, another instance): the index is found, not built again.
        again = Catalog.vector_index("", dim, "test|model", _Layout(ann_threshold=2000), store)
        assert again.load(store.vector_checksum()) and again.layout == {"type": "hnsw"} and not again.building
    finally:
        store.close()


class _Layout:
    """The index settings ``Catalog.vector_index`` reads."""

    def __init__(self, ann_threshold: int):
        self.index_kind, self.ann_threshold, self.ivf_nprobe, self.index_sq8 = "auto", ann_threshold, 32, False
        self.pg_index_memory_mb = 512


def _ids_and_rows(store) -> tuple[list[int], list[int]]:
    """Vector ids and the row each came from (the item's path number)."""
    with store.engine.connect() as conn:
        pairs = conn.exec_driver_sql("SELECT v.id, i.path FROM vectors v JOIN items i ON i.id = v.item_id").all()
    return [p[0] for p in pairs], [int(p[1].rsplit("/", 1)[1][:5]) for p in pairs]


def _prefer_indexes(dbapi_connection, _record) -> None:
    dbapi_connection.execute("SET enable_seqscan = off")
    dbapi_connection.commit()


def _plan(store, catalog, query, filters) -> str:
    """The plan PostgreSQL makes for the catalog's nearest-neighbour statement."""
    statement = catalog.vectors.knn_statement(query, 10, filters)
    from materialsearch.catalog.schema import VectorBinary

    with store.engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"render_postcompile": True})
        params = {
            name: VectorBinary.of(np.frombuffer(value, "<f4")) if isinstance(value, bytes) else value
            for name, value in compiled.params.items()
        }
        rows = conn.connection.driver_connection.execute(f"EXPLAIN {compiled}", params).fetchall()
        return "\n".join(row[0] for row in rows)


def test_one_owner_per_catalog_across_instances(postgres, tiny_model, tmp_path, media_dir):
    """Two instances on one PostgreSQL catalog (each with its own data dir, as on two hosts): the first owns it
    (scans, schedules), the second only searches — everything the first commits, at once — and names the owner;
    when the first closes, the next one owns."""
    import shutil

    from materialsearch.catalog.filters import Filters
    from materialsearch.services import Services

    library = tmp_path / "library"
    library.mkdir()
    for path in sorted(media_dir.glob("jpg_orient*.jpg")):
        shutil.copy(path, library / path.name)
    url = postgres()
    first = Services(settings_on(tmp_path / "a", tiny_model, database_url=url, library=str(library)))
    try:
        second = Services(settings_on(tmp_path / "b", tiny_model, database_url=url, library=str(library)))
        try:
            assert first.owner and not second.owner
            assert "materialsearch" in second.scans.refusal and "pid" in second.scans.refusal, second.scans.refusal
            before = second.catalog.version()
            assert second.catalog.vectors.count(Filters()) == 0
            first.scans.run()
            scanned = first.store.counts().images
            assert scanned >= 5
            assert second.catalog.version() != before  # its caches see the other instance's commit
            assert second.catalog.vectors.count(Filters()) == scanned
            query = second.search.text_vector("a photo")
            assert len(second.catalog.vectors.knn(query, 50, Filters(kind="image"))) == scanned
        finally:
            second.close()
    finally:
        first.close()
    third = Services(settings_on(tmp_path / "c", tiny_model, database_url=url))
    try:
        assert third.owner
    finally:
        third.close()


def test_schema_versions_and_an_unreachable_server(postgres, tiny_model, tmp_path):
    from sqlalchemy import text

    from materialsearch.catalog import postgres as pg
    from materialsearch.catalog.migrations import SchemaError
    from materialsearch.catalog.store import Store

    url = postgres()
    Store(url).close()
    store = Store(url)  # opened again: nothing to do
    try:
        with store.engine.begin() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == pg.VERSION
            conn.execute(text("UPDATE schema_version SET version = :v"), {"v": pg.VERSION + 1})
    finally:
        store.close()
    with pytest.raises(SchemaError, match="newer release"):
        Store(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pg, "START_WAIT_S", 1.0)  # waited for (2 min by default), then refused with the reason
        with pytest.raises(SchemaError, match="cannot use the catalog's database"):
            Store("postgresql://postgres@127.0.0.1:1/nowhere")


def test_a_start_waits_for_a_database_that_is_still_starting(postgres):
    """compose starts the database and the app together: the catalog opens once the server answers."""
    import threading

    from materialsearch.catalog.store import Store

    url = postgres()
    postgres.stop()
    threading.Timer(3.0, postgres.start).start()
    store = Store(url)  # waits: 0.5 s, 1 s, 2 s, … until the server is back
    try:
        assert store.counts().images == 0
    finally:
        store.close()


def test_a_scan_outlives_a_database_restart(postgres, tiny_model, tmp_path, media_dir, caplog):
    """The server goes away mid-scan (stopped after the first batches are committed, back 3 s later): the batch in
    flight is written again once it answers, the scan finishes, every file is embedded once, none marked failed."""
    import logging
    import shutil
    import threading

    from materialsearch.services import Services

    library = tmp_path / "library"
    library.mkdir()
    names = sorted(p.name for p in media_dir.glob("jpg_orient*.jpg")) + sorted(
        p.name for p in media_dir.glob("faces_obama_*.jpg")
    )
    for name in names:
        shutil.copy(media_dir / name, library / name)
    url = postgres()
    settings = settings_on(tmp_path / "data", tiny_model, library=str(library), database_url=url, batch_size=2)
    services = Services(settings)
    stopped = []

    def on_progress(_progress) -> None:
        if not stopped and services.store.counts().images >= 2:
            postgres.stop()
            stopped.append(True)
            threading.Timer(3.0, postgres.start).start()

    try:
        with caplog.at_level(logging.WARNING, logger="materialsearch.catalog.postgres"):
            services.scans.run(on_progress)
        assert stopped, "the server was stopped mid-scan"
        assert any("lost the catalog's database" in record.getMessage() for record in caplog.records)
        counts = services.store.counts()
        assert (counts.images, counts.errors, counts.pending) == (len(names), 0, 0)
        assert services.store.vector_checksum()[0] == len(names)  # each file embedded once
    finally:
        services.close()


def test_whether_videos_or_hidden_items_exist_follows_every_commit_on_postgresql_too(postgres):
    """Every search asks both and keeps the answer until the next commit (the LISTEN watch): another process's
    commit must reach it."""
    from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
    from materialsearch.catalog.store import Store

    url = postgres()
    searching, writing = Store(url), Store(url)  # two engines and watches, as two processes
    try:
        assert not searching.has_videos() and not searching.duplicates.has_hidden()
        writing.write_batch([ItemRecord("/l/v.mov", Kind.VIDEO, 5, 5, ItemStatus.OK)])
        assert searching.has_videos()
        video_id = writing.file_states()["/l/v.mov"].id
        writing.duplicates.hide([video_id])
        assert searching.duplicates.has_hidden()
        writing.duplicates.unhide([video_id])
        writing.delete_items([video_id])
        assert not searching.has_videos() and not searching.duplicates.has_hidden()
    finally:
        searching.close()
        writing.close()

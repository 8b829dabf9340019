"""The timeline (``GET /api/items``): keyset pages in capture-time order over a real store and a real scan."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
from materialsearch.catalog.store import Filters, Store
from materialsearch.catalog.timeline import CursorError, Sort, decode_cursor, encode_cursor, timeline_page

DAY = dt.datetime(2024, 6, 1, 12, 0)


def record(
    n: int, taken_at: dt.datetime | None, kind: Kind = Kind.IMAGE, status: ItemStatus = ItemStatus.OK
) -> ItemRecord:
    vector = np.zeros(8, np.float32)
    vector[n % 8] = 1
    vectors = [(None, vector)] if status == ItemStatus.OK else []
    return ItemRecord(f"/lib/{n:03d}.jpg", kind, 1, 1, status, taken_at=taken_at, vectors=vectors)


@pytest.fixture
def store(tmp_path):
    opened = Store(str(tmp_path / "s.db"))
    yield opened
    opened.close()


def walk(store, sort: Sort, limit: int, filters: Filters | None = None) -> list[int]:
    filters = filters or Filters()
    ids, cursor = [], None
    while True:
        page = timeline_page(store, filters, sort, limit, cursor)
        ids += [item.id for item in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_pages_follow_capture_time_with_ties_by_id_and_undated_items_last(store):
    # Two items share a capture time, two have none, one failed (never listed).
    times = [DAY, DAY + dt.timedelta(days=1), DAY, None, DAY - dt.timedelta(days=3), None]
    store.write_batch([record(n, t) for n, t in enumerate(times)] + [record(9, DAY, status=ItemStatus.ERROR)])
    rows = sorted(store.get_items(range(1, 8)).values(), key=lambda item: item.id)
    dated = sorted((r for r in rows if r.taken_at and r.status == ItemStatus.OK), key=lambda r: (r.taken_at, r.id))
    undated = [r.id for r in rows if r.taken_at is None]
    newest = [r.id for r in reversed(dated)] + sorted(undated, reverse=True)
    for limit in (1, 2, 3, 10):
        assert walk(store, Sort.DATE_DESC, limit) == newest
        assert walk(store, Sort.DATE_ASC, limit) == newest[::-1]


def test_a_scan_adding_items_meanwhile_repeats_and_skips_nothing_after_the_cursor(store):
    store.write_batch([record(n, DAY + dt.timedelta(hours=n)) for n in range(10)])
    first = timeline_page(store, Filters(), Sort.DATE_DESC, 4, None)
    # Newer than everything shown (before the cursor), and older (after it): only the older one is still to come.
    store.write_batch([record(50, DAY + dt.timedelta(days=9)), record(51, DAY - dt.timedelta(days=9))])
    rest = []
    cursor = first.next_cursor
    while cursor:
        page = timeline_page(store, Filters(), Sort.DATE_DESC, 4, cursor)
        rest += page.items
        cursor = page.next_cursor
    shown = [item.path for item in first.items + rest]
    assert len(shown) == len(set(shown)) == 11
    assert shown[-1] == "/lib/051.jpg" and "/lib/050.jpg" not in shown


def test_filters_apply_to_the_timeline(store):
    store.write_batch(
        [record(n, DAY + dt.timedelta(days=n), kind=Kind.VIDEO if n % 2 else Kind.IMAGE) for n in range(6)]
    )
    videos = walk(store, Sort.DATE_DESC, 2, Filters(kind=Kind.VIDEO))
    assert [store.get_item(i).kind for i in videos] == ["video"] * 3
    window = Filters(date_from=DAY + dt.timedelta(days=1), date_to=DAY + dt.timedelta(days=3))
    assert [store.get_item(i).path for i in walk(store, Sort.DATE_ASC, 2, window)] == [
        "/lib/001.jpg",
        "/lib/002.jpg",
        "/lib/003.jpg",
    ]
    assert walk(store, Sort.DATE_ASC, 2, Filters(name_contains="004")) == [5]
    assert walk(store, Sort.DATE_ASC, 2, Filters(name_contains="lib")) == []  # a folder is not a name


def test_cursors_are_opaque_and_checked():
    position = (DAY, 42)
    cursor = encode_cursor(Sort.DATE_ASC, position)
    assert decode_cursor(Sort.DATE_ASC, cursor) == position
    assert decode_cursor(Sort.DATE_DESC, encode_cursor(Sort.DATE_DESC, (None, 7))) == (None, 7)
    with pytest.raises(CursorError, match="sort=date_asc"):
        decode_cursor(Sort.DATE_DESC, cursor)
    for bad in ("", "!!!", "bm90IGpzb24", encode_cursor(Sort.DATE_ASC, position)[:-3]):
        with pytest.raises(CursorError):
            decode_cursor(Sort.DATE_ASC, bad)


def test_the_deep_page_query_uses_the_timeline_index(store):
    store.write_batch([record(n, DAY + dt.timedelta(minutes=n)) for n in range(5)])
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        plan = raw.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM items WHERE status = 'ok' AND taken_at IS NOT NULL "
            "AND (taken_at, id) < ('2024-06-01 12:03:00.000000', 4) ORDER BY taken_at DESC, id DESC LIMIT 10"
        ).fetchall()
    details = " ".join(row[-1] for row in plan)
    assert "ix_items_status_taken_at" in details and "TEMP B-TREE" not in details, details


# --- the API ------------------------------------------------------------------------------------------------------
# ``client``: the API of an app over the shared media (conftest).
def test_api_items_lists_every_indexed_item_newest_first(client):
    counts = client.get("/api/status").get_json()["counts"]
    seen, cursor = [], None
    while True:
        body = client.get("/api/items", query_string={"limit": 7, **({"cursor": cursor} if cursor else {})}).json
        assert set(body) == {"results", "next_cursor"}
        seen += body["results"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == counts["images"] + counts["videos"] == len({r["id"] for r in seen})
    dates = [r["taken_at"] for r in seen]
    assert all(dates) and dates == sorted(dates, reverse=True)
    assert {"thumbnail_url", "file_url", "view_url", "kind"} <= set(seen[0])
    oldest = client.get("/api/items", query_string={"sort": "date_asc", "limit": 500}).json["results"]
    assert [r["taken_at"] for r in oldest] == sorted(dates)


def test_api_items_filters_and_bad_input(client):
    videos = client.get("/api/items?kind=video&limit=500").json["results"]
    assert videos and {r["kind"] for r in videos} == {"video"}
    heic = client.get("/api/items?name=.heic&limit=500").json["results"]
    assert heic and all(r["name"].lower().endswith(".heic") for r in heic)
    cursor = client.get("/api/items?limit=1").json["next_cursor"]
    for url, named in {
        "/api/items?sort=score": "sort",
        "/api/items?cursor=nonsense": "cursor",
        f"/api/items?sort=date_asc&cursor={cursor}": "sort=date_desc",
        "/api/items?limit=0": "limit",
        "/api/items?date_from=2024-02-01&date_to=2024-01-01": "date_from",
    }.items():
        response = client.get(url)
        assert response.status_code == 400 and named in response.json["message"], (url, response.json)

"""Narrowed searches end to end (Flask client, real store, FAISS and the tiny cn_clip model): good matches, date
order, exclusions and name search on a library whose scores are constructed, and stacks of real copies."""

from __future__ import annotations

import datetime as dt
import io
import shutil

import numpy as np
import pytest

from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
from materialsearch.web import services_of
from tests.conftest import MEDIA

DAY = dt.datetime(2023, 3, 1, 9, 0)
BACKGROUND = 200


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@pytest.fixture(scope="module")
def constructed(scanned_app, tmp_path_factory):
    """An app whose items have constructed vectors: an anchor Q (``like`` queries), background items scoring
    uniformly in [-0.2, 0.2] against Q and against the text "a dog", four good matches of Q (0.7) and three that
    also look like a dog (0.7 against Q, 0.6 against the dog)."""
    app = scanned_app(tmp_path_factory.mktemp("empty"))
    services = services_of(app)
    dog = services.search.text_vector("a dog")
    rng = np.random.default_rng(0)
    query = rng.normal(size=dog.shape)
    query = unit(query - (query @ dog) * dog)

    def vector(a: float, b: float) -> np.ndarray:
        rest = rng.normal(size=dog.shape)
        rest -= (rest @ query) * query + (rest @ dog) * dog
        return unit(a * query + b * dog + np.sqrt(max(0.0, 1 - a * a - b * b)) * unit(rest))

    groups = {"anchor": [(1.0, 0.0)], "good": [(0.7, 0.0)] * 4, "dog": [(0.7, 0.6)] * 3}
    levels = np.linspace(-0.2, 0.2, BACKGROUND)
    groups["background"] = list(zip(rng.permutation(levels), rng.permutation(levels), strict=True))
    records, n = [], 0
    for group, pairs in groups.items():
        for a, b in pairs:
            taken = DAY + dt.timedelta(days=int(rng.integers(0, 300)), minutes=n)
            path = f"/lib/{group}/{group}_{n:03d}.jpg"
            vectors = [(None, vector(a, b))]
            records.append(ItemRecord(path, Kind.IMAGE, 1, 1, ItemStatus.OK, taken_at=taken, vectors=vectors))
            n += 1
    services.catalog.apply(records)
    ids = {item.path: item.id for item in services.store.get_items(range(1, n + 1)).values()}
    return app.test_client(), ids


def search(client, **params):
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 200, response.json
    return response.json


def group_of(result) -> str:
    return result["path"].split("/")[2]


def test_good_matches_are_what_stands_out_and_more_says_how_many_are_left(constructed):
    client, ids = constructed
    anchor = ids["/lib/anchor/anchor_000.jpg"]
    good = search(client, like=anchor, match="good", limit=50)
    assert sorted(group_of(r) for r in good["results"]) == ["dog"] * 3 + ["good"] * 4
    assert good["total"] == 7 and good["more"] == BACKGROUND
    everything = search(client, like=anchor, match="all", limit=500)
    assert everything["total"] == BACKGROUND + 7 and "more" not in everything  # scripts see what they always did
    assert {r["id"] for r in everything["results"][:7]} == {r["id"] for r in good["results"]}  # tied at 0.7


def test_a_date_order_returns_the_good_matches_by_capture_time(constructed):
    client, ids = constructed
    anchor = ids["/lib/anchor/anchor_000.jpg"]
    newest = search(client, like=anchor, sort="date_desc", limit=50)["results"]
    assert len(newest) == 7 and {group_of(r) for r in newest} == {"good", "dog"}
    assert [r["taken_at"] for r in newest] == sorted((r["taken_at"] for r in newest), reverse=True)
    oldest = search(client, like=anchor, sort="date_asc", limit=50)["results"]
    assert [r["id"] for r in oldest] == [r["id"] for r in reversed(newest)]
    every = search(client, like=anchor, sort="date_desc", match="all", limit=500)
    assert every["total"] == BACKGROUND + 7
    assert [r["taken_at"] for r in every["results"]] == sorted((r["taken_at"] for r in every["results"]), reverse=True)
    paged = search(client, like=anchor, sort="date_desc", limit=3, offset=3)["results"]
    assert [r["id"] for r in paged] == [r["id"] for r in newest[3:6]]


def test_exclude_drops_the_look_alikes_of_the_excluded_text_only(constructed):
    client, ids = constructed
    anchor = ids["/lib/anchor/anchor_000.jpg"]
    kept = search(client, like=anchor, match="good", exclude="a dog", limit=50)["results"]
    assert sorted(group_of(r) for r in kept) == ["good"] * 4
    everything = search(client, like=anchor, exclude="a dog", limit=500)
    assert everything["total"] == BACKGROUND + 4  # the background does not look like a dog: nothing else goes
    # Several exclusions (a blank one is ignored): the anchor-like ones go too.
    twice = client.get(f"/api/search?like={anchor}&exclude=a+dog&exclude=&exclude=a+cat&limit=500").json
    assert twice["total"] <= BACKGROUND + 4
    assert client.get(f"/api/search?like={anchor}" + "&exclude=x" * 11).status_code == 400


def test_name_and_path_alone_search_by_keyword_ranked_by_match_quality(constructed):
    client, _ids = constructed
    body = search(client, name="good_00", limit=50)
    assert {r["name"] for r in body["results"]} == {"good_001.jpg", "good_002.jpg", "good_003.jpg", "good_004.jpg"}
    assert all(r["score"] == pytest.approx(0.75) for r in body["results"])  # a prefix of each name
    exact = search(client, name="dog_005")
    assert [r["name"] for r in exact["results"]] == ["dog_005.jpg"] and exact["results"][0]["score"] == 1.0
    folder = search(client, path="dog", limit=50)
    assert folder["total"] == 3 and {group_of(r) for r in folder["results"]} == {"dog"}
    by_date = search(client, path="good", sort="date_asc")["results"]
    assert [r["taken_at"] for r in by_date] == sorted(r["taken_at"] for r in by_date)
    # With a query, the name only filters and the ranking is by similarity.
    combined = search(client, q="a dog", name="dog_", limit=50)
    assert combined["total"] == 3 and all(-1 <= r["score"] <= 1 for r in combined["results"])
    assert search(client, name="zzz-nothing")["results"] == []


# --- stacks of real copies ----------------------------------------------------------------------------------------
COPIES = 20


@pytest.fixture(scope="module")
def copies(scanned_app, tmp_path_factory):
    library = tmp_path_factory.mktemp("copies")
    (library / "copies").mkdir()
    for n in range(COPIES):
        shutil.copy2(MEDIA / "jpg_orient1.jpg", library / "copies" / f"copy_{n:02d}.jpg")
    for name in ["webp_lossy_photo.webp", "png_rgba_transparent.png", "jpeg_nikon_d5000_gps.jpeg", "jpg_cmyk.jpg"]:
        shutil.copy2(MEDIA / name, library / name)
    return scanned_app(library).test_client()


def test_an_image_search_form_takes_several_exclusions(copies):
    picture = (MEDIA / "jpg_orient1.jpg").read_bytes()
    form = {"image": (io.BytesIO(picture), "q.jpg"), "exclude": ["a cat", "a dog"], "match": "all"}
    assert copies.post("/api/search", data=form).status_code == 200
    too_many = {"image": (io.BytesIO(picture), "q.jpg"), "exclude": [f"x{n}" for n in range(11)]}
    response = copies.post("/api/search", data=too_many)
    assert response.status_code == 400 and "exclude" in response.json["message"]


def test_twenty_byte_identical_copies_come_back_as_one_stack_of_twenty(copies):
    picture = (MEDIA / "jpg_orient1.jpg").read_bytes()
    body = copies.post("/api/search", data={"image": (io.BytesIO(picture), "q.jpg")}).json
    first = body["results"][0]
    assert first["stack_size"] == COPIES and first["name"].startswith("copy_")
    assert body["total"] == 1 + 4 and all(r["stack_size"] == 1 for r in body["results"][1:])
    members = copies.get(first["stack_url"]).json["results"]
    assert len(members) == COPIES and members[0]["id"] == first["id"]
    assert {m["name"] for m in members} == {f"copy_{n:02d}.jpg" for n in range(COPIES)}
    text = copies.get("/api/search?q=a+photo&limit=50").json
    assert sorted(r["stack_size"] for r in text["results"]) == [1, 1, 1, 1, COPIES]
    assert "stack_url" not in next(r for r in text["results"] if r["stack_size"] == 1)


def test_stack_false_lists_every_copy(copies):
    body = copies.get("/api/search?q=a+photo&stack=false&limit=50").json
    assert body["total"] == COPIES + 4 and {r["stack_size"] for r in body["results"]} == {1}
    by_name = copies.get("/api/search?name=copy&limit=50").json
    assert [r["stack_size"] for r in by_name["results"]] == [COPIES]
    assert len(copies.get("/api/search?name=copy&stack=false&limit=50").json["results"]) == COPIES


def test_stack_route_applies_filters_and_404s(copies):
    first = copies.get("/api/search?name=copy_00").json["results"][0]
    assert len(copies.get(f"/api/items/{first['id']}/stack?name=copy_1").json["results"]) == 1 + 10
    assert copies.get("/api/items/999999/stack").status_code == 404

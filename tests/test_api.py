"""The REST API through Flask's test client, on a real scan of real files with the tiny cn_clip model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from materialsearch.web import services_of
from tests.conftest import MEDIA, VIDEO_EXTENSIONS, manifest

# ``client`` (conftest): the API of an app over the shared media, module-wide.


def search(client, **params):
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 200, response.json
    return response.json


def test_text_search_returns_cosine_scores_and_urls(client):
    body = search(client, q="海边的日落", limit=5)
    assert len(body["results"]) == 5 and body["total"] >= 25
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    first = body["results"][0]
    assert set(first) >= {"id", "path", "kind", "score", "taken_at", "width", "height", "thumbnail_url", "file_url"}
    assert first["path"].startswith(str(MEDIA))
    assert client.get(first["thumbnail_url"]).status_code == 200
    assert isinstance(body["took_ms"], float)


def test_score_is_the_cosine_with_the_query_vector(client):
    services = services_of(client.application)
    body = search(client, q="a red car in the snow", limit=3)
    query = services.search.text_vector("a red car in the snow")
    for result in body["results"]:
        stored = services.store.item_vectors(result["id"])[0]
        assert result["score"] == pytest.approx(float(stored @ query), abs=1e-5)


def test_a_sentence_is_encoded_once_for_its_pages_and_recent_ones_are_kept(client, monkeypatch):
    from materialsearch.search import service as search_module

    services = services_of(client.application)
    encoder, calls = services.encoder, []
    real = encoder.encode_texts

    def counting(texts):
        calls.append(list(texts))
        return real(texts)

    monkeypatch.setattr(encoder, "encode_texts", counting)
    monkeypatch.setattr(search_module, "TEXT_VECTORS_KEPT", 2)
    fresh = real(["缓存测试：海边的灯塔和一只猫"])[0]
    for offset in (0, 5, 10):  # the pages of one search, and its count
        search(client, q="缓存测试：海边的灯塔和一只猫", limit=5, offset=offset)
    assert calls == [["缓存测试：海边的灯塔和一只猫"]]
    vector = services.search.text_vector(" 缓存测试：海边的灯塔和一只猫 ")  # the same sentence, as typed
    assert np.array_equal(vector, fresh) and calls == [["缓存测试：海边的灯塔和一只猫"]]
    vector[:] = 0  # a caller changing its copy does not change the kept one
    assert np.array_equal(services.search.text_vector("缓存测试：海边的灯塔和一只猫"), fresh)
    services.search.text_vector("caching test: a dog on a red sofa")
    services.search.text_vector("caching test: a cat in the snow")  # past the two kept: the least recently used goes
    services.search.text_vector("缓存测试：海边的灯塔和一只猫")
    assert calls[-1] == ["缓存测试：海边的灯塔和一只猫"] and len(calls) == 4


def test_pagination_is_consistent(client):
    whole = search(client, q="photo", limit=20)["results"]
    first = search(client, q="photo", limit=10)["results"]
    second = search(client, q="photo", limit=10, offset=10)["results"]

    def key(r):
        return r["id"], r.get("start")  # a video can give several moments

    assert [key(r) for r in first + second] == [key(r) for r in whole]


def test_filters(client):
    by_path = search(client, q="photo", path="orient", limit=50)
    assert by_path["results"] and all("orient" in r["path"] for r in by_path["results"])
    assert by_path["total"] == len(by_path["results"])
    dated = search(client, q="photo", date_from="2021-01-01", date_to="2021-12-31", limit=50)["results"]
    assert dated and all(r["taken_at"].startswith("2021") for r in dated)
    videos = search(client, q="photo", kind="video", limit=50)["results"]
    assert videos and all(r["kind"] == "video" and r["start"] <= r["time"] <= r["end"] for r in videos)
    images = search(client, q="photo", kind="image", limit=100)["results"]
    assert images and all(r["kind"] == "image" and "start" not in r for r in images)
    high = search(client, q="photo", min_score=0.0, limit=50)
    assert all(r["score"] >= 0.0 for r in high["results"]) and high["total"] == len(high["results"])


def test_image_upload_finds_itself_first(client):
    data = (MEDIA / "jpg_orient6.jpg").read_bytes()
    response = client.post("/api/search", data={"image": (io.BytesIO(data), "query.jpg")})
    assert response.status_code == 200
    first = response.json["results"][0]
    assert first["name"] == "jpg_orient6.jpg" and first["score"] == pytest.approx(1.0, abs=1e-4)


def test_heic_upload_and_combined_text(client):
    data = (MEDIA / "heic_iphone12pro_orient6_irot_gps.heic").read_bytes()
    response = client.post("/api/search", data={"image": (io.BytesIO(data), "q.heic"), "q": "汽车", "limit": "3"})
    assert response.status_code == 200 and len(response.json["results"]) == 3


def test_like_returns_similar_items_without_itself(client):
    first = search(client, q="photo", limit=1)["results"][0]
    similar = search(client, like=first["id"], limit=5)["results"]
    assert len(similar) == 5 and first["id"] not in [r["id"] for r in similar]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "  "},
        {"q": "x", "limit": "0"},
        {"q": "x", "limit": "100000"},
        {"q": "x", "limit": "ten"},
        {"q": "x", "offset": "-1"},
        {"q": "x", "date_from": "yesterday"},
        {"q": "x", "kind": "audio"},
        {"q": "x", "min_score": "2"},
        {"q": "x", "min_score": "nan-ish"},
        {"like": "abc"},
        {"q": "x", "like": "1"},
        {"q": "x", "date_from": "2022-01-01", "date_to": "2021-01-01"},
    ],
)
def test_bad_search_requests_are_400_with_a_message(client, params):
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 400, response.json
    assert response.json["message"]


def test_bad_uploads_are_4xx(client):
    assert client.post("/api/search", data={}).status_code == 400
    text = client.post("/api/search", data={"image": (io.BytesIO(b"hello"), "x.jpg")})
    assert text.status_code == 400 and "not a usable image" in text.json["message"]
    bomb = (MEDIA / "bomb_jpg_lottapixel.jpg").read_bytes()
    refused = client.post("/api/search", data={"image": (io.BytesIO(bomb), "x.jpg")})
    assert refused.status_code == 400 and "bomb" in refused.json["message"]
    big = client.post("/api/search", data={"image": (io.BytesIO(b"0" * (33 * 1024 * 1024)), "x.jpg")})
    assert big.status_code == 413 and big.is_json


def test_items_files_and_missing_ids(client):
    first = search(client, q="photo", limit=1)["results"][0]
    detail = client.get(f"/api/items/{first['id']}")
    assert detail.status_code == 200 and detail.json["path"] == first["path"]
    original = client.get(first["file_url"])
    assert original.status_code == 200 and original.data == Path(first["path"]).read_bytes()
    ranged = client.get(first["file_url"], headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.data) == 10
    for url in ["/api/items/999999", "/api/items/999999/file", "/api/items/999999/thumbnail", "/api/items/x/file"]:
        response = client.get(url)
        assert response.status_code == 404 and response.is_json


def test_errored_items_are_not_served(client):
    errors = client.get("/api/errors").json["errors"]
    assert errors and all(e["reason"] for e in errors)
    assert client.get(f"/api/items/{errors[0]['id']}/file").status_code == 404


def test_heic_gets_a_jpeg_preview_and_thumbnail(client):
    results = search(client, q="car", path="iphone12pro", limit=1)["results"]
    item = results[0]
    assert "/preview" in item["view_url"]
    preview = client.get(item["view_url"])
    assert preview.status_code == 200 and preview.mimetype == "image/jpeg"
    from PIL import Image

    image = Image.open(io.BytesIO(preview.data))
    assert image.height > image.width  # upright portrait, rotated exactly once


def test_status_errors_and_health(client):
    rows = manifest()
    broken = sum(r["decodes_ok"] != "yes" for r in rows)
    videos = sum(
        r["decodes_ok"] == "yes" and r["kind"] != "mov-livephoto" and Path(r["file"]).suffix.lower() in VIDEO_EXTENSIONS
        for r in rows
    )
    status = client.get("/api/status").json
    assert status["counts"]["images"] >= 25 and status["counts"]["errors"] == broken
    assert status["counts"]["videos"] == videos and status["counts"]["live_photos"] == 1
    frames = status["index"]["vectors"] - status["counts"]["images"]
    assert status["model"]["dim"] == 64 and frames >= status["counts"]["videos"]  # one vector or more per video
    assert status["model"]["backend"] in {"torch", "onnx"} and status["model"]["precision"] in {"fp32", "int8", "bf16"}
    assert status["index"]["layout"] == "flat" and status["index"]["building"] is False  # 50k+ vectors go IVF
    assert status["scan"]["state"] == "idle" and status["scan"]["last"]["summary"]
    assert client.get("/healthz").status_code == 200
    errors = client.get("/api/errors?limit=2")
    assert errors.json["total"] == broken and len(errors.json["errors"]) == 2


def test_scan_endpoint_starts_once(client, monkeypatch):
    import threading

    services = services_of(client.application)
    release, entered = threading.Event(), threading.Event()
    real_scan = services.scanner.scan

    def held_scan(*args, **kwargs):
        entered.set()
        release.wait(10)  # hold the real scan open so a second request arrives while it runs
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(services.scanner, "scan", held_scan)
    first = client.post("/api/scan")
    assert first.status_code == 202 and entered.wait(5)
    assert client.get("/api/status").json["scan"]["state"] == "scanning"
    second = client.post("/api/scan")
    release.set()
    services.scans.wait(30)
    assert second.status_code == 409 and "already running" in second.json["message"]
    assert client.get("/api/status").json["scan"]["last"]["stats"]["unchanged"] >= 30


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/nope")
    assert response.status_code == 404 and json.loads(response.data)["status"] == 404
    assert client.delete("/api/search").status_code == 405


def test_limit_defaults_to_the_page_size_and_form_fields_may_come_in_the_query(client):
    settings = services_of(client.application).settings
    body = search(client, q="photo")
    assert len(body["results"]) == min(body["total"], settings.page_size)
    data = (MEDIA / "jpg_orient6.jpg").read_bytes()
    response = client.post("/api/search?limit=2", data={"image": (io.BytesIO(data), "query.jpg")})
    assert response.status_code == 200 and len(response.json["results"]) == 2


def test_a_response_that_breaks_its_model_is_a_json_500(client, monkeypatch):
    """A route answering with something its declaration does not allow is a bug, reported like other bugs."""
    from flask import jsonify

    from materialsearch.web import library_api

    monkeypatch.setattr(library_api, "error_response", lambda status, message, **_: (jsonify(oops=message), status))
    response = client.post("/api/scan/pause")
    assert response.status_code == 500 and response.json["status"] == 500
    assert "does not match its declared model" in response.json["message"]


def test_photos_and_videos_have_only_their_own_fields(client):
    results = search(client, q="photo", limit=100)["results"]
    photo = next(r for r in results if r["kind"] == "image")
    video = next(r for r in results if r["kind"] == "video")
    assert {"live", "motion_photo", "motion_url"} <= set(photo) and not {"duration", "playable"} & set(photo)
    assert {"duration", "playable", "play_url", "start", "end", "clip_url"} <= set(video)
    assert not {"live", "motion_url"} & set(video) and "reindexing" not in search(client, q="x")


@pytest.mark.parametrize("script_root", ["", "/photos"])
def test_item_urls_are_what_url_for_gives_behind_a_prefix_too(client, script_root):
    """Result pages build item URLs from a per-request template (``item_url``): the same strings as ``url_for``,
    including an app mounted under a path by a reverse proxy (``SCRIPT_NAME``)."""
    from flask import url_for

    from materialsearch.web.item_models import item_url

    calls = [
        ("api.item_file", 7, {}),
        ("api.item_thumbnail", 123, {"v": "0123abcdef45"}),
        ("api.item_thumbnail", 9, {"t": 2000, "v": "0123abcdef45"}),
        ("api.item_preview", 55, {"v": "ffffffffffff"}),
        ("api.item_motion", 3, {"v": "a1"}),
        ("api.item_stream", 3, {"v": "a1"}),
        ("api.item_stack", 42, {}),
        ("api.item_clip", 5, {"start": "1.5", "end": "12"}),
    ]
    base_url = f"http://localhost{script_root}"
    with client.application.test_request_context("/api/search", base_url=base_url):
        for endpoint, item_id, query in calls * 2:  # the second round from the request's templates
            expected = url_for(endpoint, item_id=item_id, **query)
            assert item_url(endpoint, item_id, **query) == expected
            assert expected.startswith(f"{script_root}/")

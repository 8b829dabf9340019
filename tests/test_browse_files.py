"""Folders, downloads and the item info panel, over a real scanned library (tiny cn_clip model)."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest

from materialsearch.catalog.folders import folder_tree
from tests.conftest import MEDIA

LAYOUT = {
    "jpg_orient1.jpg": "2024/summer",
    "jpeg_nikon_d5000_gps.jpeg": "2024/summer",
    "heic_iphone12pro_orient6_irot_gps.heic": "2024/winter",
    "webp_lossy_photo.webp": "2023",
    "png_rgba_transparent.png": "",
    "bad_jpg_is_text.jpg": "2023",  # not indexed: not counted
    "livephoto_iphone6s_train.jpg": "live",
    "livephoto_iphone6s_train.mov": "live",
    "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV": "2024",
}


@pytest.fixture(scope="module")
def app(scanned_app, tmp_path_factory):
    library = tmp_path_factory.mktemp("files") / "library"
    for name, folder in LAYOUT.items():
        (library / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(MEDIA / name, library / folder / name)
    (library / "2023" / "same").mkdir()
    shutil.copy2(MEDIA / "jpg_orient1.jpg", library / "2023" / "same" / "jpg_orient1.jpg")  # a second of that name
    return scanned_app(library)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def ids_by_name(client) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for item in client.get("/api/items?limit=500").json["results"]:
        found.setdefault(item["name"], []).append(item["id"])
    return found


def test_folder_tree_counts_indexed_items_cumulatively(client, app):
    roots = client.get("/api/folders").json["roots"]
    assert len(roots) == 1
    root = roots[0]
    assert root["path"] == "" and root["prefix"].endswith("/library/")
    assert root["count"] == 8  # every indexed photo and video (the Live Photo movie belongs to its still)
    children = {child["name"]: child for child in root["children"]}
    assert sorted(children) == ["2023", "2024", "live"]
    year = children["2024"]
    assert year["count"] == 4 and year["path"] == "2024"
    assert {c["name"]: c["count"] for c in year["children"]} == {"summer": 2, "winter": 1}
    assert children["2023"]["count"] == 2 and children["2023"]["children"][0]["path"] == "2023/same"
    # The prefix is what the path filter takes.
    summer = next(c for c in year["children"] if c["name"] == "summer")
    assert len(client.get("/api/items", query_string={"path": summer["prefix"]}).json["results"]) == 2


def test_folder_tree_of_nested_and_foreign_roots():
    counts = {"/a": 1, "/a/b": 2, "/a/b/c": 3, "/a/x": 4, "/elsewhere": 9}
    outer, inner = folder_tree(counts, ["/a", "/a/b/"])
    assert (outer.count, inner.count) == (5, 5)
    assert list(outer.children) == ["x"] and inner.children["c"].path == "c" and inner.prefix == "/a/b/"


def test_download_zips_exactly_those_originals(client, app):
    ids = ids_by_name(client)
    chosen = [ids["jpeg_nikon_d5000_gps.jpeg"][0], ids["webp_lossy_photo.webp"][0], *ids["jpg_orient1.jpg"]]
    response = client.post("/api/download", json={"ids": chosen + chosen[:1]})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.testzip() is None
    assert archive.namelist() == [
        "jpeg_nikon_d5000_gps.jpeg",
        "webp_lossy_photo.webp",
        "jpg_orient1.jpg",
        "jpg_orient1 (2).jpg",
    ]
    for name in archive.namelist():
        original = MEDIA / name.replace(" (2)", "")
        assert archive.read(name) == original.read_bytes(), name


def test_a_form_post_downloads_the_same_zip_and_a_refusal_is_a_page(client):
    """The page submits a form so that the browser saves the stream itself (issue 23 #5): the same zip as the
    JSON request; a refused form goes back to the page (which says so), not to JSON the user cannot read."""
    ids = ids_by_name(client)
    chosen = [ids["jpeg_nikon_d5000_gps.jpeg"][0], ids["webp_lossy_photo.webp"][0]]
    as_form = client.post("/api/download", data={"ids": ",".join(map(str, chosen))})
    zipped = as_form.get_data()  # the stream read to its end (it holds the request until then)
    as_json = client.post("/api/download", json={"ids": chosen})
    as_json.get_data()
    assert as_form.status_code == 200 and as_form.mimetype == "application/zip"
    assert as_form.headers["Content-Disposition"] == as_json.headers["Content-Disposition"]
    assert zipfile.ZipFile(io.BytesIO(zipped)).namelist() == [
        "jpeg_nikon_d5000_gps.jpeg",
        "webp_lossy_photo.webp",
    ]
    refused = client.post("/api/download", data={"ids": f"{chosen[0]},999999"})
    assert refused.status_code == 303 and refused.headers["Location"] == "/?download=refused"
    assert client.post("/api/download", data={"ids": "a,b"}).status_code == 400


def test_a_live_photo_downloads_with_its_movie(client):
    still = ids_by_name(client)["livephoto_iphone6s_train.jpg"][0]
    archive = zipfile.ZipFile(io.BytesIO(client.post("/api/download", json={"ids": [still]}).get_data()))
    assert archive.namelist() == ["livephoto_iphone6s_train.jpg", "livephoto_iphone6s_train.mov"]
    assert archive.read("livephoto_iphone6s_train.mov") == (MEDIA / "livephoto_iphone6s_train.mov").read_bytes()


def test_bad_downloads_are_4xx_with_a_message(client, app):
    from materialsearch.web import services_of

    known = ids_by_name(client)["webp_lossy_photo.webp"][0]
    errored = next(i.id for i in services_of(app).store.problems(10, 0)[0])
    cases = [
        (400, "ids", {"ids": []}),
        (400, "ids.0", {"ids": ["a"]}),
        (400, "ids", {"paths": ["/etc/passwd"]}),
        (404, "999999", {"ids": [known, 999999]}),
        (404, str(errored), {"ids": [errored]}),
    ]
    for status, named, body in cases:
        response = client.post("/api/download", json=body)
        assert response.status_code == status and named in response.json["message"], (body, response.json)
    assert client.post("/api/download", data="not json", content_type="application/json").status_code == 400


def test_download_count_is_bounded_by_the_setting(make_app):
    client = make_app(max_download_items=2).test_client()
    response = client.post("/api/download", json={"ids": [1, 2, 3]})
    assert response.status_code == 400 and "MS_MAX_DOWNLOAD_ITEMS" in response.json["message"]


def test_item_detail_info_reads_exif_and_video_facts(client):
    ids = ids_by_name(client)
    nikon = client.get(f"/api/items/{ids['jpeg_nikon_d5000_gps.jpeg'][0]}").json
    info = nikon["info"]
    assert info["camera_make"] == "NIKON CORPORATION" and info["camera_model"] == "NIKON D5000"
    assert (info["f_number"], info["iso"], info["focal_length"]) == (13.0, 200, 44.0)
    assert info["exposure_time"] == pytest.approx(1 / 640, rel=0.01)
    assert info["latitude"] == pytest.approx(46.898, abs=0.01) and info["longitude"] == pytest.approx(102.769, abs=0.01)
    assert (info["width"], info["height"]) == (nikon["width"], nikon["height"])
    assert info["file_size"] == (MEDIA / "jpeg_nikon_d5000_gps.jpeg").stat().st_size
    heic = client.get(f"/api/items/{ids['heic_iphone12pro_orient6_irot_gps.heic'][0]}").json
    assert heic["info"]["lens"].startswith("Apple iPhone 12 Pro") and "latitude" in heic["info"]
    assert (heic["info"]["width"], heic["info"]["height"]) == (heic["width"], heic["height"])
    plain = client.get(f"/api/items/{ids['png_rgba_transparent.png'][0]}").json["info"]
    assert "camera_make" not in plain and "latitude" not in plain and plain["width"] > 0
    video = client.get(f"/api/items/{ids['MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV'][0]}").json["info"]
    assert video["codec"] == "hevc" and video["duration"] > 0 and video["has_audio"] is True
    assert video["latitude"] == pytest.approx(51.5334) and video["longitude"] == pytest.approx(-0.1255)


def test_item_info_of_a_file_gone_since_the_scan_says_so(client, app, tmp_path):
    from materialsearch.web import services_of

    item = next(i for i in services_of(app).store.get_items(ids_by_name(client)["webp_lossy_photo.webp"]).values())
    moved = tmp_path / "moved.webp"
    shutil.move(item.path, moved)
    try:
        info = client.get(f"/api/items/{item.id}").json["info"]
        assert set(info) == {"error"} and "cannot read" in info["error"]
    finally:
        shutil.move(moved, item.path)

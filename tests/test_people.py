"""The faces pass in ``/api/status`` and "who is this?" (``POST /api/faces/ID/name``), with the real models on the
shared labelled photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from materialsearch.organise.faces import MODEL_VERSION
from materialsearch.web import services_of
from tests.conftest import media_library

PHOTOS = [
    "faces_obama_1.jpg",
    "faces_obama_2.jpg",
    "faces_obama_biden_two.jpg",
    "faces_biden_1.jpg",
    "faces_lin_manuel_miranda.png",
]


@pytest.fixture(scope="module")
def people(scanned_app, tmp_path_factory):
    """The app, its faces pass's status before the pass ran, and the item ids by file name."""
    app = scanned_app(media_library(tmp_path_factory.mktemp("people") / "library", PHOTOS), ocr=False)
    before = app.test_client().get("/api/status").get_json()["faces"]
    services = services_of(app)
    services.faces.run()
    ids = {row.path.rsplit("/", 1)[-1]: row.id for row in services.store.get_items(range(1, 100)).values()}
    return app, before, ids


def faces(app, item_id: int):
    return services_of(app).store.faces.faces_of(item_id)


def test_the_status_reports_the_faces_pass_and_its_counts(people):
    app, before, _ids = people
    assert before["enabled"] is True and before["state"] == "idle" and before["progress"] is None
    assert before["counts"] == {"read": 0, "errors": 0, "waiting": len(PHOTOS), "faces": 0, "people": 0, "named": 0}
    assert before["last"] is None
    after = app.test_client().get("/api/status").get_json()["faces"]
    # Obama in three photos, Biden in two, Miranda in one (a lone face makes nobody yet).
    assert after["counts"] == {"read": len(PHOTOS), "errors": 0, "waiting": 0, "faces": 6, "people": 2, "named": 0}
    assert after["state"] == "idle" and after["progress"] is None
    assert after["last"]["error"] is None and after["last"]["summary"].startswith(f"{len(PHOTOS)} photos read, 6 faces")


def test_the_status_says_when_faces_are_off(scanned_app, tmp_path):
    app = scanned_app(media_library(tmp_path / "library", ["faces_biden_1.jpg"]), ocr=False, faces=False)
    off = app.test_client().get("/api/status").get_json()["faces"]
    assert off["enabled"] is False and off["counts"]["waiting"] == 1


def test_who_is_this_names_moves_and_merges_people(people):
    app, _before, ids = people
    client = app.test_client()

    def name(face_id: int, text: str):
        answer = client.post(f"/api/faces/{face_id}/name", json={"name": text})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def person(person_id: int):
        return next((p for p in client.get("/api/people").get_json()["people"] if p["id"] == person_id), None)

    (miranda_face,) = faces(app, ids["faces_lin_manuel_miranda.png"])
    (obama_face,) = faces(app, ids["faces_obama_1.jpg"])
    (biden_face,) = faces(app, ids["faces_biden_1.jpg"])
    obama, biden = obama_face.person_id, biden_face.person_id
    assert miranda_face.person_id is None and None not in (obama, biden) and obama != biden

    # A face of nobody: a new person of that name, holding that face.
    named = name(miranda_face.id, "Lin-Manuel  Miranda ")
    miranda = named["person_id"]
    assert named["person_name"] == "Lin-Manuel Miranda" and miranda not in (None, obama, biden)
    assert person(miranda)["face_count"] == 1
    # A face of an unnamed person names the whole person (any language).
    assert name(obama_face.id, "巴拉克·奥巴马")["person_id"] == obama
    assert {face.person_name for face in faces(app, ids["faces_obama_2.jpg"])} == {"巴拉克·奥巴马"}
    # A face of a named person given another existing name (any case) moves alone.
    two = next(f for f in faces(app, ids["faces_obama_biden_two.jpg"]) if f.person_id == obama)
    assert name(two.id, "LIN-MANUEL MIRANDA")["person_id"] == miranda
    assert person(obama)["face_count"] == 2 and person(miranda)["face_count"] == 2
    # A face of an unnamed person given an existing name: the whole person joins them.
    assert name(biden_face.id, "lin-manuel miranda")["person_id"] == miranda
    assert person(biden) is None and person(miranda)["face_count"] == 4
    # A regrouping moves none of it back.
    services_of(app).faces.run()
    assert {f.person_id for f in faces(app, ids["faces_obama_biden_two.jpg"])} == {miranda}
    assert {p["name"] for p in client.get("/api/people").get_json()["people"]} == {
        "巴拉克·奥巴马",
        "Lin-Manuel Miranda",
    }
    status = client.get("/api/status").get_json()["faces"]["counts"]
    assert status["people"] == 2 and status["named"] == 2


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "   "}, 400, "cannot be empty"),
        ({"name": ""}, 400, "name"),
        ({"name": "x" * 101}, 400, "name"),
        ({"name": 5}, 400, "name"),
        ({}, 400, "name"),
        (None, 400, ""),
    ],
    ids=["blank", "empty", "too-long", "not-text", "no-name", "no-body"],
)
def test_a_bad_name_is_refused_with_a_message(people, body, status, words):
    app, _before, ids = people
    (face,) = faces(app, ids["faces_obama_1.jpg"])
    client = app.test_client()
    answer = (
        client.post(f"/api/faces/{face.id}/name", json=body)
        if body is not None
        else client.post(f"/api/faces/{face.id}/name")
    )
    assert answer.status_code == status and words in answer.get_json()["message"]


def test_naming_a_face_that_does_not_exist_is_404(people):
    app, _before, _ids = people
    answer = app.test_client().post("/api/faces/999999/name", json={"name": "Somebody"})
    assert answer.status_code == 404 and "face 999999" in answer.get_json()["message"]


# --- faces in videos ------------------------------------------------------------------------------------------------
def letterboxed(name: str, size: tuple[int, int]):
    """A shared photo fitted into a black ``size`` frame (its shape kept)."""
    from PIL import Image

    from tests.conftest import MEDIA

    with Image.open(MEDIA / name) as photo:
        photo = photo.convert("RGB")
        photo.thumbnail(size)
        frame = Image.new("RGB", size)
        frame.paste(photo, ((size[0] - photo.width) // 2, (size[1] - photo.height) // 2))
        return frame


@pytest.fixture(scope="module")
def video_people(scanned_app, tmp_path_factory):
    """A library of one Obama photo, one Biden photo and a real H.264 video showing Obama for 4 s, then Biden for
    2 s, then black; scanned (frames sampled every 2 s) and read by the faces pass."""
    from PIL import Image

    from tests.videos import write_video

    library = media_library(
        tmp_path_factory.mktemp("video-people") / "library", ["faces_obama_2.jpg", "faces_biden_1.jpg"]
    )
    size = (960, 720)
    obama, biden, black = (
        letterboxed("faces_obama_1.jpg", size),
        letterboxed("faces_biden_1.jpg", size),
        Image.new("RGB", size),
    )
    scenes = [(t / 2, obama) for t in range(8)] + [(4 + t / 2, biden) for t in range(4)] + [(6.0, black), (6.5, black)]
    write_video(str(library / "family.mp4"), scenes, size)
    app = scanned_app(library, ocr=False)
    stats = services_of(app).faces.run()
    ids = {row.path.rsplit("/", 1)[-1]: row.id for row in services_of(app).store.get_items(range(1, 100)).values()}
    return app, stats, ids


def test_a_videos_sampled_frames_have_their_faces_with_their_times(video_people):
    app, stats, ids = video_people
    assert stats.photos == 3 and not stats.errors
    stored = faces(app, ids["family.mp4"])
    assert [face.time_ms for face in stored] == [0, 2000, 4000]  # the frames the scan sampled; none in the black one
    obama = faces(app, ids["faces_obama_2.jpg"])[0].person_id
    biden = faces(app, ids["faces_biden_1.jpg"])[0].person_id
    assert [face.person_id for face in stored] == [obama, obama, biden]
    # The item's details list each person once (a video holds a face per sampled frame), in time order.
    detail = app.test_client().get(f"/api/items/{ids['family.mp4']}").get_json()
    assert [face["person_id"] for face in detail["faces"]] == [obama, biden]
    best = max((face for face in stored if face.person_id == obama), key=lambda face: face.score)
    assert [face["time_ms"] for face in detail["faces"]] == [best.time_ms, 4000]
    photo = app.test_client().get(f"/api/items/{ids['faces_obama_2.jpg']}").get_json()
    assert photo["faces"][0]["time_ms"] is None


def test_a_person_finds_the_videos_they_are_in(video_people):
    app, _stats, ids = video_people
    client = app.test_client()
    obama = faces(app, ids["faces_obama_2.jpg"])[0].person_id
    timeline = client.get("/api/items", query_string={"person": obama}).get_json()
    assert {item["id"] for item in timeline["results"]} == {ids["faces_obama_2.jpg"], ids["family.mp4"]}
    people = {p["id"]: p for p in client.get("/api/people").get_json()["people"]}
    assert people[obama]["face_count"] == 3 and people[obama]["item_count"] == 2
    for person in people.values():  # a cover may be a video's frame: cut from that frame
        cover = client.get(person["cover_url"])
        assert cover.status_code == 200 and cover.mimetype == "image/jpeg"
    counts = client.get("/api/status").get_json()["faces"]["counts"]
    assert counts["read"] == 3 and counts["waiting"] == 0 and counts["faces"] == 5


def test_a_person_finds_the_moments_of_a_video_they_are_in(video_people):
    app, _stats, ids = video_people
    client = app.test_client()
    obama = faces(app, ids["faces_obama_2.jpg"])[0].person_id
    biden = faces(app, ids["faces_biden_1.jpg"])[0].person_id

    def moments(**query):
        body = client.get("/api/search", query_string={"q": "a man", "match": "all", "limit": 50, **query})
        assert body.status_code == 200, body.get_json()
        return [(r["start"], r["end"]) for r in body.get_json()["results"] if r["id"] == ids["family.mp4"]]

    assert moments(), "the words alone find the video"
    # Obama is in the frames at 0 and 2 s (each standing for the 2 s after it), Biden in the one at 4 s.
    assert moments(person=obama) and all(end <= 4.0 for _start, end in moments(person=obama))
    assert moments(person=biden) == [(4.0, 6.0)]
    assert moments(person=[obama, biden]) == []  # never in one frame together


def test_a_video_face_named_keeps_its_person_when_the_video_is_read_again(video_people):
    app, _stats, ids = video_people
    client = app.test_client()
    video = faces(app, ids["family.mp4"])
    assert client.post(f"/api/faces/{video[2].id}/name", json={"name": "Joe Biden"}).status_code == 200
    services = services_of(app)
    path = services.store.get_items([ids["family.mp4"]])[ids["family.mp4"]].path
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # the file changed: scanned again
    services.scans.run()
    assert services.store.faces.waiting_count(MODEL_VERSION) == 1
    assert services.faces.run().photos == 1
    again = faces(app, ids["family.mp4"])
    assert [face.time_ms for face in again] == [0, 2000, 4000]
    assert [face.person_name for face in again] == [None, None, "Joe Biden"]
    assert again[2].person_id == video[2].person_id and again[0].person_id == video[0].person_id


def test_a_cover_is_cut_once_and_kept_in_the_data_dir(scanned_app, tmp_path):
    library = media_library(tmp_path / "library", ["faces_obama_1.jpg", "faces_obama_2.jpg"])
    app = scanned_app(library, ocr=False)
    services = services_of(app)
    services.faces.run()
    client = app.test_client()
    (person,) = client.get("/api/people").get_json()["people"]
    first = client.get(person["cover_url"])
    assert first.status_code == 200 and first.mimetype == "image/jpeg"
    kept = list((Path(services.settings.data_dir) / "covers").glob("*.jpg"))
    assert len(kept) == 1 and kept[0].read_bytes() == first.data
    # Served from the data dir from now on: the photo itself is not read again.
    cover_face = services.store.faces.face(services.people.person(person["id"]).cover_face_id)
    photo = Path(services.store.get_items([cover_face.item_id])[cover_face.item_id].path)
    photo.rename(photo.with_suffix(".moved"))
    try:
        again = client.get(person["cover_url"])
        assert again.status_code == 200 and again.data == first.data
    finally:
        photo.with_suffix(".moved").rename(photo)
    # A cover no person shows any more is deleted when the people are listed; the current one stays.
    (Path(services.settings.data_dir) / "covers" / "0123456789abcdef0123456789abcdef.jpg").write_bytes(b"old")
    client.get("/api/people")
    assert [path.name for path in (Path(services.settings.data_dir) / "covers").iterdir()] == [kept[0].name]
    # Deleting the face data deletes the covers too.
    services.people.forget_all()
    assert not (Path(services.settings.data_dir) / "covers").exists()
    assert client.get("/api/people").get_json()["people"] == []

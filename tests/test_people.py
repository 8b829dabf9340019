"""The faces pass in ``/api/status`` and "who is this?" (``POST /api/faces/ID/name``), with the real models on the
shared labelled photos."""

from __future__ import annotations

import pytest

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

"""Faces and people with the real models (YuNet + SFace) on the shared labelled photos (``FACES.tsv``)."""

from __future__ import annotations

import csv
import itertools
import shutil

import pytest

from materialsearch.organise.faces import MODEL_VERSION, SAME_PERSON, FaceReader, similarity
from materialsearch.organise.people import group
from materialsearch.web import services_of
from tests.conftest import MEDIA

UPRIGHT, SIDEWAYS = "faces_curie_pair.jpg", "faces_curie_pair_orient6_labelled.jpg"


def labelled() -> list[dict[str, str]]:
    with open(MEDIA / "FACES.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def faces_app(scanned_app, tmp_path_factory):
    library = tmp_path_factory.mktemp("faces") / "library"
    library.mkdir()
    for row in labelled():
        shutil.copy2(MEDIA / row["file"], library / row["file"])
    app = scanned_app(library, ocr=False)
    stats = services_of(app).faces.run()
    assert stats.photos == len(labelled()) and not stats.errors
    return app


def item_ids(app) -> dict[str, int]:
    store = services_of(app).store
    return {row.path.rsplit("/", 1)[-1]: row.id for row in store.get_items(range(1, 1000)).values()}


def labelled_faces(app) -> list[tuple[str, str, object]]:
    """(file, label, stored face) for each photo whose faces were all found (left to right as FACES.tsv lists)."""
    repository, ids = services_of(app).store.faces, item_ids(app)
    found = []
    for row in labelled():
        people = row["people_left_to_right"].split(";")
        faces = repository.faces_of(ids[row["file"]])
        if len(faces) == len(people):
            found += [(row["file"], person, face) for person, face in zip(people, faces, strict=True)]
    return found


def test_every_labelled_face_is_found_but_at_most_the_partial_ones(faces_app):
    ids, repository = item_ids(faces_app), services_of(faces_app).store.faces
    for row in labelled():
        faces = repository.faces_of(ids[row["file"]])
        expected = len(row["people_left_to_right"].split(";"))
        if "partial" in row["file"]:
            assert len(faces) <= expected, row["file"]
        else:
            assert len(faces) == expected, row["file"]
        for face in faces:
            left, top, right, bottom = face.box
            assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1


def test_the_same_person_threshold_separates_the_labelled_pairs(faces_app):
    """SAME_PERSON sits between the pairs of one person and the pairs of different people, with room each side."""
    reader = FaceReader()
    embeddings = {}
    for row in labelled():
        people = row["people_left_to_right"].split(";")
        faces = reader.read_file((MEDIA / row["file"]).read_bytes(), 200_000_000)
        if len(faces) == len(people):
            embeddings.update(
                {(row["file"], person): face.embedding for person, face in zip(people, faces, strict=True)}
            )
    same, different = [], []
    for (a, first), (b, second) in itertools.combinations(embeddings.items(), 2):
        (same if a[1] == b[1] else different).append(similarity(first, second))
    assert same and different
    assert min(same) >= SAME_PERSON + 0.1, sorted(same)[:3]
    assert max(different) <= SAME_PERSON - 0.1, sorted(different)[-3:]


def test_each_labelled_person_is_one_person_and_no_person_holds_two(faces_app):
    people_of: dict[str, set] = {}
    labels_of: dict[int, set] = {}
    hard = {name for row in labelled() for name in row["hard_to_match"].split(";") if name}
    for _file, label, face in labelled_faces(faces_app):
        people_of.setdefault(label, set()).add(face.person_id)
        if face.person_id is not None:
            labels_of.setdefault(face.person_id, set()).add(label)
    photos = {}
    for row in labelled():
        for name in row["people_left_to_right"].split(";"):
            photos[name] = photos.get(name, 0) + 1
    for label, people in people_of.items():
        if photos[label] >= 2 and label not in hard:  # two photos of one face make a person
            assert len(people) == 1 and None not in people, (label, people)
        assert len(people - {None}) <= 1, (label, people)
    assert all(len(labels) == 1 for labels in labels_of.values()), labels_of
    # A face in one photo only (nobody else looks like them) makes no person.
    single = [label for label, count in photos.items() if count == 1]
    for label in single:
        assert people_of.get(label, {None}) == {None}


def test_the_sideways_portrait_has_the_upright_ones_boxes_and_people(faces_app):
    ids, repository = item_ids(faces_app), services_of(faces_app).store.faces
    upright, sideways = repository.faces_of(ids[UPRIGHT]), repository.faces_of(ids[SIDEWAYS])
    assert len(upright) == len(sideways) >= 1
    for a, b in zip(upright, sideways, strict=True):
        assert all(abs(x - y) < 0.02 for x, y in zip(a.box, b.box, strict=True)), (a.box, b.box)
        assert a.person_id == b.person_id is not None


def test_a_name_and_a_manual_move_survive_a_rescan_and_a_regrouping(faces_app):
    services = services_of(faces_app)
    repository = services.store.faces
    person = repository.people()[0]
    assert repository.update_person(person.id, name="Ünïcode 名字")
    moved = next(face for face in repository.faces_of(item_ids(faces_app)[UPRIGHT]) if face.person_id is not None)
    assert repository.move_face(moved.id, None)
    services.scans.run()
    services.faces.run()
    decided = group(repository.all_faces())
    repository.apply_grouping(decided.joins, decided.new_people)
    assert repository.person(person.id).name == "Ünïcode 名字"
    assert repository.person(person.id).face_count >= 1
    assert repository.face(moved.id).person_id is None and repository.face(moved.id).manual
    assert repository.move_face(moved.id, moved.person_id)  # put back for the other tests
    assert repository.update_person(person.id, name="")
    assert repository.person(person.id).name is None


def test_a_changed_photo_is_read_again_and_keeps_its_people(faces_app):
    import os

    services = services_of(faces_app)
    repository = services.store.faces
    item = item_ids(faces_app)["faces_obama_2.jpg"]
    (before,) = repository.faces_of(item)
    assert repository.update_person(before.person_id, name="奥巴马")
    path = services.store.get_item(item).path
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    services.scans.run()
    assert repository.waiting_count(MODEL_VERSION) == 1
    assert services.faces.run().photos == 1
    (after,) = repository.faces_of(item)
    assert after.id != before.id and after.person_id == before.person_id and after.person_name == "奥巴马"
    assert repository.update_person(before.person_id, name="")


def test_faces_off_refuses_the_pass(open_services):
    services = open_services(faces=False)
    assert services.faces.why_not_start() == "faces are off (MS_FACES=false)"


def test_deleting_a_photo_deletes_its_faces(scanned_app, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for name in ("faces_obama_1.jpg", "faces_obama_2.jpg"):
        shutil.copy2(MEDIA / name, library / name)
    app = scanned_app(library, ocr=False)
    services = services_of(app)
    services.faces.run()
    gone = item_ids(app)["faces_obama_1.jpg"]
    assert len(services.store.faces.faces_of(gone)) == 1
    assert [person.face_count for person in services.store.faces.people()] == [2]
    (library / "faces_obama_1.jpg").unlink()
    services.scans.run()
    assert services.store.faces.faces_of(gone) == []
    assert [person.face_count for person in services.store.faces.people()] == [1]


def test_the_faces_command_reads_then_deletes_every_face(tmp_path, tiny_model, monkeypatch, capsys):
    from materialsearch.cli import main

    library = tmp_path / "library"
    library.mkdir()
    for name in ("faces_obama_1.jpg", "faces_obama_2.jpg"):
        shutil.copy2(MEDIA / name, library / name)
    environment = {"MS_DATA_DIR": str(tmp_path / "data"), "MS_MODEL": tiny_model, "MS_LIBRARY": str(library)}
    for key, value in {**environment, "MS_OCR": "false"}.items():
        monkeypatch.setenv(key, value)
    assert main(["scan"]) == 0
    assert main(["faces"]) == 0
    assert "2 faces" in capsys.readouterr().out
    assert main(["faces", "--delete"]) == 0
    from materialsearch.catalog.store import DB_FILENAME, Store

    store = Store(str(tmp_path / "data" / DB_FILENAME))
    try:
        assert store.faces.people() == [] and store.faces.waiting_count(MODEL_VERSION) == 2
    finally:
        store.close()


# --- the API ------------------------------------------------------------------------------------------------------
def person_of(app, label: str) -> int:
    (person,) = {face.person_id for _file, name, face in labelled_faces(app) if name == label}
    return person


def photos_of(app, label: str) -> set[int]:
    ids = item_ids(app)
    return {ids[row["file"]] for row in labelled() if label in row["people_left_to_right"].split(";")}


def test_person_with_words_finds_only_that_persons_photos(faces_app):
    client = faces_app.test_client()
    obama = person_of(faces_app, "obama")
    found = client.get("/api/search", query_string={"q": "a man in a suit", "person": obama, "limit": 50}).get_json()
    ids = {result["id"] for result in found["results"]}
    assert ids and ids <= photos_of(faces_app, "obama")
    timeline = client.get("/api/items", query_string={"person": obama, "limit": 100}).get_json()
    with_face = {i for i in photos_of(faces_app, "obama") if any(f.person_id == obama for f in faces_in(faces_app, i))}
    assert {item["id"] for item in timeline["results"]} == with_face
    both = [obama, person_of(faces_app, "biden")]
    together = client.get("/api/items", query_string={"person": both}).get_json()
    assert {item["id"] for item in together["results"]} == photos_of(faces_app, "obama") & photos_of(faces_app, "biden")
    refused = client.get("/api/search", query_string={"q": "a man", "person": 999999})
    assert refused.status_code == 400 and "unknown person 999999" in refused.get_json()["message"]


def faces_in(app, item_id: int):
    return services_of(app).store.faces.faces_of(item_id)


def test_an_items_details_list_its_faces_with_their_people(faces_app):
    client = faces_app.test_client()
    pair = item_ids(faces_app)[SIDEWAYS]
    detail = client.get(f"/api/items/{pair}").get_json()
    stored = faces_in(faces_app, pair)
    assert [face["box"] for face in detail["faces"]] == [pytest.approx(list(face.box)) for face in stored]
    assert [face["person_id"] for face in detail["faces"]] == [face.person_id for face in stored]
    assert all(face["person_name"] is None for face in detail["faces"])


def test_a_persons_name_in_the_sentence_becomes_person(faces_app):
    client = faces_app.test_client()
    obama = person_of(faces_app, "obama")
    assert client.patch(f"/api/people/{obama}", json={"name": "Barack Obama"}).status_code == 200
    try:
        body = client.get("/api/search", query_string={"q": "barack obama in a suit", "limit": 50}).get_json()
        understood = body["understood"]
        assert understood["people"] == [obama] and understood["q"] == "a suit"
        assert [(part["field"], part["value"]) for part in understood["parts"]] == [("person", "Barack Obama")]
        assert body["results"] and {r["id"] for r in body["results"]} <= photos_of(faces_app, "obama")
        # A name inside another word is not a name.
        other = client.get("/api/search", query_string={"q": "Barack Obamas"}).get_json()["understood"]
        assert other["people"] == [] and other["parts"] == []
    finally:
        client.patch(f"/api/people/{obama}", json={"name": ""})


def test_people_are_listed_named_hidden_merged_and_faces_moved(faces_app):
    client = faces_app.test_client()
    people = client.get("/api/people").get_json()["people"]
    assert len(people) == len({face.person_id for _f, _l, face in labelled_faces(faces_app)} - {None})
    obama, biden = person_of(faces_app, "obama"), person_of(faces_app, "biden")
    cover = client.get(next(p["cover_url"] for p in people if p["id"] == obama))
    assert cover.status_code == 200 and cover.mimetype == "image/jpeg"
    import io

    from PIL import Image

    with Image.open(io.BytesIO(cover.data)) as picture:
        assert picture.size[0] == picture.size[1] > 32
    renamed = client.patch(f"/api/people/{obama}", json={"name": "  Barack  Obama "}).get_json()
    assert renamed["name"] == "Barack Obama"
    assert client.patch(f"/api/people/{biden}", json={"hidden": True}).get_json()["hidden"] is True
    assert client.patch("/api/people/999999", json={"name": "x"}).status_code == 404
    assert client.patch(f"/api/people/{obama}", json={"name": 5}).status_code == 400
    detail = client.get(f"/api/items/{item_ids(faces_app)['faces_obama_1.jpg']}").get_json()
    assert detail["faces"][0]["person_name"] == "Barack Obama"
    # Move Biden's face in the two-people photo to nobody, then into Obama (a wrong move, by hand), then back.
    two = item_ids(faces_app)["faces_obama_biden_two.jpg"]
    face = next(f for f in faces_in(faces_app, two) if f.person_id == biden)
    moved = client.post(f"/api/faces/{face.id}/move", json={"person_id": None}).get_json()
    assert moved["person_id"] is None
    assert client.post(f"/api/faces/{face.id}/move", json={"person_id": 999999}).status_code == 404
    assert client.post("/api/faces/999999/move", json={}).status_code == 404
    assert client.post(f"/api/faces/{face.id}/move", json={"person_id": biden}).get_json()["person_name"] is None
    # Merge Biden into Obama: one person holds both, with Obama's name; Biden is gone.
    assert client.post(f"/api/people/{obama}/merge", json={"person_id": obama}).status_code == 400
    merged = client.post(f"/api/people/{obama}/merge", json={"person_id": biden}).get_json()
    assert merged["name"] == "Barack Obama" and merged["item_count"] == len(
        photos_of(faces_app, "obama") | photos_of(faces_app, "biden")
    )
    assert client.patch(f"/api/people/{biden}", json={"name": "x"}).status_code == 404


def test_grouping_many_synthetic_faces_keeps_people_apart():
    """20 000 synthetic embeddings of 400 people (a face ≈ 0.83 cosine to its person's centre, two people ≈ 0):
    every person becomes exactly one group, no group mixes two; with most faces placed, the rest join them."""
    import numpy as np

    from materialsearch.catalog.faces import FaceVectors

    rng = np.random.default_rng(0)
    people, per = 400, 50
    centres = rng.normal(size=(people, 128)).astype(np.float32)
    embeddings = np.repeat(centres / np.linalg.norm(centres, axis=1, keepdims=True), per, axis=0)
    embeddings = embeddings + rng.normal(scale=0.06, size=embeddings.shape).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    truth = np.repeat(np.arange(people), per)
    ids, items = np.arange(1, len(truth) + 1), np.arange(len(truth))
    decided = group(FaceVectors(ids, np.full(len(truth), -1), items, embeddings))
    assert not decided.joins and len(decided.new_people) == people
    assert all(len({truth[face - 1] for face in members}) == 1 for members in decided.new_people)
    placed = np.where(np.arange(len(truth)) % per < per - 5, truth + 1000, -1)
    decided = group(FaceVectors(ids, placed, items, embeddings))
    assert not decided.new_people
    assert decided.joins == {int(ids[i]): int(truth[i]) + 1000 for i in np.flatnonzero(placed < 0)}


def test_a_stop_waits_for_one_photo_not_the_batch(scanned_app, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    for row in labelled()[:4]:
        shutil.copy2(MEDIA / row["file"], library / row["file"])
    services = services_of(scanned_app(library, ocr=False))
    faces_pass = services.faces.faces_pass
    looked: list[int] = []
    original = faces_pass.read

    def read(job, *args, **kwargs):
        looked.append(job.item_id)
        return original(job, *args, **kwargs)

    faces_pass.read = read
    stats = faces_pass.run({}, should_stop=lambda: len(looked) >= 1, pause_point=lambda: None)
    assert stats.cancelled and looked == looked[:1] and stats.photos == 1  # the batch held 4: one was read
    assert services.store.faces.waiting_count(MODEL_VERSION) == 3  # the others wait for the next pass

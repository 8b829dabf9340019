"""The OCR pass in the product: after a real scan (tiny CLIP) the real PP-OCRv4 models read the shared text photos;
``text=`` and ``q=`` find them, ``/api/items/ID`` shows their lines, bad files become OCR errors, text is read once
per file version, and the pass pauses, resumes and cancels."""

from __future__ import annotations

import os
import shutil
import sqlite3
import types

import pytest

from materialsearch.catalog.text import TEXT_TAGS
from materialsearch.ocr.job import OcrManager
from materialsearch.web import services_of
from tests.conftest import MEDIA
from tests.test_unreachable import failing_walk  # noqa: F401 - the fixture, used by a test below

# A phrase visible in each shared text photo (MANIFEST "visible phrases"), as one would type it.
PHRASES = {
    "ocr_ad_zh_en_numbers.jpg": "正品促销",
    "ocr_document_photo_zh.jpeg": "解除抵押登记",
    "ocr_english_page.jpg": "MovieShots Dataset",
    "ocr_upside_down_exif3.jpg": "我是中国人",
    "ocr_gym_sign_phone_numbers.jpg": "027-88852022",
    "ocr_vertical_classical_zh.png": "是非不得問之人",  # traditional, as printed; found through OpenCC folding
}
TEXT_FREE = ["webp_lossy_photo.webp", "png_rgba_transparent.png", "avif_photo.avif"]
# OCR cannot take an animation; a 16-bit PNG is converted by the decoder and read like any photo.
BAD = {"gif_animated.gif": "animated GIF"}
OTHER = ["png_16bit_rgba.png"]

pytestmark = pytest.mark.slow  # the real OCR models on ~12 photos: tens of seconds on 2 shared cores


@pytest.fixture(scope="module")
def app(scanned_app, tmp_path_factory):
    library = tmp_path_factory.mktemp("ocr") / "library"
    (library / "docs").mkdir(parents=True)
    for name in [*PHRASES, *TEXT_FREE, *BAD, *OTHER]:
        target = library / "docs" if name.startswith("ocr_document") else library
        shutil.copy2(MEDIA / name, target / name)
    app = scanned_app(library, decode_threads=1, ocr_prelook="scan")  # the tests below follow the scan's look
    stats = services_of(app).ocr.run()
    assert stats.read == len(PHRASES) + len(TEXT_FREE) + len(BAD) + len(OTHER)
    return app


def _ids(app) -> dict[str, int]:
    return _ids_of(services_of(app))


def _ids_of(services) -> dict[str, int]:
    return {os.path.basename(path): state.id for path, state in services.store.file_states().items()}


def _names(body) -> list[str]:
    return [hit["name"] for hit in body["results"]]


@pytest.mark.parametrize(("name", "phrase"), sorted(PHRASES.items()))
def test_text_finds_each_text_photo_first_with_the_line_as_snippet(app, name, phrase):
    body = app.test_client().get("/api/search", query_string={"text": phrase}).get_json()
    assert _names(body)[:1] == [name], body
    assert body["results"][0]["snippet"]
    assert -1 <= body["results"][0]["score"] <= 1


@pytest.mark.parametrize(("name", "phrase"), sorted(PHRASES.items()))
def test_a_plain_query_ranks_the_photo_with_that_text_in_the_top_three(app, name, phrase):
    body = app.test_client().get("/api/search", query_string={"q": phrase}).get_json()
    assert name in _names(body)[:3], _names(body)
    hit = next(hit for hit in body["results"] if hit["name"] == name)
    assert hit["snippet"]


def test_text_free_photos_have_no_lines_and_bad_ones_an_error_with_its_reason(app):
    client, ids = app.test_client(), _ids(app)
    for name in TEXT_FREE:
        text = client.get(f"/api/items/{ids[name]}").get_json()["text"]
        assert text == {"status": "done", "lines": []}, name
    for name, reason in BAD.items():
        text = client.get(f"/api/items/{ids[name]}").get_json()["text"]
        assert text["status"] == "error" and reason in text["error"], text


def test_the_item_shows_its_lines_with_normalised_boxes_and_confidence(app):
    body = app.test_client().get(f"/api/items/{_ids(app)['ocr_upside_down_exif3.jpg']}").get_json()
    [line] = body["text"]["lines"]
    assert line["text"] == "我是中国人" and line["confidence"] >= 0.6
    left, top, right, bottom = line["box"]
    assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1


def test_text_with_a_query_and_filters(app):
    client = app.test_client()
    both = client.get("/api/search", query_string={"text": "抵押", "q": "a form"}).get_json()
    assert _names(both) == ["ocr_document_photo_zh.jpeg"]
    assert client.get("/api/search", query_string={"text": "抵押", "path": "/docs/"}).get_json()["total"] == 1
    assert client.get("/api/search", query_string={"text": "抵押", "kind": "video"}).get_json()["results"] == []
    assert client.get("/api/search", query_string={"text": "nothing-like-this"}).get_json()["results"] == []
    refused = client.get("/api/search", query_string={"text": "抵押", "like": 1})
    assert refused.status_code == 400 and "not both" in refused.get_json()["message"]


def test_status_shows_the_ocr_pass_beside_the_scan(app):
    status = app.test_client().get("/api/status").get_json()
    assert status["scan"]["state"] == "idle"
    ocr = status["ocr"]
    assert ocr["enabled"] is True and ocr["state"] == "idle" and ocr["progress"] is None
    assert ocr["counts"]["waiting"] == 0 and ocr["counts"]["errors"] == len(BAD)
    assert ocr["counts"]["with_text"] >= len(PHRASES) and "photos read" in ocr["last"]["summary"]


def test_a_second_pass_reads_nothing_again(app):
    stats = services_of(app).ocr.run()
    assert (stats.read, stats.errors) == (0, 0)


def _verdicts(services) -> dict[str, int | None]:
    with sqlite3.connect(services.store.path) as conn:
        return {os.path.basename(path): verdict for path, verdict in conn.execute("SELECT path, has_text FROM items")}


def test_the_scan_takes_the_prepass_verdict_so_the_pass_opens_only_photos_with_text_or_a_text_tag(app, monkeypatch):
    services = services_of(app)
    verdicts = _verdicts(services)
    assert {name: verdicts[name] for name in PHRASES} == dict.fromkeys(PHRASES, 1)  # the pre-pass misses none
    assert {name: verdicts[name] for name in TEXT_FREE} == dict.fromkeys(TEXT_FREE, 0)
    assert verdicts["gif_animated.gif"] is None  # an animation: left to the pass, which records why it cannot
    services.tagger.refresh()  # the tags as the pass finds them (it brings them up to date first)
    ids = _ids(app)
    with sqlite3.connect(services.store.path) as conn:
        # CLIP (here: a stand-in tag) sees a document the pre-pass missed: that photo is read in full anyway.
        conn.execute("INSERT OR REPLACE INTO item_tags VALUES (?, 'document', 9.9)", (ids[TEXT_FREE[0]],))
        conn.execute("DELETE FROM ocr_state")  # forget every photo's text: all wait for OCR again
        tagged = {row[0] for row in conn.execute(f"SELECT item_id FROM item_tags WHERE tag IN {TEXT_TAGS}")}
    engine = services.ocr.ocr_pass.engine
    real, opened = engine.read_file, {}

    def recording(data, **options):
        name = os.path.basename(services.ocr.live.current)
        opened[name] = options["has_text"]
        return real(data, **options)

    monkeypatch.setattr(engine, "read_file", recording)
    stats = services.ocr.run()
    assert stats.read == len(verdicts) and stats.with_text >= len(PHRASES)
    # Photos found text-free and not tagged as showing text were settled unopened; those with text or a text tag
    # went straight to the full pass; those without a verdict took the pass's own pre-pass.
    expected = {
        name: verdict == 1 or ids[name] in tagged
        for name, verdict in verdicts.items()
        if verdict != 0 or ids[name] in tagged
    }
    assert opened == expected
    assert opened[TEXT_FREE[0]] is True
    for name in TEXT_FREE:
        assert services.ocr_store.text_of(ids[name]).status == "done"
    for name, phrase in PHRASES.items():
        assert _names(app.test_client().get("/api/search", query_string={"text": phrase}).get_json())[:1] == [name]


def test_a_prepass_failure_in_the_scan_costs_the_verdict_not_the_photo(make_app, tmp_path, monkeypatch):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy2(MEDIA / "ocr_gym_sign_phone_numbers.jpg", library)
    services = services_of(make_app(library=str(library), decode_threads=1, ocr_prelook="scan"))

    def broken(*_args):
        raise RuntimeError("the detector fell over")

    monkeypatch.setattr(services.ocr_engine, "scan_verdict", broken)
    assert services.scans.run().added == 1
    assert _verdicts(services) == {"ocr_gym_sign_phone_numbers.jpg": None}
    monkeypatch.undo()
    stats = services.ocr.run()  # the pass takes its own pre-pass
    assert (stats.read, stats.with_text, stats.errors) == (1, 1, 0)
    assert [hit.item_id for hit in services.ocr_store.search("027-88852022", 5)] == list(_ids_of(services).values())


def test_a_changed_file_is_read_again_and_its_old_text_forgotten(app):
    services = services_of(app)
    target = next(path for path in services.store.file_states() if path.endswith("ocr_upside_down_exif3.jpg"))
    item_id = services.store.file_states()[target].id
    shutil.copy2(MEDIA / "webp_lossy_photo.webp", target)  # the same name, now a photo without text
    os.utime(target, ns=(os.stat(target).st_mtime_ns + 10**9,) * 2)
    try:
        services.scans.run()
        assert services.ocr_store.text_of(item_id).status is None  # the rescan sent it back to OCR
        assert services.ocr.run().read == 1
        assert services.ocr_store.text_of(item_id).lines == []
        assert app.test_client().get("/api/search", query_string={"text": "我是中国人"}).get_json()["results"] == []
    finally:
        shutil.copy2(MEDIA / "ocr_upside_down_exif3.jpg", target)
        os.utime(target, ns=(os.stat(target).st_mtime_ns + 2 * 10**9,) * 2)
        services.scans.run()
        services.ocr.run()
    assert len(services.ocr_store.text_of(item_id).lines) == 1


def test_items_under_an_unreachable_folder_keep_their_text(app, failing_walk):  # noqa: F811
    services = services_of(app)
    docs = next(os.path.dirname(p) for p in services.store.file_states() if "/docs/" in p)
    failing_walk[0].add(docs)
    assert services.scans.run().unreachable == 1
    assert _names(app.test_client().get("/api/search", query_string={"text": "抵押"}).get_json()) == [
        "ocr_document_photo_zh.jpeg"
    ]


def test_a_runtime_crash_on_one_file_is_that_files_error_and_the_pass_goes_on(app, monkeypatch):
    services = services_of(app)
    engine = services.ocr.ocr_pass.engine
    real = engine.read_file

    def crash_on_the_ad(data, **options):
        if data == (MEDIA / "ocr_ad_zh_en_numbers.jpg").read_bytes():
            raise MemoryError("onnxruntime could not allocate")
        return real(data, **options)

    monkeypatch.setattr(engine, "read_file", crash_on_the_ad)
    with sqlite3.connect(services.store.path) as conn:  # forget two photos' text: they wait for OCR again
        conn.execute(
            "DELETE FROM ocr_state WHERE item_id IN (SELECT id FROM items WHERE path LIKE '%ocr_ad%'"
            " OR path LIKE '%english%')"
        )
    stats = services.ocr.run()
    assert (stats.read, stats.errors) == (2, 1)
    ad = services.ocr_store.text_of(_ids(app)["ocr_ad_zh_en_numbers.jpg"])
    assert ad.status == "error" and "MemoryError" in ad.error and ad.lines == []
    monkeypatch.undo()
    with sqlite3.connect(services.store.path) as conn:
        conn.execute("DELETE FROM ocr_state WHERE item_id IN (SELECT id FROM items WHERE path LIKE '%ocr_ad%')")
    services.ocr.run()


def test_off_means_no_pass(make_app):
    app = make_app(ocr=False)
    assert services_of(app).ocr.try_start() == "OCR is off (MS_OCR=off)"
    assert services_of(app).scanner.preparer.ocr is None  # nor a pre-pass in the scan
    assert app.test_client().post("/api/ocr").status_code == 409
    assert app.test_client().get("/api/status").get_json()["ocr"]["enabled"] is False


def test_the_pass_pauses_while_a_scan_runs_and_by_hand_resumes_and_cancels(app):
    services = services_of(app)
    scans = types.SimpleNamespace(running=True)  # stands for a scan in progress
    manager = OcrManager(services.ocr.ocr_pass, services.store, enabled=True, owner=True, scans=scans)
    assert manager.try_start("after scan") is None
    try:
        assert manager.status().state == "paused" and "scan" in manager.status().paused_reason
        assert manager.try_start() == "an OCR pass is already running"
        assert manager.pause() and manager.status().paused_reason == "paused by user"
        assert manager.resume() and "scan" in manager.status().paused_reason  # still waits for the scan
        assert manager.pause() and manager.cancel()  # a paused pass can be cancelled
    finally:
        assert manager.wait(60)
    assert manager.status().state == "idle" and manager.last["cancelled"] is True

    assert manager.try_start("after scan") is None
    scans.running = False  # the scan ends: the pass goes on by itself (nothing is left to read)
    assert manager.wait(60)
    assert manager.last["cancelled"] is False and manager.last["error"] is None
    assert not manager.pause() and not manager.resume() and not manager.cancel()


def test_the_control_routes_answer_409_when_no_pass_runs(app):
    client = app.test_client()
    for action in ("pause", "resume", "cancel"):
        response = client.post(f"/api/ocr/{action}")
        assert response.status_code == 409 and "no OCR pass" in response.get_json()["message"]

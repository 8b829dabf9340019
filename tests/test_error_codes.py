"""Stable error codes: every JSON error of the API has a ``code``, every problem file an ``error_code``, every scan
warning a ``code``; the codes are declared once (``materialsearch.errors``) and documented in the OpenAPI schema."""

from __future__ import annotations

import io
import re
import shutil

import av
import numpy as np
import pytest

from materialsearch.errors import LEGACY_PREFIXES, ApiErrorCode, ProblemCode, legacy_code
from materialsearch.media.decode import DecodeError, decode_image
from materialsearch.web import services_of

PASSWORD = "correct horse"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def audio_only_m4a(path) -> None:
    """A real AAC-in-MP4 file without any video stream (what a voice memo or a song is)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for index in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.fixture(scope="module")
def library(tmp_path_factory, media_dir):
    root = tmp_path_factory.mktemp("codes") / "library"
    root.mkdir()
    for name in [
        "jpg_orient1.jpg",
        "mp4_pixel7_h264_noaudio_rot180.mp4",
        "bad_jpg_is_text.jpg",
        "bad_jpg_zero_bytes.jpg",
        "bad_png_truncated.png",
        "bad_mp4_dolbyvision_av1_no_decoder.mp4",
    ]:
        shutil.copy2(media_dir / name, root / name)
    audio_only_m4a(root / "voice_memo.mp4")
    return root


@pytest.fixture(scope="module")
def app(scanned_app, library):
    return scanned_app(library, max_clip_seconds=1)  # the sample video lasts 1.2 s


@pytest.fixture(scope="module")
def ids(app):
    store = services_of(app).store
    states = store.file_states()
    return {path.rsplit("/", 1)[1]: state.id for path, state in states.items()}


def test_codes_are_declared_once_as_distinct_snake_case_words_with_meanings():
    for enum in (ApiErrorCode, ProblemCode):
        values = [code.value for code in enum]
        assert len(values) == len(set(values))
        assert all(SNAKE_CASE.match(v) for v in values), values
        assert all(code.meaning for code in enum)
        assert all(f"`{code.value}`" in enum.described() for code in enum)


def test_problem_files_carry_their_code_from_where_the_problem_was_found(app):
    body = app.test_client().get("/api/errors").get_json()
    codes = {row["path"].rsplit("/", 1)[1]: (row["status"], row["error_code"]) for row in body["errors"]}
    assert codes == {
        "bad_jpg_is_text.jpg": ("error", "unsupported_format"),
        "bad_jpg_zero_bytes.jpg": ("error", "empty_file"),
        "bad_png_truncated.png": ("error", "corrupt_image"),
        "bad_mp4_dolbyvision_av1_no_decoder.mp4": ("error", "no_decoder"),
        "voice_memo.mp4": ("skipped", "not_a_video"),
    }
    assert body["unreachable"] == []
    # Stored in the database, not derived on the way out.
    stored = {item.path.rsplit("/", 1)[1]: item.error_code for item in services_of(app).store.problems(50, 0)[0]}
    assert stored == {name: code for name, (_status, code) in codes.items()}


def test_legacy_wording_of_every_problem_gives_the_code_the_source_now_gives():
    """Rows written before the codes: each wording an older release used maps to the code the source now sets."""
    samples = {
        b"": ProblemCode.EMPTY_FILE,
        b"hello, not a picture": ProblemCode.UNSUPPORTED_FORMAT,
    }
    for data, expected in samples.items():
        with pytest.raises(DecodeError) as caught:
            decode_image(data, max_pixels=10**8, min_side=32)
        assert caught.value.code == expected
        assert legacy_code(str(caught.value)) == expected
    assert legacy_code("not a readable image (broken data stream)") == ProblemCode.CORRUPT_IMAGE
    assert legacy_code("decoding stalled: no progress for 31 s (MS_DECODE_TIMEOUT is 30 s)") == (
        ProblemCode.DECODE_STALLED
    )
    assert legacy_code("/lib/a: cannot list folder (Permission denied); keeping its 2 indexed item(s)") == (
        ProblemCode.FOLDER_UNLISTABLE
    )
    assert legacy_code("who knows") == ProblemCode.UNKNOWN and legacy_code(None) is None
    assert all(isinstance(code, ProblemCode) for _prefix, code in LEGACY_PREFIXES)


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/search?q=cat&limit=ten", 400, "invalid_parameter"),
        ("/api/search", 400, "missing_query"),
        ("/api/search?q=cat&like=1", 400, "conflicting_query"),
        ("/api/search?like=99999", 404, "not_found"),
        ("/api/items/99999", 404, "not_found"),
        ("/api/no-such-route", 404, "not_found"),
        ("/api/items/1/clip?start=0", 400, "invalid_parameter"),
    ],
)
def test_every_json_error_of_a_get_has_a_stable_code(app, url, status, code):
    response = app.test_client().get(url)
    body = response.get_json()
    assert (response.status_code, body["code"], body["status"]) == (status, code, status), body
    assert body["message"] and body["error"]


def test_errors_of_the_handlers_have_their_own_codes(app, ids):
    client = app.test_client()
    photo, video = ids["jpg_orient1.jpg"], ids["mp4_pixel7_h264_noaudio_rot180.mp4"]

    def code(response, status):
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()["code"]

    assert code(client.get(f"/api/items/{photo}/clip?start=0&end=1"), 400) == "not_a_video"
    assert code(client.get(f"/api/items/{video}/clip?start=900&end=901"), 400) == "clip_out_of_range"
    assert code(client.get(f"/api/items/{video}/clip?start=0&end=0"), 400) == "clip_out_of_range"
    assert code(client.get(f"/api/items/{video}/clip?start=0&end=99999"), 400) == "clip_too_long"
    assert code(client.get(f"/api/items/{photo}/motion"), 404) == "no_motion"
    assert code(client.post("/api/search", data={"q": "cat"}), 400) == "invalid_parameter"  # image: required
    assert code(client.post("/api/search", json={"q": "cat"}), 400) == "missing_image"  # not a form at all
    picture = {"image": (io.BytesIO(b"not a picture at all"), "x.jpg")}
    assert code(client.post("/api/search", data=picture, content_type="multipart/form-data"), 400) == ("unusable_image")
    assert code(client.post("/api/scan/pause"), 409) == "no_scan_running"
    assert code(client.delete("/api/status"), 405) == "method_not_allowed"


def test_a_missing_library_has_its_code(make_app):
    app = make_app(library="")
    assert app.test_client().post("/api/scan").get_json()["code"] == "no_library"


def test_an_upload_too_large_has_its_code(make_app):
    app = make_app(max_upload_bytes=1024)
    picture = {"image": (io.BytesIO(b"x" * 4096), "x.jpg")}
    response = app.test_client().post("/api/search", data=picture, content_type="multipart/form-data")
    assert (response.status_code, response.get_json()["code"]) == (413, "upload_too_large")


def test_auth_errors_have_codes(make_app):
    app = make_app(password=PASSWORD)
    client = app.test_client()
    assert client.get("/api/status").get_json()["code"] == "login_required"
    bad_token = client.get("/api/status", headers={"Authorization": "Bearer nope"})
    assert (bad_token.status_code, bad_token.get_json()["code"]) == (401, "invalid_token")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:value|content)="([^"]+)"', page).group(1)
    client.post("/login", data={"password": PASSWORD, "csrf_token": token, "next": "/"})
    forged = client.post("/api/scan")
    assert (forged.status_code, forged.get_json()["code"]) == (403, "csrf_failed")


def test_an_unexpected_failure_is_a_coded_500(make_app, monkeypatch):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(services_of(app).store, "counts", lambda: 1 / 0)
    response = app.test_client().get("/api/status")
    assert (response.status_code, response.get_json()["code"]) == (500, "internal_error")


def test_the_codes_are_documented_in_the_openapi_document(app):
    document = app.test_client().get("/api/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    def enum_of(model: str, field: str) -> tuple[list[str], str]:
        schema = schemas[model]["properties"][field]
        target = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
        if "allOf" in schema:
            target = schemas[schema["allOf"][0]["$ref"].rsplit("/", 1)[1]]
        return sorted(target["enum"]), schema.get("description", "") + target.get("description", "")

    values, text = enum_of("Error", "code")
    assert values == sorted(c.value for c in ApiErrorCode)
    assert all(f"`{c.value}`" in text for c in ApiErrorCode)
    values, text = enum_of("ProblemFile", "error_code")
    assert values == sorted(c.value for c in ProblemCode)
    assert all(f"`{c.value}`" in text for c in ProblemCode)
    assert "unreachable" in schemas["ProblemList"]["required"]
    assert enum_of("ScanWarning", "code")[0] == sorted(c.value for c in ProblemCode)

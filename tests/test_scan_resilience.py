"""One file must never stop a scan: whatever a stage raises for one file costs that file only.

Each stage of preparing a file (hash, probe, sample, decode, motion parsing, thumbnail, preprocess) is made to
raise an exception nobody anticipated for one target file; the scan must finish, record that file with the
reason, index every other file as usual, and not retry the failed file on an unchanged rescan.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from materialsearch.catalog.records import ItemStatus
from materialsearch.media.thumbnails import Renditions, rendition_key
from materialsearch.scan import prepare as prepare_module

PHOTO = "jpg_orient1.jpg"
VIDEO = "webm_vp9_noaudio.webm"
LIVE_STILL, LIVE_MOVIE = "livephoto_iphone6s_train.jpg", "livephoto_iphone6s_train.mov"


class Boom(RuntimeError):
    """The exception nobody anticipated."""


@pytest.fixture
def mixed_library(library, media_dir) -> Path:
    """The small library plus a video and a Live Photo pair."""
    for name in [VIDEO, LIVE_STILL, LIVE_MOVIE]:
        shutil.copy2(media_dir / name, library / name)
    return library


def _errors(services) -> dict[str, str]:
    problems, _total = services.store.problems(1000, 0)
    return {item.path: item.error for item in problems}


def _expected_statuses(root: Path) -> dict[str, str]:
    statuses = {str(p): ItemStatus.OK for p in root.rglob("*") if p.is_file()}
    statuses[str(root / "trip" / "bad_jpg_is_text.jpg")] = ItemStatus.ERROR
    statuses[str(root / LIVE_MOVIE)] = ItemStatus.MOTION
    return statuses


def _raise_for(target: Path, key_of):
    """A replacement for a stage function that raises Boom when ``key_of(args)`` names the target file."""

    def install(monkeypatch, owner, name):
        original = getattr(owner, name)

        def patched(*args, **kwargs):
            if key_of(target, args):
                raise Boom("stage failed for this file")
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, patched)

    return install


def _is_path(target, args):
    return any(str(a) == str(target) for a in args if isinstance(a, str | Path))


def _is_bytes(target, args):
    data = target.read_bytes()
    return any(isinstance(a, bytes) and a == data for a in args)


def _is_rendition_of(target, args):
    stat = target.stat()
    key = rendition_key(str(target), stat.st_size, stat.st_mtime_ns)
    return any(isinstance(a, str) and key in a for a in args)


# stage name -> (target file, object to patch, attribute, how the patched call recognises the target)
STAGES = {
    "video hash": (VIDEO, prepare_module, "file_hash", _is_path),
    "video probe": (VIDEO, prepare_module, "probe", _is_path),
    "video sampling": (VIDEO, prepare_module, "sample_frames", _is_path),
    "photo decode": (PHOTO, prepare_module, "decode_image", _is_bytes),
    "motion photo parsing": (PHOTO, prepare_module, "embedded_motion_offset", _is_bytes),
    "live photo identifier": (LIVE_MOVIE, prepare_module, "still_content_identifier", lambda target, args: True),
    "photo thumbnail": (PHOTO, Renditions, "write_thumbnail", _is_rendition_of),
    "video poster": (VIDEO, Renditions, "write_image_thumbnail", _is_rendition_of),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_an_unexpected_exception_in_one_stage_costs_one_file(stage, open_services, mixed_library, monkeypatch):
    name, owner, attribute, key_of = STAGES[stage]
    target = mixed_library / name
    _raise_for(target, key_of)(monkeypatch, owner, attribute)
    services = open_services(library=str(mixed_library))

    stats = services.scans.run()

    states = services.store.file_states()
    expected = _expected_statuses(mixed_library)
    expected[str(target)] = ItemStatus.ERROR
    assert {path: state.status for path, state in states.items()} == expected
    assert _errors(services)[str(target)] == "unexpected error (Boom: stage failed for this file)"
    assert stats.errors == 2
    # Only the failed file's vectors are missing; the index and the database agree.
    assert services.index.ntotal == services.store.vector_checksum()[0]
    assert not services.store.item_vectors(states[str(target)].id).size
    # An unchanged rescan does not retry it (it is retried when the file changes).
    again = services.scans.run()
    assert again.decoded == 0 and again.unchanged == len(expected)


def test_the_first_preprocess_failing_costs_one_file(open_services, mixed_library, monkeypatch):
    """The model's preprocessing raising once (whatever file it was) loses that one file and nothing else."""
    services = open_services(library=str(mixed_library))
    original = services.encoder.prepare
    calls = []

    def flaky(image):
        calls.append(image.size)
        if len(calls) == 1:
            raise Boom("preprocess failed")
        return original(image)

    monkeypatch.setattr(services.encoder, "prepare", flaky)
    stats = services.scans.run()
    statuses = [state.status for state in services.store.file_states().values()]
    assert stats.errors == 2
    assert statuses.count(ItemStatus.ERROR) == 2
    assert statuses.count(ItemStatus.SKIPPED) == 0
    assert services.index.ntotal == services.store.vector_checksum()[0]


def test_the_dolby_vision_av1_file_is_listed_and_the_scan_goes_on(open_services, library, media_dir):
    """The shared DoVi/AV1 MP4 (no decoder in the bundled FFmpeg) is an error with a reason, not a crash."""
    name = "bad_mp4_dolbyvision_av1_no_decoder.mp4"
    shutil.copy2(media_dir / name, library / name)
    services = open_services(library=str(library))
    stats = services.scans.run()
    state = services.store.file_states()[str(library / name)]
    assert state.status == ItemStatus.ERROR
    assert _errors(services)[str(library / name)] == "no decoder for this video's codec in the bundled FFmpeg"
    assert (stats.added, stats.errors) == (5, 2)

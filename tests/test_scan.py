"""Scanning real files into real SQLite + FAISS with the tiny cn_clip model: incremental, moves, errors."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from materialsearch.catalog.filters import Filters
from materialsearch.catalog.records import ItemStatus
from materialsearch.media.decode import decode_image
from materialsearch.search.service import Page
from tests.conftest import manifest


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under root."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            result[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return result


def states(services):
    return services.store.file_states()


def test_real_media_library(open_services, media_dir):
    before = tree_digest(media_dir)
    services = open_services(library=str(media_dir))
    stats = services.scans.run()
    known = states(services)
    rows = manifest()
    for row in rows:
        path = str(media_dir / row["file"])
        assert path in known, row["file"]
        expected = ItemStatus.OK if row["decodes_ok"] == "yes" else ItemStatus.ERROR
        if row["kind"] == "mov-livephoto":
            expected = ItemStatus.MOTION  # part of its still's item, not a video of its own
        assert known[path].status == expected, (row["file"], known[path])
    errors, total = services.store.problems(100, 0)
    assert total == sum(r["decodes_ok"] != "yes" for r in rows) == stats.errors
    assert all(e.error and "\n" not in e.error for e in errors)
    indexed = sum(s.status == ItemStatus.OK for s in known.values())
    assert stats.added == indexed + 1  # the Live Photo movie is added too, as motion
    assert services.index.ntotal == services.store.vector_checksum()[0] > indexed  # videos own several vectors
    assert tree_digest(media_dir) == before, "the library must never change"


def test_stored_vectors_equal_the_encoder_on_the_decoded_pixels(open_services, library):
    services = open_services(library=str(library))
    services.scans.run()
    path = library / "jpg_orient1.jpg"
    item_id = states(services)[str(path)].id
    stored = services.store.item_vectors(item_id)
    decoded = decode_image(path.read_bytes(), max_pixels=10**9, **services.scanner.decode_sizes)
    expected = services.encoder.encode_images([decoded.image])
    assert stored.shape == expected.shape
    assert np.abs(stored - expected).max() <= 1e-5


def test_second_scan_of_unchanged_library_decodes_nothing(open_services, library):
    services = open_services(library=str(library))
    first = services.scans.run()
    assert (first.added, first.errors) == (5, 1)
    second = services.scans.run()
    assert second.decoded == 0
    assert (second.unchanged, second.added, second.updated, second.removed) == (6, 0, 0, 0)


def test_changed_file_is_re_embedded_and_removed_file_vanishes(open_services, library, media_dir):
    services = open_services(library=str(library))
    services.scans.run()
    target = library / "jpg_orient1.jpg"
    old = states(services)[str(target)]
    old_vector = services.store.item_vectors(old.id)
    shutil.copyfile(media_dir / "jpg_grayscale_concert.jpg", target)  # new content, same path
    os.utime(target, ns=(old.mtime_ns + 10**9, old.mtime_ns + 10**9))
    (library / "webp_lossy_photo.webp").unlink()
    stats = services.scans.run()
    assert (stats.updated, stats.removed, stats.decoded) == (1, 1, 1)
    new = states(services)[str(target)]
    assert new.id == old.id and new.size != old.size
    assert not np.allclose(services.store.item_vectors(new.id), old_vector)
    assert str(library / "webp_lossy_photo.webp") not in states(services)
    assert services.index.checksum() == services.store.vector_checksum()
    hits = services.search.search(services.search.text_vector("photo"), Filters(), Page(limit=50)).hits
    assert all(Path(h.item.path).exists() for h in hits)


def test_moved_file_keeps_its_vector_without_re_embedding(open_services, library):
    services = open_services(library=str(library))
    services.scans.run()
    source = library / "trip" / "jpeg_nikon_d5000_gps.jpeg"
    before = states(services)[str(source)]
    vector_ids_before = services.store.vector_checksum()
    (library / "renamed").mkdir()
    destination = library / "renamed" / "mongolia.jpeg"
    source.rename(destination)
    stats = services.scans.run()
    assert (stats.moved, stats.decoded, stats.removed, stats.added) == (1, 0, 0, 0)
    after = states(services)[str(destination)]
    assert after.id == before.id
    assert services.store.vector_checksum() == vector_ids_before


def test_failed_file_is_retried_only_when_it_changes(open_services, library, media_dir):
    services = open_services(library=str(library))
    services.scans.run()
    bad = library / "trip" / "bad_jpg_is_text.jpg"
    assert states(services)[str(bad)].status == ItemStatus.ERROR
    assert services.scans.run().decoded == 0
    shutil.copyfile(media_dir / "jpg_orient6.jpg", bad)
    stats = services.scans.run()
    assert stats.decoded == 1 and states(services)[str(bad)].status == ItemStatus.OK


def test_small_images_are_skipped_with_a_reason(open_services, library):
    services = open_services(library=str(library), min_image_size=300)
    services.scans.run()
    problems, _ = services.store.problems(50, 0)
    skipped = {Path(p.path).name: p.error for p in problems if p.status == "skipped"}
    assert "png_rgba_transparent.png" in skipped and "too small" in skipped["png_rgba_transparent.png"]


def test_skip_patterns_and_data_dir_inside_library(open_services, library, media_dir):
    (library / "@eaDir").mkdir()
    shutil.copy(media_dir / "bmp_24bit.bmp", library / "@eaDir" / "thumb.bmp")
    shutil.copy(media_dir / "bmp_24bit.bmp", library / ".hidden.bmp")
    services = open_services(library=str(library), data_dir=str(library / "msdata"))
    services.scans.run()
    services.scans.run()  # thumbnails now exist inside the library's data dir: they must not be indexed
    paths = set(states(services))
    assert not any("@eaDir" in p or ".hidden" in p or "msdata" in p for p in paths)


def test_symlink_out_of_the_library_is_not_followed(open_services, library, media_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(media_dir / "bmp_24bit.bmp", outside / "secret.bmp")
    (library / "link.bmp").symlink_to(outside / "secret.bmp")
    (library / "linkdir").symlink_to(outside, target_is_directory=True)
    services = open_services(library=str(library))
    services.scans.run()
    assert not any(Path(p).name.startswith(("link", "secret")) or "linkdir" in Path(p).parts for p in states(services))


def test_index_is_rebuilt_when_missing_or_out_of_step(open_services, make_settings, library):
    from materialsearch.services import Services

    services = open_services(library=str(library))
    services.scans.run()
    count = services.index.ntotal
    services.close()
    os.remove(os.path.join(services.settings.data_dir, "index.faiss"))
    reopened = Services(make_settings(library=str(library)))
    assert reopened.index.ntotal == count
    # A stale index (the DB moved on behind its back, as after a crash) is detected by its stamp and rebuilt.
    reopened.store.delete_items([states(reopened)[str(library / "jpg_orient1.jpg")].id])
    reopened.close()  # saves an index that still holds the deleted vector
    again = Services(make_settings(library=str(library)))
    assert again.index.checksum() == again.store.vector_checksum()
    again.close()


def test_changing_the_model_re_embeds_and_says_so(open_services, library, make_model):
    services = open_services(library=str(library))
    services.scans.run()
    services.close()
    other = make_model(seed=7)
    changed = open_services(library=str(library), model=other)
    assert changed.model_change and "re-embedded" in changed.model_change
    assert changed.index.ntotal == 0
    stats = changed.scans.run()
    assert stats.updated == 5 and changed.index.ntotal == 5


def test_unmounted_library_folder_keeps_the_index(open_services, library, tmp_path):
    services = open_services(library=str(library))
    services.scans.run()
    indexed = services.index.ntotal
    mount_point = library.rename(tmp_path / "elsewhere")
    library.mkdir()  # the empty mount point an unmounted NAS share leaves behind
    stats = services.scans.run()
    assert stats.removed == 0 and services.index.ntotal == indexed
    assert "missing or empty" in stats.summary()
    library.rmdir()  # the folder itself gone
    assert services.scans.run().removed == 0
    mount_point.rename(library)
    back = services.scans.run()
    assert (back.removed, back.decoded, back.unchanged) == (0, 0, 6)


def test_folder_dropped_from_the_settings_is_swept(open_services, make_settings, library):
    from materialsearch.services import Services

    services = open_services(library=str(library))
    services.scans.run()
    services.close()
    narrowed = Services(make_settings(library=str(library / "trip")))
    try:
        stats = narrowed.scans.run()
        assert stats.removed == 3 and all("/trip/" in p for p in narrowed.store.file_states())
    finally:
        narrowed.close()

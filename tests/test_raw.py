"""Camera RAW files: decoded upright from their embedded preview (LibRaw via rawpy), developed only without one,
refused with a coded reason when broken; a RAW beside a same-name JPEG/HEIC is part of that photo's item.

The DNGs are real ones written by ``tests/raws.py`` (tifffile): LibRaw reads them as it reads a camera's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest
from PIL import Image

from materialsearch.catalog.records import ItemStatus
from materialsearch.errors import ProblemCode
from materialsearch.media.decode import DecodeError, decode_image
from materialsearch.scan.walk import walk_library
from materialsearch.web import create_app
from tests.conftest import MEDIA
from tests.raws import PREVIEW_SIZE, SENSOR_SIZE, write_dng

SIZES = {"min_side": 224, "min_long_side": 256, "max_pixels": 10**8}
RED, BLUE, WHITE = (200, 30, 30), (30, 30, 200), (255, 255, 255)
RAW_EXTENSIONS = ["dng", "nef", "cr2"]


def near(pixel, colour, tolerance=24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def sides(image: Image.Image) -> dict[str, tuple]:
    """The colours in the middle of each edge of a picture."""
    w, h = image.size
    at = image.convert("RGB").getpixel
    return {
        "top": at((w // 2, 3)),
        "bottom": at((w // 2, h - 4)),
        "left": at((3, h // 2)),
        "right": at((w - 4, h // 2)),
    }


@pytest.mark.parametrize(
    ("orientation", "white_side", "red_side"),
    [(1, "top", "left"), (3, "bottom", "right"), (6, "right", "top"), (8, "left", "bottom")],
)
def test_a_dng_is_decoded_upright_from_its_embedded_preview(tmp_path, orientation, white_side, red_side):
    data = write_dng(tmp_path / "shot.dng", orientation).read_bytes()
    decoded = decode_image(data, **SIZES)
    edges = sides(decoded.image)
    assert near(edges[white_side], WHITE) and near(edges[red_side], RED), edges
    portrait = orientation in (6, 8)
    assert (decoded.width, decoded.height) == (SENSOR_SIZE[::-1] if portrait else SENSOR_SIZE)
    assert (decoded.image.width < decoded.image.height) == portrait
    # From the 1200x800 JPEG preview (in JPEG draft mode), not the 256-pixel thumbnail nor the sensor data.
    assert max(decoded.image.size) >= SIZES["min_long_side"] and max(decoded.image.size) <= max(PREVIEW_SIZE)
    assert decoded.taken_at == dt.datetime(2024, 5, 6, 7, 8, 9)  # the RAW's own EXIF time


def test_a_dng_without_a_large_enough_preview_is_developed_upright(tmp_path):
    data = write_dng(tmp_path / "thumb_only.dng", orientation=6, preview=False).read_bytes()
    decoded = decode_image(data, **SIZES)
    assert (decoded.width, decoded.height) == SENSOR_SIZE[::-1]
    w, h = decoded.image.size
    assert w < h and min(w, h) >= SIZES["min_side"]  # half the sensor, turned by LibRaw


def test_broken_raws_are_refused_with_a_coded_reason(tmp_path):
    data = write_dng(tmp_path / "shot.dng").read_bytes()
    with pytest.raises(DecodeError) as truncated:
        decode_image(data[:4096], **SIZES)
    assert truncated.value.code == ProblemCode.CORRUPT_IMAGE, truncated.value
    with pytest.raises(DecodeError) as fuji:
        decode_image(b"FUJIFILMCCD-RAW 0201FF383501" + bytes(4000), **SIZES)
    assert fuji.value.code == ProblemCode.UNSUPPORTED_FORMAT
    assert "RAW" in str(fuji.value)


def test_a_plain_tiff_is_still_read_by_pillow(media_dir):
    decoded = decode_image((media_dir / "tif_lzw_rgb.tif").read_bytes(), **SIZES)
    assert decoded.image.mode == "RGB" and decoded.width > 0


@pytest.fixture
def raw_library(tmp_path, media_dir):
    """A RAW alone (upright by its orientation), a RAW + JPEG pair, and a broken RAW."""
    root = tmp_path / "library"
    root.mkdir()
    write_dng(root / "alone.dng", orientation=6)
    shutil.copy2(media_dir / "jpg_orient1.jpg", root / "DSC_0001.JPG")
    write_dng(root / "DSC_0001.dng")
    (root / "broken.nef").write_bytes(write_dng(tmp_path / "whole.dng").read_bytes()[:4096])  # cut short
    return root


def test_a_scan_indexes_raws_and_folds_a_raw_jpeg_pair_into_one_item(open_services, raw_library):
    services = open_services(library=str(raw_library))
    stats = services.scans.run()
    states = {path.rsplit("/", 1)[1]: state for path, state in services.store.file_states().items()}
    assert states["alone.dng"].status == ItemStatus.OK
    assert states["DSC_0001.JPG"].status == ItemStatus.OK
    assert states["DSC_0001.dng"].status == ItemStatus.RAW
    assert states["DSC_0001.dng"].pair_path == str(raw_library / "DSC_0001.JPG")
    assert states["broken.nef"].status == ItemStatus.ERROR
    assert services.index.ntotal == 2  # the RAW alone and the JPEG; the pair's RAW has no vector of its own
    assert stats.errors == 1

    client = create_app(services.settings, services).test_client()
    problems = client.get("/api/errors").get_json()["errors"]
    assert [(p["path"].rsplit("/", 1)[1], p["error_code"]) for p in problems] == [("broken.nef", "corrupt_image")]
    jpeg = client.get(f"/api/items/{states['DSC_0001.JPG'].id}").get_json()
    raw = client.get(jpeg["raw_url"])
    assert raw.status_code == 200 and raw.data == (raw_library / "DSC_0001.dng").read_bytes()
    assert client.get(f"/api/items/{states['DSC_0001.dng'].id}").status_code == 404  # not an item of its own
    alone = client.get(f"/api/items/{states['alone.dng'].id}").get_json()
    assert "raw_url" not in alone and alone["width"] < alone["height"]
    preview = client.get(alone["view_url"])  # browsers cannot show a DNG: a JPEG of it, upright
    assert preview.status_code == 200 and preview.mimetype == "image/jpeg"

    # Unchanged files are not prepared again; the JPEG gone, the RAW becomes a photo of its own.
    assert services.scans.run().decoded == 0
    (raw_library / "DSC_0001.JPG").unlink()
    services.scans.run()
    states = {path.rsplit("/", 1)[1]: state for path, state in services.store.file_states().items()}
    assert states["DSC_0001.dng"].status == ItemStatus.OK and states["DSC_0001.dng"].pair_path is None


def test_a_raw_whose_jpeg_is_broken_is_indexed_on_its_own_until_the_jpeg_reads_again(open_services, tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    write_dng(root / "DSC_0002.dng", orientation=6)
    jpeg = root / "DSC_0002.JPG"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")  # the camera's card was pulled mid-write
    services = open_services(library=str(root))

    def states():
        return {path.rsplit("/", 1)[1]: state for path, state in services.store.file_states().items()}

    stats = services.scans.run()
    assert (stats.added, stats.errors, stats.decoded) == (1, 1, 2)
    assert states()["DSC_0002.JPG"].status == ItemStatus.ERROR
    raw = states()["DSC_0002.dng"]
    assert raw.status == ItemStatus.OK and raw.pair_path is None and services.index.ntotal == 1
    client = create_app(services.settings, services).test_client()
    item = client.get(f"/api/items/{raw.id}").get_json()
    assert item["width"] < item["height"]  # its preview, upright by its orientation
    assert [hit["id"] for hit in client.get("/api/search", query_string={"q": "photo"}).get_json()["results"]] == [
        raw.id
    ]

    # Nothing changed: nothing is prepared again (the plan keeps the RAW on its own).
    again = services.scans.run()
    assert (again.decoded, again.unchanged) == (0, 2)
    # The JPEG readable again: the pair is one item once more, the JPEG shown.
    shutil.copy2(MEDIA / "jpg_orient1.jpg", jpeg)
    os.utime(jpeg, ns=(os.stat(jpeg).st_mtime_ns + 10**9,) * 2)
    services.scans.run()
    assert states()["DSC_0002.JPG"].status == ItemStatus.OK
    assert states()["DSC_0002.dng"].status == ItemStatus.RAW and services.index.ntotal == 1


def test_the_walk_pairs_a_raw_only_with_a_same_name_jpeg_or_heic(tmp_path):
    for name in ["A.NEF", "a.jpg", "B.cr2", "B.png", "C.dng", "C.HEIC", "D.arw"]:
        (tmp_path / name).write_bytes(b"x")
    extensions = ["jpg", "png", "heic", *RAW_EXTENSIONS, "arw"]
    stills = {e.path.rsplit("/", 1)[1]: e.still for e in walk_library([str(tmp_path)], extensions)}
    assert stills["A.NEF"] == str(tmp_path / "a.jpg")
    assert stills["C.dng"] == str(tmp_path / "C.HEIC")
    assert stills["B.cr2"] is None and stills["D.arw"] is None  # a PNG is not a camera's JPEG; D has none
    assert stills["a.jpg"] is None and stills["B.png"] is None

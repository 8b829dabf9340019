"""HEIC/HEIF from their embedded thumbnail: used only when it covers the model's input, upright like the full
picture, close to it in pixels and vectors, never hiding a truncated file; and the setting that turns it off."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from materialsearch.media.decode import DecodeError, _isobmff_truncated, decode_image

IPHONE_HEICS = ["heic_iphone12pro_orient6_irot_gps.heic", "heic_iphone8plus_arrow_orient6_irot.heic"]


@pytest.mark.parametrize("name", IPHONE_HEICS)
def test_iphone_heic_decodes_from_its_thumbnail_upright(media_dir, name):
    data = (media_dir / name).read_bytes()
    full = decode_image(data, min_side=224, max_pixels=10**9)
    fast = decode_image(data, min_side=224, max_pixels=10**9, heif_thumbnail=True)
    # The full picture (3024x4032 upright), decoded whole, then box-averaged by the largest integer factor that
    # keeps the model's 224 px (13): never held at 12 MP through the thumbnail and the model's preprocessing.
    assert full.image.size == (-(-3024 // 13), -(-4032 // 13))
    assert fast.image.size == (240, 320) and fast.image.mode == "RGB"  # the iPhone's 320x240 thumbnail, portrait
    assert (fast.width, fast.height, fast.taken_at) == (full.width, full.height, full.taken_at)
    # Same picture, same orientation: both shrunk to one size differ by a few levels only.
    size = (fast.image.width // 2, fast.image.height // 2)
    shrunk = np.asarray(full.image.resize(size, Image.Resampling.LANCZOS), np.float32)
    thumbnail = np.asarray(fast.image.resize(size, Image.Resampling.LANCZOS), np.float32)
    difference = np.abs(shrunk - thumbnail).mean()
    flipped = np.abs(shrunk[::-1, ::-1] - thumbnail).mean()
    assert difference < 6 and flipped > 3 * difference, (difference, flipped)


def test_thumbnail_vectors_stay_close_to_the_full_decode(media_dir, make_settings):
    from materialsearch.encoders import make_encoder

    encoder = make_encoder(make_settings(backend="torch", precision="fp32"))
    encoder.load()
    for name in IPHONE_HEICS:
        data = (media_dir / name).read_bytes()
        pictures = [decode_image(data, min_side=224, max_pixels=10**9, heif_thumbnail=t).image for t in (False, True)]
        full, fast = encoder.encode_images(pictures)
        print(f"{name}: cosine thumbnail vs full decode {float(full @ fast):.6f}")
        assert float(full @ fast) >= 0.999


def test_thumbnail_too_small_or_missing_means_full_decode(media_dir):
    data = (media_dir / IPHONE_HEICS[0]).read_bytes()
    # a model input larger than the 240 px thumbnail: the full picture is decoded (then reduced by 3024 // 336)
    decoded = decode_image(data, min_side=336, max_pixels=10**9, heif_thumbnail=True)
    assert decoded.image.size == (336, 448) and (decoded.width, decoded.height) == (3024, 4032)
    for name, size in [("heic_iphoneXS_2images.heic", (1025, 900)), ("heic_android_motionphoto.heic", (1080, 1920))]:
        decoded = decode_image((media_dir / name).read_bytes(), min_side=224, max_pixels=10**9, heif_thumbnail=True)
        factor = min(size) // 224  # no thumbnail in these files: the full picture, reduced
        assert decoded.image.size == tuple(-(-side // factor) for side in size)
        assert (decoded.width, decoded.height) == size


def test_a_heic_cut_after_its_thumbnail_is_still_reported(media_dir):
    data = (media_dir / IPHONE_HEICS[0]).read_bytes()
    assert not _isobmff_truncated(data)
    cut = data[: len(data) - 200_000]  # the main picture's tiles are at the end; the thumbnail survives
    assert _isobmff_truncated(cut)
    with pytest.raises(DecodeError, match="truncated"):
        decode_image(cut, min_side=224, max_pixels=10**9, heif_thumbnail=True)
    with pytest.raises(DecodeError, match="truncated"):
        decode_image(
            (media_dir / "bad_heic_truncated.heic").read_bytes(), min_side=224, max_pixels=10**9, heif_thumbnail=True
        )
    for name in ["heic_android_motionphoto.heic", "heic_alpha_10bit_synthetic.heif", "avif_photo.avif"]:
        assert not _isobmff_truncated((media_dir / name).read_bytes()), name


def test_scanner_follows_the_setting(open_services, tmp_path, media_dir):
    import shutil

    library = tmp_path / "heic"
    library.mkdir()
    shutil.copy2(media_dir / IPHONE_HEICS[1], library / "a.heic")
    for enabled in (True, False):
        services = open_services(library=str(library), heic_thumbnail=enabled, data_dir=str(tmp_path / f"d{enabled}"))
        assert services.scanner.decode_sizes["heif_thumbnail"] is enabled
        assert services.scans.run().added == 1
        # a query with the same file finds it (queries decode exactly as indexing does)
        vector = services.search.image_vector((library / "a.heic").read_bytes())
        scores, _ids = services.index.search(vector, 1)
        assert scores[0] == pytest.approx(1.0, abs=1e-5)

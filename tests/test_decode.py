"""Decoding the real sample media: orientation, colour modes, bombs and broken files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from materialsearch.media.decode import DecodeError, decode_image
from tests.conftest import MEDIA, image_rows

LIMIT = 250_000_000


def decode(name: str, side: int = 224):
    return decode_image((MEDIA / name).read_bytes(), min_side=side, max_pixels=LIMIT)


def _grey(image: Image.Image, size=(96, 64)) -> np.ndarray:
    return np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


@pytest.mark.parametrize("orientation", [2, 3, 4, 6, 8])
def test_exif_orientations_come_out_upright(orientation):
    upright = decode("jpg_orient1.jpg")
    other = decode(f"jpg_orient{orientation}.jpg")
    assert (other.width, other.height) == (1800, 1200)
    assert other.image.size == upright.image.size
    same = np.abs(_grey(other.image) - _grey(upright.image)).mean()
    # A wrong or missing transform differs by tens of grey levels; the same picture by compression noise.
    flipped = np.abs(_grey(other.image.transpose(Image.Transpose.ROTATE_180)) - _grey(upright.image)).mean()
    assert same < 8 < flipped


def test_heic_with_irot_and_exif_orientation_is_rotated_once():
    decoded = decode("heic_iphone8plus_arrow_orient6_irot.heic")
    assert (decoded.width, decoded.height) == (3024, 4032)  # portrait, as the phone showed it
    ink = np.asarray(decoded.image.convert("L").resize((192, 256))) < 100

    def ink_width(rows: slice) -> int:
        cols = np.where(ink[rows].any(axis=0))[0]
        return int(cols.max() - cols.min()) if cols.size else 0

    # The arrow points up: its wide head is in the upper half, its narrow stem in the lower half.
    assert ink_width(slice(80, 110)) > 1.5 * ink_width(slice(140, 180))


def test_iphone_heic_is_portrait_and_has_its_capture_date():
    decoded = decode("heic_iphone12pro_orient6_irot_gps.heic")
    assert (decoded.width, decoded.height) == (3024, 4032)
    assert decoded.image.height > decoded.image.width
    assert decoded.taken_at is not None and decoded.taken_at.year == 2023


def test_png_exif_orientation_is_applied():
    decoded = decode("png_exif_orientation3.png")
    raw = Image.open(MEDIA / "png_exif_orientation3.png").convert("RGB")
    assert np.abs(_grey(decoded.image) - _grey(raw.transpose(Image.Transpose.ROTATE_180))).mean() < 2


@pytest.mark.parametrize(
    "name",
    [
        "jpg_cmyk.jpg",
        "jpg_grayscale_concert.jpg",
        "png_16bit_rgba.png",
        "png_palette_trns.png",
        "png_rgba_transparent.png",
        "heic_alpha_10bit_synthetic.heif",
        "gif_animated.gif",
        "webp_animated.webp",
    ],
)
def test_every_mode_becomes_8bit_rgb(name):
    decoded = decode(name)
    assert decoded.image.mode == "RGB"
    pixels = np.asarray(decoded.image)
    assert pixels.dtype == np.uint8 and pixels.std() > 1  # real content, not a flat frame


def test_transparency_is_composited_on_white():
    decoded = decode("png_rgba_transparent.png")
    alpha = np.asarray(Image.open(MEDIA / "png_rgba_transparent.png").getchannel("A"))
    rgb = np.asarray(decoded.image)
    assert (rgb[alpha == 0] == 255).all()


def test_sixteen_bit_png_keeps_its_range():
    rgb = np.asarray(decode("png_16bit_rgba.png").image)
    assert rgb.max() > 128  # scaled from 16 bits, not clipped to black or white


def test_jpeg_draft_decodes_just_above_the_needed_size():
    decoded = decode("livephoto_iphone6s_train.jpg", side=224)
    assert (decoded.width, decoded.height) == (4032, 3024)  # the original's size is reported
    assert 224 <= min(decoded.image.size) < 3024 // 4  # but far fewer pixels were decoded


def test_capture_date_comes_from_exif():
    assert decode("jpg_unicode_fin de journée.jpg").taken_at.isoformat() == "2021-07-10T20:39:25"
    assert decode("jpg_no_exif.jpg").taken_at is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad_jpg_zero_bytes.jpg", "empty file"),
        ("bad_jpg_is_text.jpg", "not a readable image"),
        ("bad_jpg_truncated_pixel6.jpg", "truncated"),
        ("bad_png_truncated.png", "truncated"),
        ("bad_heic_truncated.heic", "truncated"),
        ("bomb_jpg_lottapixel.jpg", "decompression bomb"),
    ],
)
def test_broken_files_are_refused_with_a_reason(name, reason):
    with pytest.raises(DecodeError, match=reason) as err:
        decode(name)
    assert "\n" not in str(err.value)


def test_a_200_megapixel_photo_is_within_the_default_limit():
    # Declared-size check only (no 200 MP file is shipped): the default admits 16320x12240.
    from config import Settings

    assert Settings.from_env(environ={}).max_image_pixels >= 16320 * 12240


def test_every_decodable_sample_image_decodes():
    for row in image_rows():
        if row["decodes_ok"] == "yes":
            decoded = decode(row["file"])
            assert decoded.image.mode == "RGB", row["file"]


def _large_picture(width: int, height: int) -> Image.Image:
    """Left half red, right half blue, the top-left corner green, the bottom rows transparent."""
    picture = Image.new("RGBA", (width, height), (200, 30, 30, 255))
    picture.paste((30, 30, 200, 255), (width // 2, 0, width, height))
    picture.paste((30, 200, 30, 255), (0, 0, width // 10, height // 10))
    picture.paste((0, 0, 0, 0), (0, height - height // 10, width, height))
    return picture


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_a_large_picture_is_held_reduced_upright_and_true_to_its_colours(fmt):
    """18 MP: above the size from which OpenCV decodes a WebP (Pillow's WebP decoder peaked at ~16 bytes a pixel,
    OpenCV's at ~6, measured in fresh processes); every non-JPEG is then box-averaged down like JPEG draft."""
    import io

    out = io.BytesIO()
    exif = Image.Exif()
    exif[274] = 6  # stored sideways: upright it is 3000 wide, 6000 tall
    options = {"lossless": True} if fmt == "WEBP" else {}
    _large_picture(6000, 3000).save(out, fmt, exif=exif.tobytes(), **options)
    decoded = decode_image(out.getvalue(), min_side=224, min_long_side=384, max_pixels=10**9)
    assert (decoded.width, decoded.height) == (3000, 6000)
    factor = min(3000 // 224, 6000 // 384)  # 13 and 15: the short side decides
    assert decoded.image.size == (-(-3000 // factor), -(-6000 // factor)) and decoded.image.mode == "RGB"
    pixels = np.asarray(decoded.image, np.int16)
    h, w = pixels.shape[:2]
    # Turned 90° clockwise (orientation 6): the stored top-left green corner is at the top right, the red half on
    # top, the blue below, and the transparent stored bottom rows on the left, composited on white.
    assert np.abs(pixels[2, w - 3] - (30, 200, 30)).max() <= 6
    assert np.abs(pixels[h // 4, w // 2] - (200, 30, 30)).max() <= 6
    assert np.abs(pixels[3 * h // 4, w // 2] - (30, 30, 200)).max() <= 6
    assert np.abs(pixels[h // 2, 2] - (255, 255, 255)).max() <= 6

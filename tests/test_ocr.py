"""OCR on the real PP-OCRv4 models shipped in rapidocr-onnxruntime, on the real shared sample photos."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench.common import visible_phrases
from materialsearch.catalog.textnorm import normalize_text
from materialsearch.ocr.engine import OcrConfig, OcrEngine, OcrError, decode_for_ocr, decode_for_prepass
from tests.conftest import MEDIA, image_rows

# Generous: the decoder's own limit is what the scanner passes (MS_MAX_IMAGE_PIXELS); the bomb is far above it.
MAX_PIXELS = 200_000_000

TEXT_PHOTOS = [row for row in image_rows() if row["file"].startswith("ocr_")]
# Sample photos that are not in the OCR set but do show words: the EXIF orientation fixtures are labelled
# "top/left/right/bottom", three format fixtures show their format's name in large letters, and a faces photo is
# labelled like the orientation fixtures (MANIFEST: "it holds text").
LABELLED = {
    **{f"jpg_orient{n}.jpg": "bottom" for n in (1, 2, 3, 4, 6, 8)},
    "webp_lossless.webp": "WEBP",
    "tif_lzw_rgb.tif": "TIFF",
    "jpg_cmyk.jpg": "RED",
    # The sideways portrait of the faces set carries Top / Left / Right / Bottom on its upright picture.
    "faces_curie_pair_orient6_labelled.jpg": "Top",
}
TEXT_FREE = [
    row["file"]
    for row in image_rows()
    if row["decodes_ok"] == "yes"
    and row["file"] not in LABELLED
    and not row["file"].startswith("ocr_")
    and not row["kind"].endswith("animated")
]
# A hand-drawn arrow on ruled notebook paper: at 320 px its ruling looks like lines of text, so the pre-pass
# sends it on; the full pass then reads nothing above the confidence threshold.
PREPASS_FALSE_POSITIVES = {"heic_iphone8plus_arrow_orient6_irot.heic"}
# Every manifest phrase is read (the gym sign's stylised "24H 专业健身" too, since the angle classifier turns a line
# over only when sure: at its default threshold it turned that one upside down).
MISSED_PHRASES: set[str] = set()


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine().load()


def read_bytes(name: str) -> bytes:
    return (MEDIA / name).read_bytes()


def test_the_manifest_lists_the_text_photos():
    assert len(TEXT_PHOTOS) == 6
    assert all(visible_phrases(row["notes"]) for row in TEXT_PHOTOS)
    assert len(TEXT_FREE) >= 15


@pytest.mark.parametrize("name", [row["file"] for row in TEXT_PHOTOS])
def test_prepass_finds_text_in_every_text_photo(engine, name):
    assert engine.has_text(decode_for_prepass(read_bytes(name), engine.config, max_pixels=MAX_PIXELS))


@pytest.mark.slow
@pytest.mark.parametrize("row", TEXT_PHOTOS, ids=lambda row: row["file"])
def test_visible_phrases_are_read(engine, row):
    result = engine.read_file(read_bytes(row["file"]), max_pixels=MAX_PIXELS)
    assert result.has_text and result.lines
    text = "\n".join(normalize_text(line.text) for line in result.lines)
    phrases = visible_phrases(row["notes"])
    missing = [phrase for phrase in phrases if normalize_text(phrase) not in text]
    assert set(missing) <= MISSED_PHRASES, f"not read: {missing}; read: {[line.text for line in result.lines]}"
    assert len(missing) < len(phrases)
    for line in result.lines:
        left, top, right, bottom = line.box
        assert 0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0
        assert engine.config.min_confidence <= line.confidence <= 1.0


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("ocr_english_page.jpg", "MovieShots Dataset"), ("ocr_gym_sign_phone_numbers.jpg", "027-88852022")],
)
def test_text_upside_down_in_the_pixels_without_exif_is_still_read(engine, name, phrase):
    # No orientation tag says so (a scan, an app that dropped EXIF): the angle classifier turns the lines over.
    picture = decode_for_ocr(read_bytes(name), engine.config, max_pixels=MAX_PIXELS).rotate(180)
    text = "\n".join(normalize_text(line.text) for line in engine.recognise(picture))
    assert normalize_text(phrase) in text


def test_upside_down_photo_reads_right_side_up_with_boxes_in_the_upright_picture(engine):
    data = read_bytes("ocr_upside_down_exif3.jpg")
    (upright,) = engine.recognise(decode_for_ocr(data, engine.config, max_pixels=MAX_PIXELS))
    assert upright.text == "我是中国人"
    # The pixels as stored (EXIF orientation ignored) hold the text rotated by 180°: RapidOCR's 0/180 line
    # classifier still reads it, but its box lies where the text is in the stored pixels.
    with Image.open(io.BytesIO(data)) as stored:
        (as_stored,) = engine.recognise(stored.convert("RGB"))
    left, top, right, bottom = as_stored.box
    assert upright.box == pytest.approx((1 - right, 1 - bottom, 1 - left, 1 - top), abs=0.03)
    assert upright.box != pytest.approx(as_stored.box, abs=0.03)


def test_boxes_are_normalised_to_the_upright_picture(engine):
    lines = engine.recognise(decode_for_ocr(read_bytes("ocr_english_page.jpg"), engine.config, max_pixels=MAX_PIXELS))
    assert len(lines) == 4
    tops = [line.box[1] for line in lines]
    assert tops == sorted(tops)  # reading order, top to bottom
    assert lines[0].box[1] < 0.3 and lines[-1].box[3] > 0.7  # four lines spread over the page's height


def test_read_runs_the_full_pass_only_when_the_prepass_finds_text(engine):
    config = engine.config
    text = decode_for_ocr(read_bytes("ocr_upside_down_exif3.jpg"), config, max_pixels=MAX_PIXELS)
    result = engine.read(text)
    assert result.has_text and [line.text for line in result.lines] == ["我是中国人"]
    assert result.prepass_seconds > 0 and result.full_seconds > 0
    plain = read_bytes("livephoto_iphone6s_train.jpg")
    small = decode_for_prepass(plain, config, max_pixels=MAX_PIXELS)
    assert max(small.size) == config.prepass_side  # a 12 MP JPEG decoded (draft) and shrunk for the pre-pass
    result = engine.read(decode_for_ocr(plain, config, max_pixels=MAX_PIXELS), prepass_image=small)
    assert (result.has_text, result.lines, result.full_seconds) == (False, [], 0.0)


def test_the_prepass_decodes_an_iphone_heic_from_its_thumbnail(engine):
    data = read_bytes("heic_iphone12pro_orient6_irot_gps.heic")
    # The embedded 320x240 thumbnail, upright (portrait: irot applied), instead of the 12 MP picture.
    assert decode_for_prepass(data, engine.config, max_pixels=MAX_PIXELS).size == (240, 320)
    assert decode_for_ocr(data, engine.config, max_pixels=MAX_PIXELS).size == (720, 960)


@pytest.mark.parametrize("name", TEXT_FREE)
def test_text_free_photos_yield_no_lines(engine, name):
    result = engine.read_file(read_bytes(name), max_pixels=MAX_PIXELS)
    assert result.lines == []
    assert result.has_text == (name in PREPASS_FALSE_POSITIVES)


@pytest.mark.parametrize(("name", "label"), sorted(LABELLED.items()))
def test_labelled_sample_photos_are_read(engine, name, label):
    result = engine.read_file(read_bytes(name), max_pixels=MAX_PIXELS)
    assert label.casefold() in [normalize_text(line.text) for line in result.lines]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("gif_animated.gif", "animated GIF"),
        ("webp_animated.webp", "animated WEBP"),
        ("bad_jpg_zero_bytes.jpg", "empty file"),
        ("bad_jpg_is_text.jpg", "not a readable image"),
        ("bad_jpg_truncated_pixel6.jpg", "truncated"),
        ("bad_heic_truncated.heic", "truncated"),
        ("bomb_jpg_lottapixel.jpg", "decompression bomb"),
    ],
)
def test_unreadable_files_give_a_reason(engine, name, reason):
    with pytest.raises(OcrError, match=reason):
        engine.read_file(read_bytes(name), max_pixels=MAX_PIXELS)


def test_pictures_ocr_cannot_take_give_a_reason(engine):
    with Image.open(MEDIA / "jpg_cmyk.jpg") as cmyk, pytest.raises(OcrError, match="pixel mode CMYK"):
        engine.has_text(cmyk)
    with pytest.raises(OcrError, match="pixel mode I;16"):
        engine.recognise(Image.new("I;16", (64, 64)))
    with pytest.raises(OcrError, match="too small"):
        engine.recognise(Image.new("RGB", (400, 10)))
    with Image.open(MEDIA / "gif_animated.gif") as animation, pytest.raises(OcrError, match="animated GIF"):
        engine.has_text(animation)
    with pytest.raises(OcrError, match="not a picture"):
        engine.has_text(b"\xff\xd8")  # type: ignore[arg-type]


def test_a_picture_above_the_pixel_limit_is_refused():
    small_limit = OcrEngine(OcrConfig(max_pixels=1_000_000))
    with pytest.raises(OcrError, match="too large for OCR"):
        small_limit.has_text(Image.new("RGB", (1200, 1000)))


def test_a_failure_inside_the_runtime_becomes_an_ocr_error():
    broken = OcrEngine().load()
    # The recognition model where the detector's should be: ONNX Runtime itself rejects the detector's input.
    broken._ocr.text_det.infer = broken._ocr.text_rec.session
    with pytest.raises(OcrError, match="OCR runtime failed"):
        broken.has_text(Image.new("RGB", (640, 480), "white"))

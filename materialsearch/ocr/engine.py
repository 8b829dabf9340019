"""Read the text in photos: a cheap "is there text at all?" pre-pass, then detection + recognition.

The engine is RapidOCR (``rapidocr-onnxruntime``, pinned in requirements.txt): PP-OCRv4 Chinese + English
detection and recognition models shipped inside its wheel, run on ONNX Runtime; nothing is downloaded.

Input is an upright picture: orientation (EXIF 1–8, HEIC ``irot``) is the decoder's job, so text stored upside
down in the pixels of an EXIF-3 photo comes out right side up. ``decode_for_prepass`` and ``decode_for_ocr``
decode a file at the sizes each step needs (JPEG draft mode; the HEIC thumbnail for the pre-pass only).

Sizes and thresholds below were measured on the shared sample photos (the ``ocr_*`` text photos and the
text-free ones); the numbers are in the docstrings of ``OcrConfig``.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time

import numpy as np
from PIL import Image

from materialsearch.media.decode import DecodeError, configure_pillow, decode_image

# Formats whose multi-frame files are animations (a multi-image HEIF is a photo plus edits or a burst: its
# primary image is read). The text of one frame of an animation is not the item's text, so they are refused.
ANIMATION_FORMATS = frozenset({"GIF", "WEBP", "PNG"})


class OcrError(Exception):
    """A picture OCR cannot read; ``str(err)`` is a one-line reason for the user."""


@dataclasses.dataclass(frozen=True)
class OcrConfig:
    """How the OCR engine runs. Defaults are the measured choices (see each field)."""

    # Long side (px) of the picture given to full detection + recognition. Recall on the shared text photos was
    # the same at 960, 1280 and 1600 px while CPU time per 12 MP photo roughly doubled each step (≈0.5 s, 1.1 s,
    # 2.4 s on one core), so 960: a phone document photo at 960 px still has ~14 px characters.
    long_side: int = 960
    # Long side (px) the detector sees in the pre-pass: ≈25 ms of one core on a 12 MP photo's downscale, and
    # every shared text photo is still found (256 px costs ≈15 ms; 480 px ≈55 ms). The detector stays fp32:
    # ONNX Runtime's dynamic int8 (ConvInteger) ran it 1.5x slower here and moved up to 2.6 % of its text pixels.
    prepass_side: int = 320
    # A pre-pass region counts as text when the detector's mean probability inside it reaches this (DB's own
    # box threshold). Shared text photos scored ≥ 0.72 at 320 px; text-free photos produced no region at all.
    prepass_box_score: float = 0.5
    # Recognised lines below this confidence are dropped. Junk on text-free photos scored at most 0.52 (a hand-
    # drawn arrow read as "L"); real lines on the shared text photos scored ≥ 0.81, except two half-garbled
    # ones (0.56, 0.57).
    min_confidence: float = 0.6
    # Pictures whose short side is below this hold no readable text (PP-OCR needs ~10 px high characters).
    min_side: int = 16
    # Larger pictures are refused: callers decode at OCR size (``decode_for_ocr``) instead of handing over
    # a full-resolution bitmap.
    max_pixels: int = 50_000_000
    # ONNX Runtime threads per model (the pass's CPU budget).
    threads: int = 1


@dataclasses.dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, axis-aligned box in the upright picture (0–1 of width/height), confidence."""

    text: str
    box: tuple[float, float, float, float]  # left, top, right, bottom
    confidence: float


@dataclasses.dataclass(frozen=True)
class OcrResult:
    """What OCR found in one picture, and what each step took (wall-clock seconds, decoding included)."""

    has_text: bool  # the pre-pass verdict; False means the full pass did not run
    lines: list[OcrLine]
    prepass_seconds: float
    full_seconds: float  # 0.0 when the full pass did not run


def _check_picture(image: Image.Image, config: OcrConfig) -> None:
    if not isinstance(image, Image.Image):
        raise OcrError(f"not a picture ({type(image).__name__})")
    _check_animation(image)
    if image.mode not in {"RGB", "L"}:
        raise OcrError(f"unsupported pixel mode {image.mode}: OCR reads 8-bit RGB (decode_image converts)")
    width, height = image.size
    if min(width, height) < config.min_side:
        raise OcrError(f"too small to hold readable text ({width}x{height}, under {config.min_side} px)")
    if width * height > config.max_pixels:
        raise OcrError(
            f"too large for OCR ({width}x{height}, above {config.max_pixels / 1e6:.0f} MP): decode at OCR size"
        )


def _to_bgr(image: Image.Image, long_side: int) -> np.ndarray:
    """The picture as the BGR uint8 array OpenCV/RapidOCR expect, shrunk to ``long_side`` if larger."""
    import cv2

    array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    height, width = array.shape[:2]
    scale = long_side / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(array, cv2.COLOR_RGB2BGR)


def _detector_input(bgr: np.ndarray) -> np.ndarray:
    """PP-OCR detector preprocessing: sides rounded to multiples of 32, scaled to [-1, 1], NCHW float32."""
    import cv2

    height, width = bgr.shape[:2]
    size = (max(32, round(width / 32) * 32), max(32, round(height / 32) * 32))
    resized = cv2.resize(bgr, size)
    return ((resized.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]


class OcrEngine:
    """RapidOCR with a detector-only pre-pass. ``load()`` once, then ``read`` from any number of threads in turn."""

    def __init__(self, config: OcrConfig | None = None) -> None:
        self.config = config or OcrConfig()
        self._ocr = None
        self._lock = threading.Lock()  # RapidOCR keeps per-call state on its detector: one call at a time
        self._loading = threading.Lock()  # the scan's decode threads may ask for it at once: build it once

    def load(self) -> OcrEngine:
        """Build the ONNX Runtime sessions from the models inside the rapidocr wheel (≈1 s)."""
        with self._loading:
            self._load()
        return self

    def _load(self) -> None:
        if self._ocr is None:
            from rapidocr_onnxruntime import RapidOCR

            threads = self.config.threads
            self._ocr = RapidOCR(
                # Confidence filtering is ours (OcrConfig.min_confidence), so RapidOCR keeps every line.
                text_score=0.0,
                # Detect at the picture's own size (≤ long_side): the default upsizes the short side to 736 px.
                det_limit_type="max",
                det_limit_side_len=self.config.long_side,
                max_side_len=self.config.long_side,
                # One line per recognizer run: a batch pads every line to its widest, and the shared text photos'
                # recognition took 4.4 s at RapidOCR's 6 against 2.0–2.4 s at 1 (one AVX2 EPYC core), with the
                # spaces of long English lines read right ("set that contains", not "setthat contains").
                rec_batch_num=1,
                # The angle classifier turns a line over only when this sure it is upside down. At RapidOCR's 0.9
                # it turned right-side-up lines over: 14 of the 15 MANIFEST phrases of the shared text photos
                # were read upright, 12 with the photos turned 180° in their pixels; at 0.99, 15 and 12. (Without
                # the classifier: 15 and 0.)
                cls_thresh=0.99,
                intra_op_num_threads=threads,
                inter_op_num_threads=1,
            )

    def _engine(self):
        if self._ocr is None:
            self.load()
        return self._ocr

    def has_text(self, image: Image.Image) -> bool:
        """The pre-pass: whether the detector, at ``prepass_side`` px, finds any text region."""
        _check_picture(image, self.config)
        ocr = self._engine()
        bgr = _to_bgr(image, self.config.prepass_side)
        try:
            with self._lock:
                probability = ocr.text_det.infer(_detector_input(bgr))[0]
                _, scores = ocr.text_det.postprocess_op(probability, bgr.shape[:2])
        except Exception as exc:  # any runtime failure is this picture's OCR error
            raise OcrError(f"OCR runtime failed on this picture ({_short(exc)})") from exc
        return any(score >= self.config.prepass_box_score for score in scores)

    def scan_verdict(self, data: bytes, image: Image.Image, original_long_side: int) -> bool | None:
        """The pre-pass on a picture the scan has already decoded (``data`` is its file), so the OCR pass need not
        decode it again: whether it holds text, or None when the OCR pass must see the file itself — an animation,
        a picture too small or too large for OCR, a decode smaller than the pre-pass needs, or an OCR failure (the
        pass then records why)."""
        if max(image.size) < min(self.config.prepass_side, original_long_side):
            return None
        try:
            _refuse_animation(data)
            return self.has_text(image)
        except OcrError:
            return None

    def recognise(self, image: Image.Image) -> list[OcrLine]:
        """Full detection + recognition at ``long_side`` px; lines under ``min_confidence`` or empty are dropped."""
        _check_picture(image, self.config)
        ocr = self._engine()
        bgr = _to_bgr(image, self.config.long_side)
        height, width = bgr.shape[:2]
        try:
            with self._lock:
                found, _ = ocr(bgr)
        except Exception as exc:  # ONNX Runtime / OpenCV errors become this picture's OCR error
            raise OcrError(f"OCR runtime failed on this picture ({_short(exc)})") from exc
        lines = []
        for quad, text, confidence in found or []:
            text = text.strip()
            if not text or float(confidence) < self.config.min_confidence:
                continue
            points = np.asarray(quad, dtype=np.float64)
            box = (
                float(np.clip(points[:, 0].min() / width, 0.0, 1.0)),
                float(np.clip(points[:, 1].min() / height, 0.0, 1.0)),
                float(np.clip(points[:, 0].max() / width, 0.0, 1.0)),
                float(np.clip(points[:, 1].max() / height, 0.0, 1.0)),
            )
            lines.append(OcrLine(text, box, round(float(confidence), 4)))
        return lines

    def read(self, image: Image.Image, prepass_image: Image.Image | None = None) -> OcrResult:
        """Pre-pass, then (only when it finds text) the full pass; ``prepass_image`` may be a smaller decode."""
        started = time.perf_counter()
        if not self.has_text(prepass_image if prepass_image is not None else image):
            return OcrResult(False, [], time.perf_counter() - started, 0.0)
        middle = time.perf_counter()
        lines = self.recognise(image)
        return OcrResult(True, lines, middle - started, time.perf_counter() - middle)

    def read_file(self, data: bytes, *, max_pixels: int, has_text: bool = False) -> OcrResult:
        """Decode a whole file small for the pre-pass and, only when it finds text, again at OCR size; read it.

        ``has_text``: the scan's pre-pass already found text in this file, so go straight to the full pass.
        """
        started = time.perf_counter()
        _refuse_animation(data)
        if not has_text and not self.has_text(decode_for_prepass(data, self.config, max_pixels=max_pixels)):
            return OcrResult(False, [], time.perf_counter() - started, 0.0)
        middle = time.perf_counter()
        lines = self.recognise(decode_for_ocr(data, self.config, max_pixels=max_pixels))
        return OcrResult(True, lines, middle - started, time.perf_counter() - middle)


def decode_for_prepass(data: bytes, config: OcrConfig, *, max_pixels: int) -> Image.Image:
    """The upright picture at about ``prepass_side`` px: JPEG draft at 1/8 of a 12 MP photo, the HEIC thumbnail."""
    # Half the side on the short edge admits the 320x240 (or 320x180) thumbnail an iPhone embeds in its HEICs.
    return _decode(
        data, min_side=config.prepass_side // 2, long_side=config.prepass_side, max_pixels=max_pixels, thumbnail=True
    )


def decode_for_ocr(data: bytes, config: OcrConfig, *, max_pixels: int) -> Image.Image:
    """The upright picture at ``long_side`` px (JPEG draft mode; never a HEIC thumbnail, too small to read)."""
    return _decode(data, min_side=1, long_side=config.long_side, max_pixels=max_pixels, thumbnail=False)


def _refuse_animation(data: bytes) -> None:
    """OcrError for an animated GIF/WebP/APNG (the decoder hands over its first frame as a still picture)."""
    configure_pillow()
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_animation(image)
    except (OSError, SyntaxError, ValueError):
        return  # unreadable: decode_image gives the precise reason


def _check_animation(image: Image.Image) -> None:
    if getattr(image, "is_animated", False) and image.format in ANIMATION_FORMATS:
        raise OcrError(f"animated {image.format}: OCR reads still pictures")


def _decode(data: bytes, *, min_side: int, long_side: int, max_pixels: int, thumbnail: bool) -> Image.Image:
    try:
        decoded = decode_image(
            data, min_side=min_side, min_long_side=long_side, max_pixels=max_pixels, heif_thumbnail=thumbnail
        )
    except DecodeError as exc:
        raise OcrError(str(exc)) from None
    image = decoded.image
    if max(image.size) > long_side:
        image.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
    return image


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[-1] if text else type(exc).__name__)[:200]

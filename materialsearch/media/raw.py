"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2) through LibRaw (rawpy): what ``decode`` needs of them.

LibRaw finds the largest embedded preview — a full-size or large JPEG in most cameras' files — which decodes in
milliseconds, where developing the sensor data takes seconds; ``decode`` uses the preview and develops only a file
without a usable one. The picture is turned upright by the RAW's own orientation (the preview usually carries
none). Whatever LibRaw cannot read is a ``RawError`` with the reason and its code.
"""

from __future__ import annotations

import io

import numpy as np
import rawpy
from PIL import Image

from materialsearch.errors import ProblemCode

# First bytes of the RAW formats that are not TIFF-based (RAF, ORF, RW2); CR3 is ISO media of brand "crx ".
RAW_SIGNATURES = (b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")
CR3_BRAND = b"ftypcrx "
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")  # DNG, CR2, NEF, ARW… and every plain TIFF
# LibRaw's ``flip`` (what the RAW's orientation says) as the turn that makes the picture upright.
UPRIGHT = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


class RawError(Exception):
    """A camera RAW LibRaw cannot read; ``str(err)`` is the reason, ``code`` its stable code."""

    def __init__(self, message: str, code: ProblemCode):
        super().__init__(message)
        self.code = code


def open_camera_raw(data: bytes) -> rawpy.RawPy | None:
    """LibRaw's reading of ``data`` when it is a camera RAW; None for every other file (a plain TIFF included)."""
    tiff = data.startswith(TIFF_SIGNATURES)
    if not (tiff or data.startswith(RAW_SIGNATURES) or data[4:12] == CR3_BRAND):
        return None
    try:
        return rawpy.imread(io.BytesIO(data))
    except rawpy.LibRawFileUnsupportedError:
        if tiff:
            return None  # an ordinary TIFF: Pillow reads it
        raise RawError(
            "not a readable camera RAW (LibRaw does not know this camera or format)", ProblemCode.UNSUPPORTED_FORMAT
        ) from None
    except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
        raise RawError(f"truncated or corrupt camera RAW ({_reason(exc)})", ProblemCode.CORRUPT_IMAGE) from None


def displayed_size(raw: rawpy.RawPy) -> tuple[int, int]:
    """Width and height of the sensor's picture as displayed (orientation applied)."""
    sizes = raw.sizes
    return (sizes.height, sizes.width) if sizes.flip in (5, 6) else (sizes.width, sizes.height)


def sensor_pixels(raw: rawpy.RawPy) -> int:
    """How many pixels developing the sensor data makes (checked against MS_MAX_IMAGE_PIXELS first)."""
    return raw.sizes.width * raw.sizes.height


def embedded_preview(raw: rawpy.RawPy) -> bytes | Image.Image | None:
    """The largest embedded preview: JPEG bytes, an RGB bitmap, or None when there is none LibRaw hands out."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError, rawpy.LibRawDataError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return thumb.data
    return Image.fromarray(np.ascontiguousarray(thumb.data))


def upright(image: Image.Image, raw: rawpy.RawPy) -> Image.Image:
    """``image`` (a preview, as stored) turned the way the RAW's orientation says."""
    turn = UPRIGHT.get(raw.sizes.flip)
    return image.transpose(turn) if turn is not None else image


def develop(raw: rawpy.RawPy) -> Image.Image:
    """The sensor data demosaiced at half size with the camera's white balance (LibRaw turns it upright)."""
    try:
        pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
    except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
        raise RawError(
            f"camera RAW without a usable preview, and its sensor data cannot be read ({_reason(exc)})",
            ProblemCode.RAW_NO_PREVIEW,
        ) from None
    except MemoryError:
        raise RawError("not enough memory to develop this camera RAW", ProblemCode.OUT_OF_MEMORY) from None
    return Image.fromarray(pixels)


def _reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else type(exc).__name__
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)).strip()

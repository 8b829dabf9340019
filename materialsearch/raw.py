"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2): indexed from the preview the camera embedded.

LibRaw (through rawpy) finds the largest embedded preview — a full-size or large JPEG in most cameras' files —
which decodes in milliseconds, where developing the sensor data takes seconds. The picture is turned upright by
the RAW's own orientation (the preview usually carries none). Only a file without a usable preview is developed,
at half size. Whatever LibRaw cannot read is a DecodeError with the reason.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import rawpy
from PIL import Image

from .decode import DecodedImage, DecodeError, capture_time, orientation_of, to_rgb
from .errors import ProblemCode

# First bytes of the RAW formats that are not TIFF-based (RAF, ORF, RW2); CR3 is ISO media of brand "crx ".
RAW_SIGNATURES = (b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")
CR3_BRAND = b"ftypcrx "
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")  # DNG, CR2, NEF, ARW… and every plain TIFF
# LibRaw's ``flip`` (what the RAW's orientation says) as the turn that makes the picture upright.
UPRIGHT = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


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
        raise DecodeError(
            "not a readable camera RAW (LibRaw does not know this camera or format)", ProblemCode.UNSUPPORTED_FORMAT
        ) from None
    except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
        raise DecodeError(f"truncated or corrupt camera RAW ({_reason(exc)})", ProblemCode.CORRUPT_IMAGE) from None


def decode_raw(
    raw: rawpy.RawPy,
    data: bytes,
    decode_preview: Callable[[bytes], DecodedImage],
    min_side: int,
    max_pixels: int,
) -> DecodedImage:
    """The upright picture of an opened RAW: its embedded preview when that is at least ``min_side`` on its short
    side (``decode_preview`` decodes a JPEG one), else the sensor data developed at half size."""
    with raw:
        sizes = raw.sizes
        width, height = (sizes.height, sizes.width) if sizes.flip in (5, 6) else (sizes.width, sizes.height)
        decoded = _preview(raw, decode_preview)
        if decoded is None or min(decoded.image.size) < min_side:
            if sizes.width * sizes.height > max_pixels:
                raise DecodeError(
                    f"refused as a decompression bomb: the RAW declares {sizes.width}x{sizes.height}, above "
                    f"MS_MAX_IMAGE_PIXELS ({max_pixels / 1e6:.0f} MP)",
                    ProblemCode.IMAGE_TOO_LARGE,
                )
            decoded = _developed(raw, decoded)
    return DecodedImage(decoded.image, width, height, _raw_capture_time(data) or decoded.taken_at)


def _preview(raw: rawpy.RawPy, decode_preview: Callable[[bytes], DecodedImage]) -> DecodedImage | None:
    """The embedded preview, upright; None when there is none LibRaw can hand out, or it does not decode."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError, rawpy.LibRawDataError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            decoded = decode_preview(thumb.data)
        except DecodeError:
            return None  # a broken preview: the sensor data may still be fine
        with Image.open(io.BytesIO(thumb.data)) as header:
            turned = orientation_of(header) != 1  # the preview's own orientation, already applied
    else:  # an uncompressed RGB bitmap
        picture = to_rgb(Image.fromarray(np.ascontiguousarray(thumb.data)))
        decoded, turned = DecodedImage(picture, picture.width, picture.height, None), False
    if not turned and raw.sizes.flip in UPRIGHT:
        decoded.image = decoded.image.transpose(UPRIGHT[raw.sizes.flip])
    return decoded


def _developed(raw: rawpy.RawPy, preview: DecodedImage | None) -> DecodedImage:
    """The sensor data demosaiced at half size with the camera's white balance (LibRaw turns it upright)."""
    try:
        pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, no_auto_bright=False)
    except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
        if preview is not None:
            return preview  # small, but a picture
        raise DecodeError(
            f"camera RAW without a usable preview, and its sensor data cannot be read ({_reason(exc)})",
            ProblemCode.RAW_NO_PREVIEW,
        ) from None
    except MemoryError:
        raise DecodeError("not enough memory to develop this camera RAW", ProblemCode.OUT_OF_MEMORY) from None
    picture = Image.fromarray(pixels)
    return DecodedImage(picture, picture.width, picture.height, preview.taken_at if preview else None)


def _raw_capture_time(data: bytes):
    """The capture time in a TIFF-based RAW's own EXIF (None for other RAWs, or when it has none)."""
    if not data.startswith(TIFF_SIGNATURES):
        return None
    try:
        with Image.open(io.BytesIO(data)) as container:
            return capture_time(container)
    except (OSError, SyntaxError, ValueError):
        return None  # Pillow cannot parse this RAW's container: the preview's EXIF time is used


def _reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else type(exc).__name__
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)).strip()

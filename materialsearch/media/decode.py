"""Decode image files into upright RGB pictures, refusing bad input with a one-line reason.

Handles EXIF orientation 1–8 (and HEIC, where pillow-heif already applies the ``irot`` box and resets the EXIF
orientation, so it must not be applied twice), palette/CMYK/16-bit/alpha modes, animated and multi-image files
(first/primary image only), JPEG draft decoding, and decompression bombs. Camera RAW files are decoded from
their embedded preview (``raw``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import threading

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from materialsearch.errors import ProblemCode
from materialsearch.media.gps import NO_LOCATION, LocationReading, exif_location

# Background for transparent pixels: white, what a viewer shows behind a transparent picture.
ALPHA_BACKGROUND = (255, 255, 255)
EXIF_IFD = 0x8769
TAG_DATETIME_ORIGINAL = 36867
TAG_DATETIME_DIGITIZED = 36868
TAG_DATETIME = 306
TAG_ORIENTATION = 274

_configured = threading.Lock()
_registered = False


class DecodeError(Exception):
    """A file is not a usable image; ``str(err)`` is a one-line reason for the user, ``code`` its stable code."""

    def __init__(self, message: str, code: ProblemCode = ProblemCode.CORRUPT_IMAGE):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class DecodedImage:
    """An upright RGB picture (possibly reduced in size) plus facts about the original."""

    image: Image.Image
    width: int  # of the original, as displayed (orientation applied)
    height: int
    taken_at: dt.datetime | None  # EXIF capture time (camera-local, naive), None when absent
    location: LocationReading = NO_LOCATION  # EXIF GPS, or why it was ignored


def import_before_threads() -> None:
    """Import, in the calling thread, what the decode threads and background jobs import lazily from scipy (the
    thumbnail's pHash: ``scipy.fftpack``; the geocoder: ``scipy.spatial``). scipy's submodules import each other in
    cycles: two threads importing them for the first time at once can hand one of them a half-initialised module
    ("cannot import name 'PytestTester' from partially initialized module"), and that photo was recorded as failed.
    Call once at start-up, before any thread starts."""
    import scipy.fftpack
    import scipy.spatial  # noqa: F401


def configure_pillow() -> None:
    """Register HEIF/AVIF/JPEG XL openers and hand the pixel limit to our own check (call once at start-up)."""
    global _registered
    with _configured:
        if _registered:
            return
        import pillow_heif

        pillow_heif.register_heif_opener()
        try:
            from PIL import AvifImagePlugin  # noqa: F401 - Pillow ≥ 11.2 decodes AVIF itself
        except ImportError:  # pragma: no cover - only on Pillow builds without AVIF
            pillow_heif.register_avif_opener()
        import pillow_jxl  # noqa: F401 - importing it registers Pillow's JPEG XL opener (libjxl via Rust)

        # decode_image checks the declared size against MS_MAX_IMAGE_PIXELS itself (with a clear reason),
        # so Pillow's process-wide default (~179 MP, which rejects real 200 MP phone photos) is lifted.
        Image.MAX_IMAGE_PIXELS = None
        _registered = True


def full_size_pixels(path: str) -> int:
    """The pixels a still file is held at while it is decoded, from its header: its declared size, but 0 for a
    baseline JPEG (draft decodes it small) and for what Pillow cannot open (decoding it will say why)."""
    configure_pillow()
    try:
        with Image.open(path) as image:
            if image.format == "JPEG" and not image.info.get("progressive"):
                return 0  # a progressive JPEG holds all its coefficients whatever the draft size: 2 bytes each
            return image.width * image.height
    except Exception:  # noqa: BLE001 - unreadable, unsupported, a bomb: none of it is decoded at full size
        return 0


def _parse_exif_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("\x00").strip()
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = dt.datetime.strptime(text[:19], fmt)
        except ValueError:
            continue
        return parsed if parsed.year >= 1900 else None
    return None


def capture_time(image: Image.Image) -> dt.datetime | None:
    """EXIF DateTimeOriginal (else DateTimeDigitized, else DateTime), or None."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - malformed EXIF must not sink a readable picture
        return None
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001
        sub = {}
    for value in (sub.get(TAG_DATETIME_ORIGINAL), sub.get(TAG_DATETIME_DIGITIZED), exif.get(TAG_DATETIME)):
        parsed = _parse_exif_datetime(value)
        if parsed is not None:
            return parsed
    return None


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation (1–8) of an opened picture; 1 when it has none or a bad one."""
    try:
        value = image.getexif().get(TAG_ORIENTATION, 1)
    except Exception:  # noqa: BLE001
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


GREY_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def grey_peak(image: Image.Image) -> float:
    """The value a 16-bit / integer / float grey picture's white is scaled from: 65535 for 16-bit (and for 32-bit
    integers above 255), 255 for integers within 8 bits, the brightest value for floats."""
    if image.mode.startswith("I;16"):
        return 65535.0
    brightest = float(image.getextrema()[1])
    if image.mode == "F":
        return max(brightest, 1.0)
    return 65535.0 if brightest > 255 else 255.0


def to_rgb(image: Image.Image, peak: float | None = None) -> Image.Image:
    """Any Pillow mode → 8-bit RGB; transparency is composited on ``ALPHA_BACKGROUND``. A 16-bit / float grey
    picture is scaled from ``peak`` (``grey_peak`` of the picture when None: a band passes its whole picture's)."""
    if image.mode == "RGB":
        return image
    if image.mode in GREY_WIDE_MODES:
        # 16-bit / float grey: scale the real range down to 8 bits instead of clipping at 255.
        array = np.asarray(image, dtype=np.float32)
        if peak is None:
            peak = grey_peak(image)
        grey = np.clip(array * (255.0 / peak), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "CMYK" and image.info.get("icc_profile"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to Pillow's plain conversion below
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "La", "RGBa"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, ALPHA_BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def decode_image(
    data: bytes,
    *,
    min_side: int,
    max_pixels: int,
    min_long_side: int = 0,
    heif_thumbnail: bool = False,
) -> DecodedImage:
    """Decode ``data`` (a whole file) into an upright RGB image.

    The result keeps at least ``min_side`` pixels on its short side and ``min_long_side`` on its long side when
    the original has them: JPEGs use Pillow's draft mode (DCT scaling) to decode no larger than that. With
    ``heif_thumbnail``, a HEIC/HEIF that embeds a thumbnail of at least ``min_side`` on both sides (iPhones store a
    320x240 one) is decoded from it, ~60x faster than the 12 MP picture; ``min_long_side`` is then not honoured.
    Raises DecodeError.
    """
    configure_pillow()
    if not data:
        raise DecodeError("empty file (0 bytes)", ProblemCode.EMPTY_FILE)
    import materialsearch.media.raw as camera_raw  # LibRaw is loaded only once a scan or upload needs it

    try:
        opened = camera_raw.open_camera_raw(data)
    except camera_raw.RawError as exc:
        raise DecodeError(str(exc), exc.code) from None
    if opened is not None:
        return _decode_camera_raw(opened, data, min_side, min_long_side, max_pixels)
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise DecodeError(
            "not a readable image (unrecognised or unsupported format)", ProblemCode.UNSUPPORTED_FORMAT
        ) from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - the limit is lifted in configure_pillow
        raise DecodeError(f"refused as a decompression bomb: {exc}", ProblemCode.IMAGE_TOO_LARGE) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"not a readable image ({_short(exc)})") from None
    try:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise DecodeError(f"invalid image size {width}x{height}")
        if width * height > max_pixels:
            raise DecodeError(
                f"refused as a decompression bomb: declares {width}x{height} "
                f"({width * height / 1e6:.0f} MP), above MS_MAX_IMAGE_PIXELS ({max_pixels / 1e6:.0f} MP)",
                ProblemCode.IMAGE_TOO_LARGE,
            )
        orientation = orientation_of(image)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        taken_at = capture_time(image)
        location = exif_location(image)
        if image.format == "JPEG":
            stored_w, stored_h = image.size
            long_side = max(min_side, min_long_side)
            request = (long_side, min_side) if stored_w >= stored_h else (min_side, long_side)
            image.draft("RGB", request)
        elif image.format in {"HEIF", "AVIF"}:
            _check_heif_items(image)
            if heif_thumbnail:
                # The thumbnail decodes without touching the main picture's data, so a file cut short after
                # its thumbnail would go unnoticed: check the container's boxes reach their declared ends.
                if _isobmff_truncated(data):
                    raise DecodeError("truncated HEIF file (its last box ends past the end of the file)")
                # pillow-heif selects the smallest embedded thumbnail that is a scaled copy (same rotation,
                # crop and colours) at least this large, or leaves the image as it is.
                image.draft("RGB", (min_side, min_side))
        if image.format == "WEBP" and _large_still_webp(image):
            image = _decode_large_webp(image, data, min_side, min_long_side)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DecodeError(f"truncated or corrupt image data ({_short(exc)})") from None
        if image.format != "JPEG":  # a JPEG was decoded small by draft; the others at full size: shrink now
            image = _reduced(image, min_side, min_long_side)
        if orientation != 1:
            image = _upright(image, orientation)
        rgb = to_rgb(image)
        rgb.load()
    except MemoryError:
        image.close()
        raise DecodeError("not enough memory to decode this image", ProblemCode.OUT_OF_MEMORY) from None
    except BaseException:
        image.close()
        raise
    if rgb is not image:
        image.close()
    return DecodedImage(rgb, width, height, taken_at, location)


# Modes reduced as they are: Image.reduce makes no full-size copy of these, and their picture is 1 or 4 bytes a
# pixel. Every other mode is converted to RGB and reduced a band at a time (below), because converting it whole
# costs 4–12 bytes a pixel more: a 240 MP palette or 16-bit grey PNG took a scan to +3.1 GB over the model, an
# RGBA one to +1.8 GB (Image.reduce premultiplies alpha at full size), against +0.9 GB for RGB.
REDUCED_WHOLE_MODES = frozenset({"L", "RGB", "RGBX", "CMYK", "I", "F"})
# Pixels of the original converted at once by a banded reduction: a few MB of band beside the decoded picture.
BAND_PIXELS = 4_000_000
# EXIF orientation → the transpose that makes the picture upright (what ImageOps.exif_transpose does, without
# reading the EXIF again from a picture that has been reduced).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Above this many pixels a still WebP is decoded by OpenCV: Pillow decodes every WebP with libwebp's animation
# decoder (two RGBA canvases), then copies the frame to bytes and into the image, 16 bytes a pixel at the peak in
# a fresh process (a 144 MP WebP: 5 s and +2.2 GB, 1.65 GB held until closed; OpenCV: 2.8 s, +0.86 GB, 6.3 B/px).
LARGE_WEBP_PIXELS = 16_000_000


def _reduced_factor(width: int, height: int, min_side: int, min_long_side: int) -> int:
    """The largest integer factor that keeps ≥ ``min_side`` on the short side and ≥ ``min_long_side`` on the long."""
    short, long = sorted((width, height))
    factor = short // max(min_side, 1)
    if min_long_side:
        factor = min(factor, long // min_long_side)
    return max(factor, 1)


def _reduced(image: Image.Image, min_side: int, min_long_side: int) -> Image.Image:
    """``image`` box-averaged down by an integer factor to what the model and the thumbnail need (as JPEG draft
    decoding does), so a 200 MP picture is held at a few MB through the thumbnail, the OCR look and the model's
    preprocessing instead of at 600 MB; the original is closed. Modes other than ``REDUCED_WHOLE_MODES`` come back
    in RGB, converted band by band on the way."""
    factor = _reduced_factor(*image.size, min_side, min_long_side)
    if factor < 2:
        return image
    smaller = image.reduce(factor) if image.mode in REDUCED_WHOLE_MODES else _reduced_in_bands(image, factor)
    smaller.info = dict(image.info)  # the ICC profile a CMYK picture is converted with
    image.close()
    return smaller


def _reduced_in_bands(image: Image.Image, factor: int) -> Image.Image:
    """``to_rgb(image).reduce(factor)`` without the full-size RGB copy: bands of whole ``factor``-row blocks, so
    every output pixel averages the same block it would in one reduction."""
    width, height = image.size
    peak = grey_peak(image) if image.mode in GREY_WIDE_MODES else None
    band = factor * max(1, BAND_PIXELS // (width * factor))
    smaller = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, band):
        with image.crop((0, top, width, min(top + band, height))) as piece:
            rgb = to_rgb(piece, peak)
            smaller.paste(rgb.reduce(factor), (0, top // factor))
            rgb.close()
    return smaller


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = UPRIGHT.get(orientation)
    if method is None:
        return image
    upright = image.transpose(method)
    upright.info = dict(image.info)
    image.close()
    return upright


def _large_still_webp(image: Image.Image) -> bool:
    width, height = image.size
    return width * height > LARGE_WEBP_PIXELS and not getattr(image, "is_animated", False)


def _decode_large_webp(image: Image.Image, data: bytes, min_side: int, min_long_side: int) -> Image.Image:
    """A large still WebP decoded straight to the size needed by libwebp's scaler (area averaging), else by OpenCV
    and shrunk the same way (alpha kept)."""
    import cv2

    from materialsearch.media.webp import decode_scaled

    width, height = image.size
    factor = _reduced_factor(width, height, min_side, min_long_side)
    alpha = image.mode == "RGBA"
    scaled = decode_scaled(data, -(-width // factor), -(-height // factor), alpha)
    if scaled is not None:
        decoded = Image.fromarray(scaled, "RGBA" if alpha else "RGB")
        decoded.info = dict(image.info)
        decoded.format = image.format
        image.close()
        return decoded
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.ndim not in (2, 3):
        return image  # OpenCV cannot read it: Pillow decodes it (and says why when it cannot either)
    height, width = pixels.shape[:2]
    factor = _reduced_factor(width, height, min_side, min_long_side)
    if factor >= 2:
        size = (-(-width // factor), -(-height // factor))  # rounded up, as Image.reduce does
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    if pixels.ndim == 2:
        decoded = Image.fromarray(pixels, "L")
    elif pixels.shape[2] == 4:
        decoded = Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA), "RGBA")
    else:
        decoded = Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), "RGB")
    decoded.info = dict(image.info)
    decoded.format = image.format
    image.close()
    return decoded


def _decode_camera_raw(opened, data: bytes, min_side: int, min_long_side: int, max_pixels: int) -> DecodedImage:
    """A camera RAW (opened by LibRaw) from its embedded preview when that is at least ``min_side`` on its short
    side, upright by the RAW's orientation unless the preview carries its own; else developed at half size."""
    from materialsearch.media import raw as camera_raw

    with opened:
        width, height = camera_raw.displayed_size(opened)  # before developing, which changes LibRaw's sizes
        decoded = None
        preview = camera_raw.embedded_preview(opened)
        if isinstance(preview, bytes):
            try:
                decoded = decode_image(preview, min_side=min_side, min_long_side=min_long_side, max_pixels=max_pixels)
            except DecodeError:
                decoded = None  # a broken preview: the sensor data may still be fine
            else:
                with Image.open(io.BytesIO(preview)) as header:
                    if orientation_of(header) == 1:  # else the preview's own orientation is already applied
                        decoded.image = camera_raw.upright(decoded.image, opened)
        elif preview is not None:
            picture = to_rgb(camera_raw.upright(preview, opened))
            decoded = DecodedImage(picture, picture.width, picture.height, None)
        if decoded is None or min(decoded.image.size) < min_side:
            if camera_raw.sensor_pixels(opened) > max_pixels:
                raise DecodeError(
                    f"refused as a decompression bomb: the RAW's sensor picture is above MS_MAX_IMAGE_PIXELS "
                    f"({max_pixels / 1e6:.0f} MP)",
                    ProblemCode.IMAGE_TOO_LARGE,
                )
            try:
                picture = camera_raw.develop(opened)
            except camera_raw.RawError as exc:
                if decoded is None:
                    raise DecodeError(str(exc), exc.code) from None
            else:
                decoded = DecodedImage(picture, picture.width, picture.height, decoded.taken_at if decoded else None)
    taken_at = capture_time_of_tiff(data) if data.startswith(camera_raw.TIFF_SIGNATURES) else None
    return DecodedImage(decoded.image, width, height, taken_at or decoded.taken_at)


def capture_time_of_tiff(data: bytes) -> dt.datetime | None:
    """The capture time in a TIFF-based file's own EXIF (a DNG, CR2, NEF…), or None."""
    try:
        with Image.open(io.BytesIO(data)) as container:
            return capture_time(container)
    except (OSError, SyntaxError, ValueError):
        return None  # Pillow cannot parse this RAW's container: the preview's EXIF time is used


def decode_sizes(settings, input_size: int) -> dict[str, int]:
    """``decode_image`` size arguments: the model squashes to its square input (``input_size`` on a side), the
    thumbnail needs its long side; HEIC/HEIF from their embedded thumbnail when MS_HEIC_THUMBNAIL allows (the same
    for scanning and searching)."""
    return {
        "min_side": input_size,
        "min_long_side": settings.thumbnail_size,
        "heif_thumbnail": settings.heic_thumbnail,
    }


# A HEIF holding several top-level images (bursts, edits) is checked beyond its primary image, up to this many
# items, so a truncated copy is reported instead of indexed; the cap keeps huge sequences cheap.
HEIF_ITEMS_CHECKED = 4


def _check_heif_items(image: Image.Image) -> None:
    frames = getattr(image, "n_frames", 1)
    if frames <= 1:
        return
    primary = image.tell()
    try:
        for index in range(min(frames, HEIF_ITEMS_CHECKED)):
            if index != primary:
                image.seek(index)
                image.load()
    except (OSError, ValueError, EOFError) as exc:
        raise DecodeError(f"truncated or corrupt HEIF file (image {index + 1} of {frames}: {_short(exc)})") from None
    finally:
        image.seek(primary)


def _isobmff_truncated(data: bytes) -> bool:
    """Whether the top-level boxes of an ISO-BMFF file (HEIF, AVIF) declare more bytes than the file holds."""
    offset, end = 0, len(data)
    while offset + 8 <= end:
        size = int.from_bytes(data[offset : offset + 4], "big")
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if offset + 16 > end:
                return True
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
            header = 16
        elif size == 0:  # the box runs to the end of the file
            return False
        if size < header:
            return True  # malformed: let the caller report it as truncated or corrupt
        offset += size
    return offset > end


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def render(decoded: DecodedImage, max_side: int) -> Image.Image:
    """A copy of the decoded picture whose longest edge is at most ``max_side`` (for thumbnails and previews)."""
    image = decoded.image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    """JPEG bytes of an RGB image."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=False, progressive=False)
    return out.getvalue()

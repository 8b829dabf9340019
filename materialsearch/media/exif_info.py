"""What the viewer's info panel shows about a file, read on demand from the file itself (read-only).

Photos: the EXIF that Pillow reads (HEIC/AVIF through pillow-heif, registered by ``decode.configure_pillow``) —
camera, lens, exposure, GPS as decimal degrees — and the upright pixel size. Videos: what PyAV's probe gives
(size, duration, codec, container, audio) and the QuickTime/MP4 location when present. Both: the file's size now.
A value the file does not carry is left out; a file that cannot be read gives its reason instead.
"""

from __future__ import annotations

import dataclasses
import math
import os

import av
from PIL import Image, UnidentifiedImageError
from PIL.ExifTags import GPS, IFD, Base

from materialsearch.catalog.records import Kind
from materialsearch.media.capture_time import LOCATION_KEYS, coordinate_problem, parse_iso6709
from materialsearch.media.video import VideoError, probe

SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the picture a quarter: width and height swap


@dataclasses.dataclass
class FileFacts:
    """The info panel's facts (None: the file does not say)."""

    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None  # mm
    focal_length_35mm: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None  # metres above sea level
    duration: float | None = None  # seconds
    codec: str | None = None
    container: str | None = None
    has_audio: bool | None = None
    error: str | None = None

    def given(self) -> dict:
        """The facts that are known."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def media_info(path: str, kind: str) -> FileFacts:
    """The info of the file at ``path`` (a photo or a video)."""
    info = FileFacts()
    try:
        info.file_size = os.stat(path).st_size
        if kind == Kind.VIDEO:
            _video_info(path, info)
        else:
            _photo_info(path, info)
    except (OSError, UnidentifiedImageError, VideoError, av.FFmpegError, ValueError) as exc:
        info.error = f"cannot read the file: {exc}"
    return info


def _photo_info(path: str, info: FileFacts) -> None:
    with Image.open(path) as image:  # reads the header and metadata, not the pixels
        exif = image.getexif()
        width, height = image.size
        if exif.get(Base.Orientation) in SWAPPED_ORIENTATIONS:
            width, height = height, width
        info.width, info.height = width, height
        sub = exif.get_ifd(IFD.Exif)
        gps = exif.get_ifd(IFD.GPSInfo)
    info.camera_make = _text(exif.get(Base.Make))
    info.camera_model = _text(exif.get(Base.Model))
    lens = _text(sub.get(Base.LensModel))
    lens_make = _text(sub.get(Base.LensMake))
    info.lens = f"{lens_make} {lens}" if lens and lens_make and not lens.startswith(lens_make) else lens
    info.exposure_time = _number(sub.get(Base.ExposureTime))
    info.f_number = _number(sub.get(Base.FNumber))
    iso = sub.get(Base.ISOSpeedRatings)
    iso = iso[0] if isinstance(iso, tuple) and iso else iso
    info.iso = int(iso) if isinstance(iso, int) and iso > 0 else None
    info.focal_length = _number(sub.get(Base.FocalLength))
    focal_35 = sub.get(Base.FocalLengthIn35mmFilm)
    info.focal_length_35mm = int(focal_35) if isinstance(focal_35, int) and focal_35 > 0 else None
    latitude = _degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), "S")
    longitude = _degrees(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), "W")
    # The scan's rule for a usable position (0,0 is an unset one): the panel shows no position the app ignores.
    if latitude is not None and longitude is not None and coordinate_problem(latitude, longitude) is None:
        info.latitude, info.longitude = round(latitude, 7), round(longitude, 7)
        altitude = _number(gps.get(GPS.GPSAltitude))
        if altitude is not None:
            below = gps.get(GPS.GPSAltitudeRef) in (1, b"\x01")
            info.altitude = round(-altitude if below else altitude, 2)


def _video_info(path: str, info: FileFacts) -> None:
    found = probe(path)
    info.width, info.height = found.width, found.height
    info.duration = found.duration_ms / 1000 if found.duration_ms is not None else None
    info.codec, info.container, info.has_audio = found.codec, found.container, found.has_audio
    with av.open(path) as container:
        metadata = {**container.metadata, **(container.streams.video[0].metadata if container.streams.video else {})}
    location = next((parse_iso6709(metadata.get(key)) for key in LOCATION_KEYS if metadata.get(key)), None)
    if location is not None and coordinate_problem(*location) is None:
        info.latitude, info.longitude = location


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00 ").strip()
    return value or None


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(number, 6) if math.isfinite(number) and number >= 0 else None


def _degrees(value, ref, negative: str) -> float | None:
    """Decimal degrees from EXIF (degrees, minutes, seconds) rationals and their N/S or E/W reference."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_number(v) for v in value]
    if any(p is None for p in parts):
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    ref = _text(ref)
    return -degrees if ref and ref.upper().startswith(negative) else degrees

"""Where a photo or video was taken: GPS coordinates from EXIF (JPEG, HEIC, …) and QuickTime/MP4 location atoms.

Each reader gives a ``LocationReading``: usable coordinates, or none with the reason they were ignored (0,0 is what
an unset GPS reads as; out-of-range and NaN values come from broken writers). Reading never raises for the file:
bad metadata costs its location only, never the scan. The rule for usable coordinates is ``coordinate_problem``
in ``capture_time`` (stated once, also used for video time zones).
"""

from __future__ import annotations

import dataclasses
import logging
import math

from PIL import Image

from materialsearch.media.capture_time import LOCATION_KEYS, coordinate_problem, read_iso6709

log = logging.getLogger(__name__)

GPS_IFD = 0x8825
TAG_LATITUDE_REF, TAG_LATITUDE, TAG_LONGITUDE_REF, TAG_LONGITUDE = 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class LocationReading:
    """What a file says about its place: ``latitude``/``longitude`` when usable, else ``note`` says why not
    (both None: the file carries no location at all)."""

    latitude: float | None = None
    longitude: float | None = None
    note: str | None = None

    @property
    def found(self) -> bool:
        """Whether usable coordinates were read."""
        return self.latitude is not None


NO_LOCATION = LocationReading()


def _checked(latitude: float, longitude: float, source: str) -> LocationReading:
    problem = coordinate_problem(latitude, longitude)
    if problem:
        log.info("ignoring the %s location %r,%r: %s", source, latitude, longitude, problem)
        return LocationReading(note=f"{source} location ignored: {problem}")
    return LocationReading(round(latitude, 6), round(longitude, 6))


def _degrees(value: object) -> float:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals (or a single number); NaN when unreadable."""
    try:
        parts = [float(part) for part in value] if isinstance(value, tuple | list) else [float(value)]
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan
    if not parts or len(parts) > 3:
        return math.nan
    return sum(part / 60**index for index, part in enumerate(parts))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    return str(value or "").strip().rstrip("\x00").upper()


def exif_location(image: Image.Image) -> LocationReading:
    """The GPS position in a picture's EXIF (Pillow reads it for JPEG, HEIC/HEIF, TIFF, WebP, PNG)."""
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF must not sink a readable picture
        return LocationReading(note=f"EXIF GPS unreadable ({type(exc).__name__})")
    if TAG_LATITUDE not in gps or TAG_LONGITUDE not in gps:
        return NO_LOCATION
    latitude, longitude = _degrees(gps[TAG_LATITUDE]), _degrees(gps[TAG_LONGITUDE])
    if _text(gps.get(TAG_LATITUDE_REF)) == "S":
        latitude = -latitude
    if _text(gps.get(TAG_LONGITUDE_REF)) == "W":
        longitude = -longitude
    return _checked(latitude, longitude, "EXIF GPS")


def video_location(metadata: dict[str, str]) -> LocationReading:
    """The ISO 6709 location of a QuickTime/MP4 file (Apple's key, Android's ``location``, ``©xyz``)."""
    for key in LOCATION_KEYS:
        text = metadata.get(key)
        if not text:
            continue
        coordinates = read_iso6709(text)
        if coordinates is None:
            log.info("ignoring the unreadable %s %r", key, text)
            return LocationReading(note=f"{key} location ignored: not ISO 6709 ({text[:40]!r})")
        return _checked(*coordinates, key)
    return NO_LOCATION

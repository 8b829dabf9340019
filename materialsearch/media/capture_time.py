"""When a video was shot, as the wall-clock time where it was shot — the same clock photos' EXIF dates use.

Photo EXIF dates (DateTimeOriginal) are camera-local wall clock, while most video containers store
``creation_time`` in UTC. Converting that with the server's time zone shifts every video by hours in a container
without ``TZ``. So the offset the file itself carries wins, in this order:
1. Apple's ``com.apple.quicktime.creationdate`` (local time with its UTC offset): its wall clock as written;
2. ``creation_time`` (UTC) converted to the time zone *at the place the video was shot*, from the file's
   ISO 6709 location (Apple's ``com.apple.quicktime.location.ISO6709``, Android's ``location``/``©xyz``), looked up
   offline (tzfpy, time-zone boundaries of OpenStreetMap data);
3. ``creation_time`` converted to the fallback zone: ``MS_TIMEZONE`` when set, else the process's local zone
   (``TZ``; UTC in a container without it).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

APPLE_CREATION_DATE = "com.apple.quicktime.creationdate"
LOCATION_KEYS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng", "©xyz")
# QuickTime's epoch is 1904 and an unset date often reads as 1904 or 1970: not a capture time.
EARLIEST_YEAR = 1971
# ISO 6709 as cameras write it: ±DD.DDDD±DDD.DDDD, optional altitude, optional trailing slash.
_ISO6709 = re.compile(r"^\s*([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?/?\s*$")


def coordinate_problem(latitude: float, longitude: float) -> str | None:
    """Why a (latitude, longitude) pair is no real position, or None when it is usable.

    0,0 is what an unset location reads as; out-of-range and non-finite values come from broken writers.
    """
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return "not a number"
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return "out of range"
    if latitude == 0 and longitude == 0:
        return "0,0 (an unset position)"
    return None


def read_iso6709(text: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) as an ISO 6709 string such as ``+51.5334-000.1255+026.756/`` writes them, unchecked;
    None when it is not ISO 6709."""
    match = _ISO6709.match(text or "")
    return (float(match.group(1)), float(match.group(2))) if match else None


def parse_iso6709(text: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) from an ISO 6709 string; None if unusable (see ``coordinate_problem``)."""
    coordinates = read_iso6709(text)
    if coordinates is None or coordinate_problem(*coordinates):
        return None
    return coordinates


def zone_at(latitude: float, longitude: float) -> ZoneInfo | None:
    """The IANA time zone at a place (offline lookup), or None when it cannot be told."""
    import tzfpy

    name = tzfpy.get_tz(longitude, latitude)
    if not name or name.startswith("Etc/"):  # open sea: a nautical zone says nothing about the clock used
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %s (at %.4f,%.4f) is not in this system's tz database", name, latitude, longitude)
        return None


def fallback_zone(name: str = "") -> dt.tzinfo | None:
    """``MS_TIMEZONE``'s zone, or None for the process's local zone (``TZ``); ValueError for an unknown name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)") from None


def video_capture_time(metadata: dict[str, str], fallback: dt.tzinfo | None = None) -> dt.datetime | None:
    """A video's capture time as naive local wall-clock time where it was shot (see the module doc for the order)."""
    apple = metadata.get(APPLE_CREATION_DATE)
    if apple:
        try:
            return dt.datetime.fromisoformat(apple).replace(tzinfo=None, microsecond=0)
        except ValueError:
            log.info("unreadable %s %r; using creation_time", APPLE_CREATION_DATE, apple)
    raw = metadata.get("creation_time")
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.year < EARLIEST_YEAR:
        return None
    if value.tzinfo is None:  # containers store UTC; a naive value means the writer left the zone out
        value = value.replace(tzinfo=dt.UTC)
    location = next((parse_iso6709(metadata.get(key)) for key in LOCATION_KEYS if metadata.get(key)), None)
    zone = zone_at(*location) if location else None
    local = value.astimezone(zone or fallback)  # astimezone(None) is the process's local zone
    return local.replace(tzinfo=None, microsecond=0)

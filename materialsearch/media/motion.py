"""Moving stills: iPhone Live Photos (a still + a MOV sharing a content identifier) and Android motion photos
(an MP4 stored inside the JPEG/HEIC file, located by its XMP Container directory or MicroVideoOffset).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import struct

from PIL import Image

from materialsearch.media.decode import capture_time

# Live Photo movies last ~3 s; a same-name video longer than this is only paired when the identifiers match.
LIVE_PHOTO_MAX_UNVERIFIED_MS = 6000
# Without identifiers, a Live Photo's still and movie must also be captured this close together (the movie starts
# ~1.5 s before the still; the two clocks are the same phone's).
LIVE_PHOTO_MAX_TIME_GAP_S = 10

_APPLE_MAKERNOTE = b"Apple iOS\x00"
_APPLE_CONTENT_IDENTIFIER_TAG = 0x0011
_EXIF_IFD = 0x8769
_MAKERNOTE_TAG = 0x927C
_XMP_RE = re.compile(rb"<x:xmpmeta.*?</x:xmpmeta>", re.S)
_MOTION_ITEM_RE = re.compile(
    rb'Item:Mime="video/mp4"[^>]*?Item:Semantic="MotionPhoto"[^>]*?Item:Length="(\d+)"'
    rb'|Item:Semantic="MotionPhoto"[^>]*?Item:Mime="video/mp4"[^>]*?Item:Length="(\d+)"'
    rb'|Item:Length="(\d+)"[^>]*?Item:Semantic="MotionPhoto"',
    re.S,
)
_MICRO_VIDEO_OFFSET_RE = re.compile(rb'MicroVideoOffset="(\d+)"|<GCamera:MicroVideoOffset>(\d+)<')


def still_capture_time(data: bytes) -> dt.datetime | None:
    """A still's EXIF capture time (camera-local), read from its header without decoding the pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return capture_time(image)
    except (OSError, ValueError, SyntaxError):
        return None


def still_content_identifier(data: bytes) -> str | None:
    """The Apple content identifier in a still's EXIF MakerNote (tag 0x11), or None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            makernote = image.getexif().get_ifd(_EXIF_IFD).get(_MAKERNOTE_TAG)
    except (OSError, ValueError, SyntaxError):
        return None
    if not isinstance(makernote, bytes) or not makernote.startswith(_APPLE_MAKERNOTE):
        return None
    return _apple_makernote_string(makernote, _APPLE_CONTENT_IDENTIFIER_TAG)


def _apple_makernote_string(note: bytes, wanted_tag: int) -> str | None:
    # "Apple iOS\0", 2-byte version, "MM"/"II", then an IFD whose offsets count from the note's start.
    if len(note) < 16:
        return None
    order = {b"MM": ">", b"II": "<"}.get(note[12:14])
    if order is None:
        return None
    (count,) = struct.unpack_from(order + "H", note, 14)
    for i in range(count):
        start = 16 + i * 12
        if start + 12 > len(note):
            return None
        tag, kind, length = struct.unpack_from(order + "HHI", note, start)
        if tag != wanted_tag or kind != 2:  # 2 = ASCII
            continue
        if length <= 4:
            raw = note[start + 8 : start + 8 + length]
        else:
            (offset,) = struct.unpack_from(order + "I", note, start + 8)
            raw = note[offset : offset + length]
        text = raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
        return text or None
    return None


def embedded_motion_offset(data: bytes) -> int | None:
    """Byte offset of the MP4 inside an Android motion photo (JPEG or HEIC), or None when there is none."""
    xmp = _XMP_RE.search(data[: 1 << 20])
    if xmp is None:
        return None
    block = xmp.group(0)
    length = None
    match = _MOTION_ITEM_RE.search(block)
    if match:
        length = int(next(g for g in match.groups() if g))
    else:
        micro = _MICRO_VIDEO_OFFSET_RE.search(block)
        if micro:
            length = int(next(g for g in micro.groups() if g))
    if not length or length >= len(data):
        return None
    offset = len(data) - length
    # The video part must be an ISO media file: its first box is "ftyp".
    if data[offset + 4 : offset + 8] != b"ftyp":
        return None
    return offset

"""The shared vocabulary of the catalog: what kinds of items and statuses exist, and the records the scan writes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum

import numpy as np

from materialsearch.errors import ProblemCode


class Kind(StrEnum):
    """What an item is (stored in ``items.kind``)."""

    IMAGE = "image"
    VIDEO = "video"


class ItemStatus(StrEnum):
    """Where an item stands (stored in ``items.status``)."""

    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"
    # An item whose vector must be (re)computed on the next scan, e.g. after the model changed.
    PENDING = "pending"
    # A Live Photo's movie: part of its still's item (played as its motion), never a result of its own.
    MOTION = "motion"
    # A camera RAW beside its same-name JPEG/HEIC: part of that photo's item (its original), never a result itself.
    RAW = "raw"


@dataclasses.dataclass(frozen=True)
class FileState:
    """What the database knows about a path, for mark-and-sweep."""

    id: int
    size: int
    mtime_ns: int
    status: ItemStatus
    content_hash: str | None
    pair_path: str | None = None


@dataclasses.dataclass
class ItemRecord:
    """A scanned file's outcome, ready to be written (``vectors`` is empty for errors and skips).

    ``vectors`` holds (time_ms, vector) pairs: time_ms is None for a still, the frame's time for a video.
    """

    path: str
    kind: Kind
    size: int
    mtime_ns: int
    status: ItemStatus
    error: str | None = None
    error_code: ProblemCode | None = None  # the stable code of ``error`` (see errors.ProblemCode)
    content_hash: str | None = None
    taken_at: dt.datetime | None = None
    width: int | None = None
    height: int | None = None
    thumbnail: str | None = None
    vectors: list[tuple[int | None, np.ndarray]] = dataclasses.field(default_factory=list)
    duration_ms: int | None = None
    playable: bool | None = None
    pair_path: str | None = None
    motion_offset: int | None = None
    # Where it was taken (see ``gps`` and ``places``): usable coordinates, or why the file's were ignored;
    # ``location_read`` is None for items indexed before locations were read (the backfill's work list).
    latitude: float | None = None
    longitude: float | None = None
    location_note: str | None = None
    location_read: bool | None = None
    place_city: str | None = None
    place_city_zh: str | None = None
    place_region: str | None = None
    place_country: str | None = None
    has_text: bool | None = None  # the OCR pre-pass's verdict, taken on the scan's decode (see ``ocr``)
    phash: int | None = None  # a photo's thumbnail's pHash, made with it (stored in ``perceptual_hashes``)

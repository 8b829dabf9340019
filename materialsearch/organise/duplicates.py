"""Near-duplicate photos and videos: the stored vectors propose, a perceptual hash of the thumbnail confirms.

Photos. A FAISS range search over every photo's stored vector proposes the pairs at cosine ≥
``PROPOSE_MIN_COSINE`` (each photo keeps at most ``PROPOSE_MAX_NEIGHBOURS``, so a model that maps everything
close together cannot blow up the pair list). CLIP puts copies, resizes and recompressions of a photo at cosine
≈ 0.97-1, but also different photos of the same scene at 0.85-0.95, so the vectors alone cannot tell a burst shot
of the same moment from a re-encode; and a weak model (the tests' tiny random one) puts everything at 0.6-0.999.
So every proposed pair is confirmed by the 64-bit pHash (imagehash's DCT hash) of the two cached thumbnails:
at most ``HASH_MAX_DISTANCE`` differing bits. Measured on a constructed set (tests/duplicate_media.py):
copies, resizes to 30 %, JPEG q35, PNG/WebP conversions and a +15 % brightness edit differ by 0-4 bits, a 3 %
crop by 2-8, a 10 % crop by 16-28; different photos by 18 or more (median 32), different views of one scene by
24 or more. Confirmed pairs are joined into groups (union-find).

Videos. Two videos are the same (another resolution, bitrate or a trim) when the frame sequence of the shorter
one is found in the longer one: at least ``VIDEO_MIN_COVERAGE`` of its sampled frames each match a frame of the
other (vector cosine ≥ ``PROPOSE_MIN_COSINE`` and frame pHash within ``HASH_MAX_DISTANCE``) at one consistent
time offset (within a sampling interval). A shared black intro matches only the intro frames: not enough.

Results are computed on demand and cached keyed on the vectors' checksum (any scan change to the vectors makes
a new key); the hashes are stored in the database per thumbnail version, so they are computed once per file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum

import numpy as np

from materialsearch.catalog.schema import STILL_HASH_TIME
from materialsearch.catalog.similar_pairs import PROPOSE_MIN_COSINE, propose_pairs
from materialsearch.media.decode import DecodeError
from materialsearch.media.thumbnails import phash_of_file
from materialsearch.media.video import VideoError

log = logging.getLogger(__name__)

HASH_MAX_DISTANCE = 10  # of the pHash's 64 bits: at most this many differ for a confirmed pair
HASH_BITS = 64  # imagehash.phash with hash_size 8
VIDEO_MIN_COVERAGE = 0.8  # share of the shorter video's sampled frames found, in order, in the other
VIDEO_MIN_MATCHED_FRAMES = 2  # and at least this many of them (or all of a shorter one)
STILL = STILL_HASH_TIME  # the time of a photo's (not a video frame's) hash

# Camera originals: kept over an export of the same picture at the same size (HEIC over its JPEG export).
ORIGINAL_FORMATS = {".heic", ".heif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf"}
# File names that say "an edited or copied version": iPhone's IMG_E1234, "edited", "copy", "(1)", 副本/编辑.
EDITED_NAME = re.compile(
    r"(^img_e\d)|([ _.-](edit(ed)?|copy|bearbeitet|modifi[ée])\b)|(\(\d+\)$)|(副本|编辑|修改)", re.IGNORECASE
)


class KeeperReason(StrEnum):
    """Why a group's keeper is the best copy: the first merit (in this order) where it beats the runner-up."""

    LARGEST_RESOLUTION = "largest_resolution"
    LONGEST = "longest"
    ORIGINAL_FORMAT = "original_format"
    NOT_EDITED = "not_edited"
    EARLIEST = "earliest"
    LARGEST_FILE = "largest_file"
    FIRST_INDEXED = "first_indexed"


REASON_TEXT = {
    KeeperReason.LARGEST_RESOLUTION: "It has the largest resolution.",
    KeeperReason.LONGEST: "It is the longest (the others are trimmed).",
    KeeperReason.ORIGINAL_FORMAT: "It is the camera original (the others are exports, e.g. JPEG from HEIC).",
    KeeperReason.NOT_EDITED: "It is the original; the others' names mark them as edited copies.",
    KeeperReason.EARLIEST: "It is the earliest (taken or written first).",
    KeeperReason.LARGEST_FILE: "It is the largest file (the least compressed).",
    KeeperReason.FIRST_INDEXED: "They are identical: it was indexed first.",
}


@dataclasses.dataclass(frozen=True)
class CopyFacts:
    """What the keeper choice needs to know about one item (from its row)."""

    id: int
    path: str
    kind: str
    width: int | None
    height: int | None
    size: int
    taken_at: object
    mtime_ns: int
    duration_ms: int | None = None

    @classmethod
    def of(cls, item) -> CopyFacts:
        """From an ``Item`` row."""
        return cls(
            item.id,
            item.path,
            item.kind,
            item.width,
            item.height,
            item.size,
            item.taken_at,
            item.mtime_ns,
            item.duration_ms,
        )


@dataclasses.dataclass(frozen=True)
class Group:
    """Near-identical items: ``ids`` best first (``ids[0]`` is the keeper), and why it is the keeper."""

    kind: str
    ids: tuple[int, ...]
    why: KeeperReason

    @property
    def keeper(self) -> int:
        """The item to keep."""
        return self.ids[0]

    @property
    def others(self) -> tuple[int, ...]:
        """The copies a user may hide or remove with their own tools."""
        return self.ids[1:]


@dataclasses.dataclass(frozen=True)
class Grouping:
    """All groups for one state of the index."""

    groups: tuple[Group, ...]
    compared: int  # items looked at
    proposed: int  # pairs the vectors proposed
    confirmed: int  # of them, confirmed by the hashes
    took_ms: float
    key: str  # the vectors' version they were computed from


# --- confirmation: perceptual hashes -------------------------------------------------------------------------------
def hash_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return (a ^ b).bit_count()


class _Components:
    """Union-find over item ids."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent.setdefault(x, x)
        while parent != x:
            self.parent[x] = self.parent.setdefault(parent, parent)
            x, parent = parent, self.parent[parent]
        return x

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for x in self.parent:
            members.setdefault(self.find(x), []).append(x)
        return [sorted(m) for m in members.values() if len(m) > 1]


def group_photos(
    item_ids: np.ndarray,
    vectors: np.ndarray,
    hash_of: Callable[[int], int | None],
    prefetch: Callable[[Iterable[int]], None] | None = None,
) -> tuple[list[list[int]], int, int]:
    """Groups of photo ids: pairs the vectors propose, confirmed by ``hash_of(item id)`` (None: no hash, so not
    confirmed); ``prefetch`` is first told every id a hash will be asked for. Returns (groups, pairs proposed,
    pairs confirmed)."""
    pairs, _scores = propose_pairs(vectors)
    if prefetch is not None:
        prefetch(item_ids[np.unique(pairs)].tolist())
    components = _Components()
    confirmed = 0
    for i, j in pairs.tolist():
        a, b = int(item_ids[i]), int(item_ids[j])
        ha, hb = hash_of(a), hash_of(b)
        if ha is not None and hb is not None and hash_distance(ha, hb) <= HASH_MAX_DISTANCE:
            components.join(a, b)
            confirmed += 1
    return components.groups(), len(pairs), confirmed


@dataclasses.dataclass(frozen=True)
class Frames:
    """One video's sampled frames: times (ms, ascending) and their vectors."""

    item_id: int
    times: np.ndarray
    vectors: np.ndarray


def same_video(a: Frames, b: Frames, frame_hash: Callable[[int, int], int | None], tolerance_ms: int) -> bool:
    """Whether the shorter of two videos is found in the other: enough of its frames match a frame of the other
    (vector proposes, hash confirms) at one time offset (± ``tolerance_ms``, about a sampling interval).

    Every confirmed frame pair votes for its offset, and the offset that explains most of the shorter video's
    frames wins: a static scene matching several frames cannot throw it off, and the same shots in another order
    (or only a shared intro) explain too few frames.
    """
    if len(a.times) > len(b.times):
        a, b = b, a
    if len(a.times) == 0:
        return False
    similarity = a.vectors @ b.vectors.T
    matches: list[tuple[int, int]] = []  # (frame of a, offset to a confirmed frame of b)
    for i, j in zip(*np.nonzero(similarity >= np.float32(PROPOSE_MIN_COSINE)), strict=True):
        ha, hb = frame_hash(a.item_id, int(a.times[i])), frame_hash(b.item_id, int(b.times[j]))
        if ha is not None and hb is not None and hash_distance(ha, hb) <= HASH_MAX_DISTANCE:
            matches.append((int(i), int(b.times[j]) - int(a.times[i])))
    if not matches:
        return False
    frames = np.array([m[0] for m in matches])
    offsets = np.array([m[1] for m in matches])
    explained = max(len(np.unique(frames[np.abs(offsets - offset) <= tolerance_ms])) for offset in np.unique(offsets))
    needed = max(min(VIDEO_MIN_MATCHED_FRAMES, len(a.times)), int(np.ceil(VIDEO_MIN_COVERAGE * len(a.times))))
    return explained >= needed


def group_videos(
    frames: dict[int, Frames], frame_hash: Callable[[int, int], int | None], tolerance_ms: int
) -> tuple[list[list[int]], int, int]:
    """Groups of video ids: video pairs with any frame pair the vectors propose, kept when ``same_video``."""
    ordered = list(frames.values())
    if len(ordered) < 2:
        return [], 0, 0
    owners = np.concatenate([np.full(len(f.times), f.item_id, np.int64) for f in ordered])
    pairs, _scores = propose_pairs(np.concatenate([f.vectors for f in ordered]))
    videos = {(min(x, y), max(x, y)) for x, y in owners[pairs].tolist() if x != y}
    components = _Components()
    confirmed = 0
    for x, y in sorted(videos):
        if same_video(frames[x], frames[y], frame_hash, tolerance_ms):
            components.join(x, y)
            confirmed += 1
    return components.groups(), len(videos), confirmed


# --- the keeper ---------------------------------------------------------------------------------------------------
def _merits(member: CopyFacts) -> list[tuple[KeeperReason, object]]:
    """A member's merits, most important first; smaller is better."""
    stem, ext = os.path.splitext(os.path.basename(member.path))
    taken = member.taken_at.isoformat() if member.taken_at is not None else "9999"
    return [
        (KeeperReason.LARGEST_RESOLUTION, -(member.width or 0) * (member.height or 0)),
        (KeeperReason.LONGEST, -(member.duration_ms or 0)),
        (KeeperReason.ORIGINAL_FORMAT, ext.lower() not in ORIGINAL_FORMATS),
        (KeeperReason.NOT_EDITED, bool(EDITED_NAME.search(stem))),
        (KeeperReason.EARLIEST, (taken, member.mtime_ns)),
        (KeeperReason.LARGEST_FILE, -member.size),
        (KeeperReason.FIRST_INDEXED, member.id),
    ]


def rank(members: Sequence[CopyFacts]) -> tuple[list[int], KeeperReason]:
    """The members' ids, best keeper first, and the merit that made the keeper beat the runner-up."""
    ordered = sorted(members, key=lambda m: [value for _reason, value in _merits(m)])
    best, runner_up = _merits(ordered[0]), _merits(ordered[1])
    why = next(reason for (reason, x), (_r, y) in zip(best, runner_up, strict=True) if x != y)
    return [m.id for m in ordered], why


# --- the service --------------------------------------------------------------------------------------------------
class DuplicateFinder:
    """Groups of duplicates for the current index state, computed on the first request after a change."""

    def __init__(self, store, hashes: HashSource, frame_interval_ms: int):
        self.store = store
        self.hashes = hashes
        self.tolerance_ms = frame_interval_ms
        self._lock = threading.Lock()
        self._cached: Grouping | None = None

    def grouping(self) -> Grouping:
        """The groups, from the cache when the vectors have not changed since they were computed."""
        key = self.store.vectors_version()
        with self._lock:  # one computation at a time; a second caller then gets its result
            if self._cached is None or self._cached.key != key:
                self._cached = self._compute(key)
            return self._cached

    def _compute(self, key: str) -> Grouping:
        started = time.perf_counter()
        self.hashes.refresh()
        photo_ids, _times, photo_vectors = self.store.duplicates.kind_vectors("image")
        photo_groups, proposed, confirmed = group_photos(
            photo_ids, photo_vectors, self.hashes.photo, self.hashes.prefetch
        )
        video_ids, video_times, video_vectors = self.store.duplicates.kind_vectors("video")
        frames = {
            int(ids[0]): Frames(int(ids[0]), times, vectors)
            for ids, times, vectors in _runs(video_ids, video_times, video_vectors)
        }
        video_groups, video_proposed, video_confirmed = group_videos(frames, self.hashes.frame, self.tolerance_ms)
        self.hashes.flush()
        rows = self.store.get_items([i for g in photo_groups + video_groups for i in g])
        groups = []
        for ids in photo_groups + video_groups:
            members = [CopyFacts.of(rows[i]) for i in ids if i in rows]
            if len(members) > 1:
                ordered, why = rank(members)
                groups.append(Group(members[0].kind, tuple(ordered), why))
        groups.sort(key=lambda g: (g.kind != "image", -len(g.ids), g.keeper))
        took = (time.perf_counter() - started) * 1000
        log.info("duplicates: %d groups among %d items in %.0f ms", len(groups), len(photo_ids) + len(frames), took)
        return Grouping(
            groups=tuple(groups),
            compared=len(photo_ids) + len(frames),
            proposed=proposed + video_proposed,
            confirmed=confirmed + video_confirmed,
            took_ms=took,
            key=key,
        )


def _runs(item_ids: np.ndarray, *columns: np.ndarray):
    """(ids, *columns) slices per run of equal ids (the rows are ordered by item)."""
    if len(item_ids) == 0:
        return
    bounds = [*np.flatnonzero(item_ids[1:] != item_ids[:-1]) + 1, len(item_ids)]
    start = 0
    for end in bounds:
        yield (item_ids[start:end], *(column[start:end] for column in columns))
        start = end


class HashSource:
    """pHashes of thumbnails (photos) and frame thumbnails (videos), computed once per file version and stored.

    ``thumbnail_of(item, time_ms or None)`` gives the path of the cached thumbnail (made if missing); an item
    whose thumbnail cannot be made has no hash, so none of its pairs is confirmed.
    """

    def __init__(self, store, thumbnail_of: Callable[[object, int | None], str], version_of: Callable[[object], str]):
        self.store = store
        self.thumbnail_of = thumbnail_of
        self.version_of = version_of
        self._known: dict[tuple[int, int], tuple[str, int]] = {}
        self._new: list[tuple[int, int, str, int]] = []
        self._items: dict[int, object] = {}

    def refresh(self) -> None:
        """Re-read the stored hashes (before a computation)."""
        self._known = self.store.duplicates.perceptual_hashes()
        self._items = {}

    def flush(self) -> None:
        """Store the hashes computed since the last flush."""
        if self._new:
            self.store.duplicates.save_perceptual_hashes(self._new)
            self._new = []

    def photo(self, item_id: int) -> int | None:
        """The pHash of a photo's thumbnail, or None."""
        return self._hash(item_id, STILL)

    def frame(self, item_id: int, time_ms: int) -> int | None:
        """The pHash of one sampled frame of a video, or None."""
        return self._hash(item_id, time_ms)

    def _hash(self, item_id: int, time_ms: int) -> int | None:
        item = self._item(item_id)
        if item is None:
            return None
        version = self.version_of(item)
        known = self._known.get((item_id, time_ms))
        if known is not None and known[0] == version:
            return known[1]
        try:
            value = phash_of_file(self.thumbnail_of(item, None if time_ms == STILL else time_ms))
        except (OSError, ValueError, DecodeError, VideoError) as exc:  # costs this item its hash, not the request
            log.warning("no perceptual hash for item %d at %d: %s", item_id, time_ms, exc)
            value = None
        if value is None:
            self._known[item_id, time_ms] = (version, None)  # type: ignore[assignment]  # tried once per run
            return None
        self._known[item_id, time_ms] = (version, value)
        self._new.append((item_id, time_ms, version, value))
        return value

    def prefetch(self, item_ids: Iterable[int]) -> None:
        """Read the rows of items whose hashes will be asked for, in bulk."""
        self._items.update(self.store.get_items(i for i in item_ids if i not in self._items))

    def _item(self, item_id: int):
        if item_id not in self._items:
            self._items[item_id] = self.store.get_item(item_id)
        return self._items[item_id]


def others_of(groups: Iterable[Group]) -> list[tuple[Group, int]]:
    """(group, id) of every non-keeper, in group order."""
    return [(group, other) for group in groups for other in group.others]


def make_finder(settings, store, renditions) -> DuplicateFinder:
    """The app's duplicate finder: hashes from the cached thumbnails (re-made from the library if lost)."""
    from materialsearch.catalog.records import Kind
    from materialsearch.media.thumbnails import rendition_key
    from materialsearch.scan.walk import servable_path

    def version_of(item) -> str:
        return rendition_key(item.path, item.size, item.mtime_ns)

    def thumbnail_of(item, time_ms: int | None) -> str:
        source = servable_path(item.path, settings.library, settings.follow_symlinks, exclude=[settings.data_dir])
        if source is None:
            raise OSError(f"{item.path} is not inside the library any more")
        key = item.thumbnail or version_of(item)
        if item.kind == Kind.VIDEO:
            return renditions.video_thumbnail(key, source, time_ms)
        return renditions.thumbnail(key, source)

    interval_ms = max(1, round(settings.frame_interval * 1000))
    return DuplicateFinder(store, HashSource(store, thumbnail_of, version_of), interval_ms)

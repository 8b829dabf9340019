"""Search: a query vector (from text, an image, or an indexed item) → ranked, filtered, paginated hits.

A hit is a photo, or a *moment* of a video: a run of neighbouring sampled frames that match. ``score`` is the
cosine similarity between the query vector and the photo's vector (or the moment's best frame), in [-1, 1].

Which frames match: the index returns the best ``CANDIDATE_POOL`` vectors; a frame counts when it scores at least
as well as the last of those (the pool's cut-off) *and* lies in the upper part of its own video's score range
(``MOMENT_RELATIVE_CUT``), so a video that matches all the way through still yields its best stretches rather
than one moment as long as the video.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .decode import decode_image
from .encoders import Encoder
from .encoders.clip import normalise
from .index import VectorIndex
from .records import Status
from .store import Filters, Item, Store

# How many vectors each query considers before grouping them into photos and moments (grows for deep pages).
CANDIDATE_POOL = 1000
# A frame joins a moment when its score is in the top half between its video's median and best frame score.
MOMENT_RELATIVE_CUT = 0.5
# Matching frames this many samples apart still join one moment (1 = a single non-matching frame in between).
MOMENT_MAX_GAP = 1


class SearchError(ValueError):
    """A query that cannot be answered (bad input); the message is for the user."""


class NotFound(LookupError):
    """The item asked for does not exist or is not indexed."""


@dataclasses.dataclass(frozen=True)
class Page:
    """Which slice of the ranking to return and the minimum score to keep."""

    limit: int
    offset: int = 0
    min_score: float | None = None


@dataclasses.dataclass(frozen=True)
class Moment:
    """A matching stretch of a video: [start_ms, end_ms) and its best frame's time."""

    start_ms: int
    end_ms: int
    time_ms: int


@dataclasses.dataclass
class Hit:
    """One result: an item (and for videos, the moment) and how well it matches."""

    item: Item
    score: float
    moment: Moment | None = None


@dataclasses.dataclass
class SearchResult:
    """A page of hits, how many match in all, and how long it took."""

    hits: list[Hit]
    total: int
    took_ms: float


class SearchService:
    """Answers text, image and similar-item queries."""

    def __init__(
        self, store: Store, index: VectorIndex, encoder: Encoder, max_image_pixels: int, decode_sizes: dict[str, int]
    ):
        self.store = store
        self.index = index
        self.encoder = encoder
        self.max_image_pixels = max_image_pixels
        # Decode query pictures exactly as the scanner decodes library pictures, so a photo finds itself.
        self.decode_sizes = decode_sizes
        # (index checksum, number of searchable items): counting them is a full scan of the vectors table
        # (~25 ms at 100k, ~10x that at 1M), so the unfiltered total is recounted only when the index changed.
        self._total_cache: tuple[tuple[int, int], int] | None = None

    # --- query vectors ----------------------------------------------------------------------------------------
    def text_vector(self, text: str) -> np.ndarray:
        """The normalised vector of a sentence."""
        text = text.strip()
        if not text:
            raise SearchError("the query text is empty")
        return self.encoder.encode_texts([text])[0]

    def image_vector(self, data: bytes) -> np.ndarray:
        """The normalised vector of an uploaded picture, decoded exactly as indexing decodes. Raises DecodeError."""
        decoded = decode_image(data, max_pixels=self.max_image_pixels, **self.decode_sizes)
        return self.encoder.encode_images([self.encoder.preprocess(decoded.image)])[0]

    def item_vector(self, item_id: int, time_ms: int | None = None) -> np.ndarray:
        """The vector of an indexed item: a photo's, a video's mean, or one video frame's (``time_ms``)."""
        if time_ms is not None:
            vector = self.store.frame_vector(item_id, time_ms)
            if vector is None:
                raise NotFound(f"item {item_id} has no indexed frame at {time_ms} ms")
            return vector
        vectors = self.store.item_vectors(item_id)
        if vectors.size == 0:
            raise NotFound(f"item {item_id} does not exist or is not indexed")
        return normalise(vectors.mean(axis=0, keepdims=True))[0]

    @staticmethod
    def combine(*vectors: np.ndarray) -> np.ndarray:
        """One query from several (e.g. an image plus words): the normalised sum."""
        return normalise(np.sum(vectors, axis=0, keepdims=True))[0]

    # --- ranking ----------------------------------------------------------------------------------------------
    def search(
        self, vector: np.ndarray, filters: Filters, page: Page, exclude: frozenset[int] = frozenset()
    ) -> SearchResult:
        """Rank photos and video moments by cosine similarity to ``vector``."""
        started = time.perf_counter()
        vector = np.asarray(vector, dtype=np.float32)
        allowed = self.store.filtered_vector_ids(filters) if filters.active else None
        if allowed is not None and allowed.size == 0:
            return SearchResult([], 0, _ms(started))
        if page.min_score is not None:
            scores, ids = self.index.range_search(vector, page.min_score, allowed)
            ranked, _complete = self._rank(vector, scores, ids, exclude, page.min_score, wanted=None)
            total = len(ranked)
        else:
            wanted = page.offset + page.limit
            ranked, exact = self._top(vector, wanted, allowed, exclude)
            # Every searchable item gives at least one hit (a video may give several moments): once the whole
            # index was ranked the count is exact, else the item count is the best cheap estimate.
            total = len(ranked) if exact else max(self._count(filters, exclude), len(ranked))
        window = ranked[page.offset : page.offset + page.limit]
        items = self.store.get_items([item_id for item_id, _score, _moment in window])
        hits = [Hit(items[item_id], score, moment) for item_id, score, moment in window if item_id in items]
        return SearchResult(hits, total, _ms(started))

    def _count(self, filters: Filters, exclude: frozenset[int]) -> int:
        """Items that pass ``filters`` less ``exclude``; the unfiltered count is cached per index state."""
        if filters.active:
            return self.store.count_searchable(filters, exclude)
        key = self.index.checksum()
        cached = self._total_cache
        if cached is None or cached[0] != key:
            cached = self._total_cache = (key, self.store.count_searchable(filters))
        # Excluded items (the query item of "more like this") are few: subtract those that are searchable.
        return cached[1] - sum(item.status == Status.OK for item in self.store.get_items(list(exclude)).values())

    def _top(self, vector, wanted: int, allowed, exclude) -> tuple[list[tuple[int, float, Moment | None]], bool]:
        # Items may own many vectors (video frames) and some may be excluded: widen the pool until enough hits
        # are found or the index is exhausted.
        # The wide pool is only needed to cut video moments; a photo-only library asks for just what it shows.
        pool = CANDIDATE_POOL if self.store.has_videos() else 0
        k = max(pool, wanted + len(exclude))
        limit = self.index.ntotal if allowed is None else len(allowed)
        while True:
            scores, ids = self.index.search(vector, k, allowed)
            exhausted = len(ids) < k or k >= limit
            cutoff = float(scores[-1]) if len(scores) and not exhausted else -1.0
            ranked, complete = self._rank(vector, scores, ids, exclude, cutoff, wanted)
            if len(ranked) >= wanted or exhausted:
                return ranked, exhausted and complete
            k *= 2

    def _rank(self, vector, scores, ids, exclude, cutoff: float, wanted: int | None):
        """Photos by their score and videos by their moments, best first, and whether that is all of them (it
        stops once the first ``wanted`` hits are certain)."""
        frames = self.store.vector_frames(ids.tolist())
        photos: dict[int, float] = {}
        videos: dict[int, float] = {}
        for vector_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
            owner = frames.get(vector_id)
            if owner is None or owner[0] in exclude:
                continue  # removed meanwhile, or left out on purpose
            item_id, time_ms = owner
            target = photos if time_ms is None else videos
            if item_id not in target:  # ids arrive best first: the first score seen is the item's best
                target[item_id] = _clamp(score)
        ranked = [(item_id, score, None) for item_id, score in photos.items()]
        complete = True
        for item_id, best in sorted(videos.items(), key=lambda pair: -pair[1]):
            if wanted is not None and len(ranked) >= wanted:
                ranked.sort(key=lambda hit: -hit[1])
                if ranked[wanted - 1][1] >= best:
                    complete = False
                    break  # no moment of this or a later video can reach the wanted hits
            times, vectors = self.store.frames(item_id)
            if len(times) == 0:
                continue
            frame_scores = vectors @ vector
            for moment, score in _moments(times, frame_scores, cutoff, self._duration(item_id, times)):
                ranked.append((item_id, _clamp(score), moment))
        ranked.sort(key=lambda hit: -hit[1])
        return ranked, complete

    def _duration(self, item_id: int, times: np.ndarray) -> int:
        item = self.store.get_item(item_id)
        if item is not None and item.duration_ms:
            return max(int(item.duration_ms), int(times[-1]))
        return int(times[-1])


def _moments(times: np.ndarray, scores: np.ndarray, cutoff: float, duration_ms: int):
    """Group a video's matching frames into moments: (Moment, best score) pairs."""
    best, median = float(scores.max()), float(np.median(scores))
    cut = max(cutoff, best - MOMENT_RELATIVE_CUT * (best - median))
    matching = np.flatnonzero(scores >= cut)
    if matching.size == 0:
        return []
    runs: list[list[int]] = [[int(matching[0])]]
    for index in matching[1:].tolist():
        if index - runs[-1][-1] <= MOMENT_MAX_GAP + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    result = []
    for run in runs:
        first, last = run[0], run[-1]
        # A sample stands for the stretch up to the next sample (or the end of the video).
        end = int(times[last + 1]) if last + 1 < len(times) else max(duration_ms, int(times[last]))
        top = max(run, key=lambda i: scores[i])
        result.append((Moment(int(times[first]), end, int(times[top])), float(scores[top])))
    return result


def _clamp(score: float) -> float:
    return float(min(max(score, -1.0), 1.0))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

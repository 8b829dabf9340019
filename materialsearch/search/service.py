"""Search: a query vector (from text, an image, or an indexed item) → ranked, filtered, paginated hits.

A hit is a photo, or a *moment* of a video: a run of neighbouring sampled frames that match. ``score`` is the
cosine similarity between the query vector and the photo's vector (or the moment's best frame), in [-1, 1].

Which frames match: the index returns the best ``CANDIDATE_POOL`` vectors; a frame counts when it scores at least
as well as the last of those (the pool's cut-off) *and* lies in the upper part of its own video's score range
(``MOMENT_RELATIVE_CUT``), so a video that matches all the way through still yields its best stretches rather
than one moment as long as the video.

A search can also be narrowed (``Narrowing``): to its good matches only (``relevance``), without results that look
like an excluded text (``relevance``), with near-identical results stacked (``stacks``), and ordered by capture
time instead of score. Without a query vector, ``search_names`` ranks by a file-name or folder keyword (``names``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import threading
import time
from collections.abc import Hashable
from typing import NamedTuple

import numpy as np

from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.rows import ItemRow
from materialsearch.catalog.store import Filters, Store
from materialsearch.catalog.timeline import Sort, listed
from materialsearch.catalog.vectors import VectorSearch
from materialsearch.encoders import Encoder, QueryEncoders
from materialsearch.encoders.clip import normalise
from materialsearch.media.decode import decode_image
from materialsearch.search import names, relevance, stacks

# How many vectors each query considers before grouping them into photos and moments (grows for deep pages).
CANDIDATE_POOL = 1000
# Sentence vectors kept (≈ 2 KB each): the text tower takes 13–26 ms a sentence on two cores, the lookup none.
TEXT_VECTORS_KEPT = 512
# A frame joins a moment when its score is in the top half between its video's median and best frame score.
MOMENT_RELATIVE_CUT = 0.5
# Matching frames this many samples apart still join one moment (1 = a single non-matching frame in between).
MOMENT_MAX_GAP = 1
# A frame without the people asked for (``person=``) scores below any cosine: it never joins a moment.
UNSEEN_SCORE = -2.0


class Match(enum.StrEnum):
    """Which results a search keeps: the good matches (``relevance``) or every one."""

    GOOD = "good"
    ALL = "all"


@dataclasses.dataclass(frozen=True)
class Narrowing:
    """How a search narrows and orders its ranking.

    ``match`` None means: good matches for a date order (a date-ordered ranking of everything would be the
    timeline), every result for the score order (what scripts always got).
    """

    sort: Sort = Sort.SCORE
    match: Match | None = None
    excluded_texts: tuple[np.ndarray, ...] = ()  # vectors of texts whose look-alikes are left out
    stack: bool = False
    kind: relevance.QueryKind = relevance.QueryKind.TEXT

    @property
    def good_only(self) -> bool:
        """Whether only good matches are kept."""
        return (self.match or (Match.GOOD if self.sort.by_date else Match.ALL)) is Match.GOOD


class Candidate(NamedTuple):
    """A ranked result before it becomes a Hit: ``ref`` is a photo's vector id or a moment's frame vector;
    ``members`` the item ids of its stack (itself first) once stacked."""

    item_id: int
    score: float
    moment: Moment | None
    ref: int | np.ndarray
    members: tuple[int, ...] = ()


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

    item: ItemRow
    score: float
    moment: Moment | None = None
    stack: tuple[int, ...] = ()  # the item ids of its stack (itself first) when it stands for several

    @property
    def stack_size(self) -> int:
        """How many results this one stands for (1 when alone)."""
        return max(1, len(self.stack))


@dataclasses.dataclass
class RankedResults:
    """A page of hits, how many match in all, and how long it took; with good matches only, about how many more
    items every match would give."""

    hits: list[Hit]
    total: int
    took_ms: float
    more: int | None = None


class SearchService:
    """Answers text, image and similar-item queries."""

    def __init__(
        self,
        store: Store,
        vectors: VectorSearch,
        encoder: Encoder,
        max_image_pixels: int,
        decode_sizes: dict[str, int],
        stack_cosine: float = 0.95,
        queries: QueryEncoders | None = None,
    ):
        self.store = store
        self.vectors = vectors  # nearest neighbours with filters, one call each
        self.encoder = encoder
        # What query sentences and query pictures run on (``make_query_encoders``): ``encoder`` unless ``auto``
        # measured another backend faster at batch 1 within the fidelity gate. Their vectors are never stored.
        self.queries = queries or QueryEncoders(encoder, encoder)
        self.max_image_pixels = max_image_pixels
        # Decode query pictures exactly as the scanner decodes library pictures, so a photo finds itself.
        self.decode_sizes = decode_sizes
        self.stack_cosine = stack_cosine  # MS_STACK_COSINE: near-identical results stack (see ``stacks``)
        # (vectors' version, number of searchable items): counting them is a full scan of the vectors table
        # (~25 ms at 100k, ~10x that at 1M), so the unfiltered total is recounted only when the vectors changed.
        self._total_cache: tuple[Hashable, int] | None = None
        # (vectors' version, a sample of them) for the score distributions of good matches and exclusions.
        self._sample_cache: tuple[Hashable, np.ndarray] | None = None
        # Recent sentences' vectors: one search asks for its sentence's again with each page, sort and count.
        self._text_vectors: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._text_vectors_lock = threading.Lock()

    # --- query vectors ----------------------------------------------------------------------------------------
    def text_vector(self, text: str) -> np.ndarray:
        """The normalised vector of a sentence."""
        text = text.strip()
        if not text:
            raise SearchError("the query text is empty")
        with self._text_vectors_lock:
            kept = self._text_vectors.get(text)
            if kept is not None:
                self._text_vectors.move_to_end(text)
                return kept.copy()  # callers may change theirs
        vector = self.queries.sentences.encode_texts([text])[0]
        with self._text_vectors_lock:
            self._text_vectors[text] = vector.copy()
            while len(self._text_vectors) > TEXT_VECTORS_KEPT:
                self._text_vectors.popitem(last=False)
        return vector

    def image_vector(self, data: bytes) -> np.ndarray:
        """The normalised vector of an uploaded picture, decoded exactly as indexing decodes. Raises DecodeError."""
        decoded = decode_image(data, max_pixels=self.max_image_pixels, **self.decode_sizes)
        return self.queries.pictures.encode_images([decoded.image])[0]

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
        self,
        vector: np.ndarray,
        filters: Filters,
        page: Page,
        exclude: frozenset[int] = frozenset(),
        narrowing: Narrowing = Narrowing(),
    ) -> RankedResults:
        """Rank photos and video moments by cosine similarity to ``vector`` (narrowed by ``narrowing``)."""
        started = time.perf_counter()
        vector = np.asarray(vector, dtype=np.float32)
        if filters.active and self.vectors.count(filters) == 0:
            return RankedResults([], 0, _ms(started), 0 if narrowing.good_only else None)
        sample = self._sample(filters) if narrowing.good_only or narrowing.excluded_texts else None
        exclusions = [(e, relevance.exclusion_cutoff(e, sample)) for e in narrowing.excluded_texts]
        floor = page.min_score
        if narrowing.good_only:
            good = relevance.good_cutoff(vector, sample, narrowing.kind)
            floor = good if floor is None else max(floor, good)
        if floor is not None or narrowing.sort.by_date:
            level = -1.0 if floor is None else floor
            found = self.vectors.within(vector, level, filters)
            ranked, _complete = self._rank(
                vector, found.scores, found.ids, exclude, level, wanted=None, people=filters.people
            )
            ranked = self._refine(ranked, exclusions, narrowing.stack)
            total = len(ranked)
        else:
            wanted = page.offset + page.limit
            ranked, exact = self._top(vector, wanted, filters, exclude, exclusions, narrowing.stack)
            # Every searchable item gives at least one hit (a video may give several moments): once the whole
            # index was ranked the count is exact, else the item count is the best cheap estimate.
            total = len(ranked) if exact else max(self._count(filters, exclude), len(ranked))
        more = None
        if narrowing.good_only:
            shown = sum(max(1, len(c.members)) for c in ranked)  # items, stacked or not
            more = max(0, self._count_at(vector, filters, exclude, page.min_score) - shown)
        return self._page(ranked, page, narrowing.sort, total, started, more)

    def search_names(self, filters: Filters, page: Page, narrowing: Narrowing = Narrowing()) -> RankedResults:
        """Items whose file name (``filters.name_contains``) or path (``path_contains``) matches, ranked by match
        quality (``names``) or by date; every match counts as good."""
        started = time.perf_counter()
        rows = listed(self.store, filters)
        quality = {
            item_id: names.match_quality(path, filters.name_contains, filters.path_contains)
            for item_id, path, _taken in rows
        }
        rows.sort(key=lambda row: (-quality[row[0]], *newest_first_key(row[2], row[0])))
        refs = self.store.first_vector_ids(row[0] for row in rows)
        ranked = [Candidate(item_id, quality[item_id], None, refs[item_id]) for item_id, *_ in rows if item_id in refs]
        if narrowing.excluded_texts:
            sample = self._sample(filters)
            exclusions = [(e, relevance.exclusion_cutoff(e, sample)) for e in narrowing.excluded_texts]
        else:
            exclusions = []
        ranked = self._refine(ranked, exclusions, narrowing.stack)
        return self._page(ranked, page, narrowing.sort, len(ranked), started, 0 if narrowing.good_only else None)

    def stack_of(self, item_id: int, filters: Filters) -> list[ItemRow]:
        """Every indexed item near-identical to ``item_id`` (cosine ≥ ``stack_cosine`` with its vector) passing
        ``filters``: the item first, then the others most similar first. A search's stack is among these."""
        vector = self.item_vector(item_id)
        ids = self.vectors.within(vector, self.stack_cosine - stacks.ROUNDING, filters).ids
        frames = self.store.vector_frames(ids.tolist())
        members = [item_id]
        for vector_id in ids.tolist():
            owner = frames.get(vector_id)
            if owner is not None and owner[0] not in members:
                members.append(owner[0])
        found = self.store.get_items(members)
        return [found[i] for i in members if i in found and found[i].status == ItemStatus.OK]

    def _page(self, ranked: list[Candidate], page: Page, sort: Sort, total: int, started: float, more) -> RankedResults:
        """The hits of ``page`` from a full (or long enough) ranking, in ``sort`` order."""
        if sort.by_date:
            dates = {item.id: item.taken_at for item in self.store.get_items({c.item_id for c in ranked}).values()}

            def when(candidate: Candidate):
                # Oldest first is the exact reverse of newest first, except a video's moments: in time order.
                start = candidate.moment.start_ms if candidate.moment else 0
                key = newest_first_key(dates.get(candidate.item_id), candidate.item_id)
                return (*key, start) if sort is Sort.DATE_DESC else (*(-part for part in key), start)

            ranked = sorted(ranked, key=when)
        window = ranked[page.offset : page.offset + page.limit]
        items = self.store.get_items([c.item_id for c in window])
        hits = [Hit(items[c.item_id], c.score, c.moment, c.members) for c in window if c.item_id in items]
        return RankedResults(hits, total, _ms(started), more)

    def _refine(self, ranked: list[Candidate], exclusions, stack: bool) -> list[Candidate]:
        """``ranked`` less the look-alikes of excluded texts, then in stacks when ``stack``."""
        if not ranked or not (exclusions or stack):
            return ranked
        vectors = self._vectors_of(ranked)
        if exclusions:
            mask = relevance.kept(vectors, exclusions)
            ranked = [c for c, keep in zip(ranked, mask.tolist(), strict=True) if keep]
            vectors = vectors[mask]
        if not stack:
            return ranked
        return [
            ranked[group[0]]._replace(members=tuple(ranked[i].item_id for i in group))
            for group in stacks.stack_groups(vectors, self.stack_cosine)
        ]

    def _vectors_of(self, ranked: list[Candidate]) -> np.ndarray:
        """The stored vector of each candidate (a photo's, a moment's best frame's), in order."""
        photo_ids = [c.ref for c in ranked if isinstance(c.ref, int)]
        photos = iter(self.store.vectors_by_id(photo_ids)) if photo_ids else iter(())
        return np.vstack([next(photos) if isinstance(c.ref, int) else c.ref for c in ranked]).astype(np.float32)

    def _sample(self, filters: Filters) -> np.ndarray:
        """A uniform sample of the (filtered) library's vectors; the whole library's is kept until the vectors
        change."""
        if filters.active:
            return self.vectors.sample(relevance.SAMPLE_SIZE, filters)
        key = self.vectors.version()
        cached = self._sample_cache
        if cached is None or cached[0] != key:
            cached = self._sample_cache = (key, self.vectors.sample(relevance.SAMPLE_SIZE, filters))
        return cached[1]

    def _count_at(self, vector, filters: Filters, exclude: frozenset[int], min_score) -> int:
        """How many items every match would give: all that pass the filters, or those reaching ``min_score``."""
        if min_score is None:
            return self._count(filters, exclude)
        ids = self.vectors.within(vector, min_score, filters).ids
        owners = {owner[0] for owner in self.store.vector_frames(ids.tolist()).values()}
        return len(owners - exclude)

    def _count(self, filters: Filters, exclude: frozenset[int]) -> int:
        """Items that pass ``filters`` less ``exclude``; the unfiltered count is cached per index state."""
        if filters.active:
            return self.store.count_searchable(filters, exclude)
        key = self.vectors.version()
        cached = self._total_cache
        if cached is None or cached[0] != key:
            cached = self._total_cache = (key, self.store.count_searchable(filters))
        # Excluded items (the query item of "more like this") are few: subtract those that are searchable.
        return cached[1] - sum(item.status == ItemStatus.OK for item in self.store.get_items(list(exclude)).values())

    def _top(self, vector, wanted: int, filters: Filters, exclude, exclusions=(), stack: bool = False):
        """The best ``wanted`` candidates (after exclusions and stacking) and whether that is all of them."""
        # Items may own many vectors (video frames) and some may be excluded: widen the pool until enough hits
        # are found or the index is exhausted.
        # The wide pool is only needed to cut video moments; a photo-only library asks for just what it shows.
        pool = CANDIDATE_POOL if self.store.has_videos() else 0
        k = max(pool, wanted + len(exclude))
        limit = self.vectors.count(filters)
        refining = bool(exclusions) or stack
        while True:
            found = self.vectors.knn(vector, k, filters)
            scores, ids = found.scores, found.ids
            exhausted = len(ids) < k or k >= limit
            cutoff = float(scores[-1]) if len(scores) and not exhausted else -1.0
            # Exclusions drop hits after ranking: rank every video in the pool, not just enough for ``wanted``.
            ranked, complete = self._rank(
                vector, scores, ids, exclude, cutoff, None if refining else wanted, filters.people
            )
            ranked = self._refine(ranked, exclusions, stack)
            if len(ranked) >= wanted or exhausted:
                return ranked, exhausted and complete
            k *= 2

    def _rank(self, vector, scores, ids, exclude, cutoff: float, wanted: int | None, people=None):
        """Photos by their score and videos by their moments, best first, and whether that is all of them (it
        stops once the first ``wanted`` hits are certain). With ``people`` (``person=``), a video's moments are
        cut from the frames where all of them were found only."""
        frames = self.store.vector_frames(ids.tolist())
        photos: dict[int, tuple[float, int]] = {}
        videos: dict[int, float] = {}
        for vector_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
            owner = frames.get(vector_id)
            if owner is None or owner[0] in exclude:
                continue  # removed meanwhile, or left out on purpose
            item_id, time_ms = owner
            if time_ms is None:
                if item_id not in photos:  # ids arrive best first: the first score seen is the item's best
                    photos[item_id] = (_clamp(score), vector_id)
            elif item_id not in videos:
                videos[item_id] = _clamp(score)
        ranked = [Candidate(item_id, score, None, vector_id) for item_id, (score, vector_id) in photos.items()]
        complete = True
        for item_id, best in sorted(videos.items(), key=lambda pair: -pair[1]):
            if wanted is not None and len(ranked) >= wanted:
                ranked.sort(key=lambda hit: -hit.score)
                if ranked[wanted - 1].score >= best:
                    complete = False
                    break  # no moment of this or a later video can reach the wanted hits
            times, vectors = self.store.frames(item_id)
            if len(times) == 0:
                continue
            frame_scores = vectors @ vector
            if people:
                seen = self.store.faces.frames_with(item_id, people)
                if not seen:
                    continue  # none of its frames shows them all
                frame_scores = np.where(np.isin(times, list(seen)), frame_scores, UNSEEN_SCORE)
            for moment, top in _moments(times, frame_scores, cutoff, self._duration(item_id, times)):
                ranked.append(Candidate(item_id, _clamp(float(frame_scores[top])), moment, vectors[top]))
        ranked.sort(key=lambda hit: -hit.score)
        return ranked, complete

    def _duration(self, item_id: int, times: np.ndarray) -> int:
        item = self.store.get_item(item_id)
        if item is not None and item.duration_ms:
            return max(int(item.duration_ms), int(times[-1]))
        return int(times[-1])


def _moments(times: np.ndarray, scores: np.ndarray, cutoff: float, duration_ms: int):
    """Group a video's matching frames into moments: (Moment, index of its best frame) pairs."""
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
        result.append((Moment(int(times[first]), end, int(times[top])), top))
    return result


def newest_first_key(taken_at: dt.datetime | None, item_id: int) -> tuple:
    """A sort key putting the newest first (undated items last, as in the timeline), ties by id descending."""
    return (taken_at is None, -(taken_at.timestamp() if taken_at else 0.0), -item_id)


def _clamp(score: float) -> float:
    return float(min(max(score, -1.0), 1.0))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

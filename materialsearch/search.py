"""Search: a query vector (from text, an image, or an indexed item) → ranked, filtered, paginated items.

``score`` is the cosine similarity between the query vector and the item's vector, in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .decode import decode_image
from .embed import Encoder, normalise
from .index import VectorIndex
from .store import Filters, Item, Store


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


@dataclasses.dataclass
class Hit:
    """One result: an item and how well it matches."""

    item: Item
    score: float


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

    def item_vector(self, item_id: int) -> np.ndarray:
        """The (mean, normalised) vector of an indexed item."""
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
        """Rank indexed items by cosine similarity to ``vector``."""
        started = time.perf_counter()
        allowed = self.store.filtered_vector_ids(filters) if filters.active else None
        if allowed is not None and allowed.size == 0:
            return SearchResult([], 0, _ms(started))
        if page.min_score is not None:
            scores, ids = self.index.range_search(vector, page.min_score, allowed)
            ranked = self._best_per_item(scores, ids, exclude)
            total = len(ranked)
        else:
            ranked = self._top_items(vector, page.offset + page.limit, allowed, exclude)
            total = self._count(filters, exclude)
        window = ranked[page.offset : page.offset + page.limit]
        items = self.store.get_items([item_id for item_id, _ in window])
        hits = [Hit(items[item_id], score) for item_id, score in window if item_id in items]
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
        return cached[1] - sum(1 for item_id in exclude if self.store.item_vectors(item_id).size)

    def _top_items(self, vector, wanted: int, allowed, exclude) -> list[tuple[int, float]]:
        # Items may own several vectors (video frames) and some may be excluded: widen k until enough distinct
        # items are found or the index is exhausted.
        k = wanted + len(exclude)
        while True:
            scores, ids = self.index.search(vector, k, allowed)
            ranked = self._best_per_item(scores, ids, exclude)
            limit = self.index.ntotal if allowed is None else len(allowed)
            if len(ranked) >= wanted or len(ids) < k or k >= limit:
                return ranked
            k *= 2

    def _best_per_item(self, scores, ids, exclude) -> list[tuple[int, float]]:
        owners = self.store.vector_owners(ids.tolist())
        best: dict[int, float] = {}
        for vector_id, score in zip(ids.tolist(), scores.tolist(), strict=True):
            item_id = owners.get(vector_id)
            if item_id is None or item_id in exclude or item_id in best:
                continue  # ids arrive best first, so the first score seen per item is its best
            best[item_id] = float(min(max(score, -1.0), 1.0))
        return list(best.items())


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

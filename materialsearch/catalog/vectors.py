"""Nearest neighbours with filters, one call each: the search side's door to the stored vectors.

``knn`` (the best k) and ``within`` (every vector at or above a score) take the query vector and the ``Filters`` and
answer with vector ids and scores. How the filters are applied is this module's business: on SQLite + FAISS the
database gives the ids of the vectors whose items pass (kept until the next commit or index change, so one search's
pages, counts and samples ask once) and FAISS searches those; a PostgreSQL + pgvector catalog answers each in one
statement. ``version()`` is the change token callers key their caches on.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Hashable

import numpy as np

from materialsearch.catalog.filters import Filters
from materialsearch.catalog.places import ChangeWatch
from materialsearch.catalog.store import Store
from materialsearch.catalog.vector_index import VectorIndex

ALLOWED_CACHE_SIZE = 16  # filtered id sets kept (a few searches' worth; each is 8 bytes a vector)


@dataclasses.dataclass(frozen=True)
class Neighbours:
    """Vector ids and their scores (cosine), best first."""

    scores: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


EMPTY = Neighbours(np.empty(0, np.float32), np.empty(0, np.int64))


class VectorSearch:
    """Filtered nearest-neighbour search over the catalog's vectors (SQLite for the filters, FAISS for the rest)."""

    def __init__(self, store: Store, index: VectorIndex):
        self._store = store
        self._index = index
        self._watch: ChangeWatch = store.places.watch  # PRAGMA data_version: any commit changes it
        self._allowed: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    # --- change tokens ----------------------------------------------------------------------------------------
    def version(self) -> Hashable:
        """Changes whenever the searchable vectors change (added, removed, re-embedded); equal tokens mean the same
        vectors, in this process and after a restart."""
        return self._index.checksum()

    def _filters_version(self) -> Hashable:
        # Filters read the items (dates, tags, places, hidden…): any commit may change who passes.
        return (self._index.checksum(), self._watch.version())

    # --- filters ----------------------------------------------------------------------------------------------
    def _allowed_ids(self, filters: Filters) -> np.ndarray | None:
        """The ids of the vectors whose items pass ``filters`` (None: no filter, every vector)."""
        if not filters.active:
            return None
        key = (filters, self._filters_version())
        with self._lock:
            found = self._allowed.get(key)
            if found is not None:
                self._allowed.move_to_end(key)
                return found
        found = self._store.filtered_vector_ids(filters)
        with self._lock:
            self._allowed[key] = found
            while len(self._allowed) > ALLOWED_CACHE_SIZE:
                self._allowed.popitem(last=False)
        return found

    def count(self, filters: Filters) -> int:
        """How many vectors pass ``filters`` (every vector without one)."""
        allowed = self._allowed_ids(filters)
        return self._index.ntotal if allowed is None else len(allowed)

    # --- queries ----------------------------------------------------------------------------------------------
    def knn(self, vector: np.ndarray, k: int, filters: Filters) -> Neighbours:
        """The ``k`` vectors most similar to ``vector`` among those passing ``filters``, best first."""
        allowed = self._allowed_ids(filters)
        if allowed is not None and allowed.size == 0:
            return EMPTY
        scores, ids = self._index.search(vector, k, allowed)
        return Neighbours(scores, ids)

    def within(self, vector: np.ndarray, min_score: float, filters: Filters) -> Neighbours:
        """Every vector passing ``filters`` whose cosine with ``vector`` is at least ``min_score``, best first
        (approximate on an IVF layout)."""
        allowed = self._allowed_ids(filters)
        if allowed is not None and allowed.size == 0:
            return EMPTY
        scores, ids = self._index.range_search(vector, min_score, allowed)
        return Neighbours(scores, ids)

    def sample(self, size: int, filters: Filters) -> np.ndarray:
        """Up to ``size`` vectors passing ``filters``, drawn uniformly and reproducibly (for a query's score
        distribution over the library)."""
        allowed = self._allowed_ids(filters)
        if allowed is not None and allowed.size == 0:
            return np.empty((0, self._index.dim), np.float32)
        return self._index.sample(size, allowed)

"""The vector index: FAISS inner product over L2-normalised vectors (= cosine), keyed by the database's vector ids.

The database is the source of truth. The index is saved atomically (temp file + fsync + rename) with a stamp of
what it holds; at start-up a stamp that disagrees with the database (crash, copy, model change) means a rebuild.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading

import faiss
import numpy as np

log = logging.getLogger(__name__)


class VectorIndex:
    """Thread-safe exact inner-product index with add/remove by id."""

    def __init__(self, path: str, dim: int, identity: str):
        self.path = path
        self.stamp_path = f"{path}.json"
        self.dim = dim
        self.identity = identity
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()  # one writer of the files at a time
        self._index = self._empty()
        self._id_sum = 0
        self._dirty = False

    def _empty(self):
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def ntotal(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    def checksum(self) -> tuple[int, int]:
        """(count, sum of ids), comparable with ``Store.vector_checksum``."""
        with self._lock:
            return self.ntotal, self._id_sum

    # --- persistence ------------------------------------------------------------------------------------------
    def load(self, expected: tuple[int, int]) -> bool:
        """Load the saved index if its stamp matches ``expected`` (the database's checksum) and this model."""
        try:
            with open(self.stamp_path, encoding="utf-8") as handle:
                stamp = json.load(handle)
        except (OSError, ValueError):
            return False
        if stamp.get("identity") != self.identity or stamp.get("dim") != self.dim:
            return False
        if (stamp.get("count"), stamp.get("id_sum")) != tuple(expected):
            return False
        try:
            index = faiss.read_index(self.path)
        except RuntimeError as exc:
            log.warning("index file %s is unreadable (%s); rebuilding from the database", self.path, exc)
            return False
        if index.ntotal != expected[0] or index.d != self.dim:
            return False
        with self._lock:
            self._index = index
            self._id_sum = int(expected[1])
            self._dirty = False
        return True

    def rebuild(self, chunks) -> None:
        """Replace the contents with ``chunks`` of (ids, vectors), e.g. ``Store.iter_vectors()``."""
        index = self._empty()
        id_sum = 0
        for ids, vectors in chunks:
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
            id_sum += int(ids.sum())
        with self._lock:
            self._index = index
            self._id_sum = id_sum
            self._dirty = True

    def save(self) -> None:
        """Write the index and its stamp atomically; a crash leaves the previous pair (or none) in place."""
        with self._save_lock:
            with self._lock:
                if not self._dirty and os.path.exists(self.path) and os.path.exists(self.stamp_path):
                    return
                stamp = {"identity": self.identity, "dim": self.dim, "count": self.ntotal, "id_sum": self._id_sum}
                data = faiss.serialize_index(self._index)
                self._dirty = False
            # The bytes reach the disk outside the lock, so searches and adds go on during the (fsync-bound) write.
            try:
                # Drop the old stamp first: a crash between the two renames must not pair a new index with an old
                # stamp (or the reverse) — a missing stamp simply means "rebuild".
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.stamp_path)
                _atomic_write(self.path, memoryview(data))
                _atomic_write(self.stamp_path, json.dumps(stamp).encode())
            except BaseException:
                with self._lock:
                    self._dirty = True  # not saved after all: the next save must write
                raise

    # --- changes ----------------------------------------------------------------------------------------------
    def add(self, ids, vectors: np.ndarray) -> None:
        """Add vectors under ``ids`` (ids must not be present)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        with self._lock:
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            self._id_sum += int(ids.sum())
            self._dirty = True

    def remove(self, ids) -> None:
        """Remove vectors by id (unknown ids are ignored)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        with self._lock:
            present = [i for i in ids.tolist() if self._has(i)]
            if not present:
                return
            self._index.remove_ids(np.asarray(present, dtype=np.int64))
            self._id_sum -= sum(present)
            self._dirty = True

    def _has(self, vector_id: int) -> bool:
        try:
            self._index.reconstruct(vector_id)
        except RuntimeError:
            return False
        return True

    # --- queries ----------------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector, best first, restricted to ``allowed`` ids if given."""
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        with self._lock:
            k = min(k, self.ntotal if allowed is None else min(self.ntotal, len(allowed)))
            if k <= 0:
                return np.empty(0, np.float32), np.empty(0, np.int64)
            params = self._params(allowed)
            scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def range_search(
        self, query: np.ndarray, min_score: float, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every (score, id) with score ≥ ``min_score``, best first."""
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        with self._lock:
            if self.ntotal == 0:
                return np.empty(0, np.float32), np.empty(0, np.int64)
            # FAISS keeps results strictly above the radius for inner product; nudge so ≥ holds.
            radius = float(np.nextafter(np.float32(min_score), np.float32(-np.inf)))
            _lims, scores, ids = self._index.range_search(query, radius, params=self._params(allowed))
        order = np.argsort(-scores, kind="stable")
        return scores[order], ids[order]

    @staticmethod
    def _params(allowed: np.ndarray | None):
        if allowed is None:
            return None
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        return faiss.SearchParameters(sel=selector)


def _atomic_write(path: str, data: bytes | memoryview) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

"""The vector index: FAISS inner product over L2-normalised vectors (= cosine), keyed by the database's vector ids.

The database is the source of truth. The index is saved atomically (temp file + fsync + rename) with a stamp of
what it holds; at start-up a stamp that disagrees with the database (crash, copy, model change) means a rebuild.

Two layouts: ``flat`` (exact; ``IndexIDMap2(IndexFlatIP)``) and ``ivf`` (approximate; ``IndexIVFFlat``, or
``IndexIVFScalarQuantizer`` 8-bit with ``sq8``, ids held natively with a hashtable direct map so add, remove and
reconstruct by id keep working). With ``kind="auto"`` the index is exact below ``ann_threshold`` vectors and IVF
above; the IVF is trained and filled on a snapshot in a background thread while the old index keeps answering,
changes made meanwhile are journalled and replayed, and it is retrained when the collection has grown
``RETRAIN_GROWTH`` times past what it was trained on (or falls back to flat when it shrinks below half the
threshold).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time

import faiss
import numpy as np

log = logging.getLogger(__name__)

KINDS = ("auto", "flat", "ivf")
RETRAIN_GROWTH = 4.0  # retrain an IVF once the collection is this many times the size it was trained on
IVF_MIN_VECTORS = 1000  # below this an IVF is pointless (and cannot be trained well): stay exact
TRAIN_POINTS_PER_LIST = 40  # k-means sample per list; FAISS warns below 39
KMEANS_ITERATIONS = 10  # enough for IVF centroids; FAISS's default 25 costs 2.5x the training time
EXACT_SUBSET_MAX = 65536  # a filter allowing at most this many ids is searched exactly over those ids
# OpenMP threads a one-vector query runs on (see ``_query_threads``).
QUERY_THREADS = 1


@contextlib.contextmanager
def _query_threads():
    """Run the FAISS calls inside on ``QUERY_THREADS`` OpenMP threads, in the calling thread only (OpenMP keeps
    the thread count per thread: a build in another thread keeps every core).

    A one-vector query gains little from a second thread and loses much when the cores are busy: each query wakes
    a sleeping OpenMP team and waits for it at the end. On 2 cores of an AMD EPYC (AVX2) with a test suite running
    beside it, a flat search of 100k 512-d vectors took p50 52 ms on two threads against 14 ms on one, and text
    searches through the app over 100 vectors p50 40 against 18 ms (tiny model; the FAISS calls alone ~4 ms each
    on two threads). bench/run.py's query table measures it on a quiet machine."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(QUERY_THREADS)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def ivf_nlist(count: int) -> int:
    """Number of IVF lists for ``count`` vectors: ~2*sqrt(n) (2000 at 1M), enough points per list to train."""
    return int(max(1, min(2 * math.sqrt(max(count, 1)), count // TRAIN_POINTS_PER_LIST, 65536)))


def ivf_probes(nprobe: int, nlist: int, ntotal: int, candidates: int, k: int) -> int:
    """IVF lists to visit for ``k`` hits among ``candidates`` of the ``ntotal`` vectors (``nprobe``: the setting)."""
    if not candidates:
        return min(nprobe, nlist)
    # A filter leaves fewer candidates per list: probe proportionally more lists. A deep page (large k) needs lists
    # holding at least twice k candidates, or it would come back short.
    wanted = max(min(nprobe, nlist) * ntotal / candidates, 2 * k / (candidates / nlist))
    return int(min(nlist, max(1, math.ceil(wanted))))


class VectorIndex:
    """Thread-safe inner-product index with add/remove by id; exact or IVF (chosen by size with ``auto``)."""

    def __init__(
        self,
        path: str,
        dim: int,
        identity: str,
        kind: str = "flat",
        ann_threshold: int = 50000,
        nprobe: int = 32,
        sq8: bool = False,
        background: bool = True,
    ):
        if kind not in KINDS:
            raise ValueError(f"index kind {kind!r}: use one of {', '.join(KINDS)}")
        self.path = path
        self.stamp_path = f"{path}.json"
        self.dim = dim
        self.identity = identity
        self.kind = kind
        self.ann_threshold = ann_threshold
        self.nprobe = nprobe
        self.sq8 = sq8
        self.background = background  # False: builds run in the caller's thread (tests, benchmarks)
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()  # one writer of the files at a time
        self._layout: dict = {"type": "flat"}
        self._index = _build_flat(dim)
        self._id_sum = 0
        self._dirty = False
        self._generation = 0  # bumped by rebuild/load: a background build of an older generation is discarded
        self._journal: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None
        self._builder: threading.Thread | None = None
        self.build_error: str | None = None
        self.builds = 0  # layouts installed by background/automatic builds (for status and tests)

    # --- layouts ----------------------------------------------------------------------------------------------
    def desired_layout(self, count: int) -> dict:
        """The layout the policy wants for ``count`` vectors (given the current one, for hysteresis)."""
        current = self._layout
        wants_ivf = self.kind == "ivf" or (
            self.kind == "auto"
            and (
                count >= self.ann_threshold
                or (current["type"] == "ivf" and count >= self.ann_threshold / 2)  # do not flap at the threshold
            )
        )
        if not wants_ivf or count < IVF_MIN_VECTORS:
            return {"type": "flat"}
        if (
            current["type"] == "ivf"
            and current.get("sq8") == self.sq8
            and current["trained_on"] * RETRAIN_GROWTH > count
        ):
            return current
        return {"type": "ivf", "nlist": ivf_nlist(count), "sq8": self.sq8, "trained_on": count}

    @property
    def layout(self) -> dict:
        """The layout in use: ``{"type": "flat"}`` or ``{"type": "ivf", "nlist", "sq8", "trained_on"}``."""
        with self._lock:
            return dict(self._layout)

    @property
    def building(self) -> bool:
        """Whether a background build is running."""
        builder = self._builder
        return builder is not None and builder.is_alive()

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
        saved = _read_saved(self.path, self.stamp_path, {"identity": self.identity, "dim": self.dim}, expected)
        if saved is None:
            return False
        index, layout = saved
        if layout["type"] == "ivf":
            index.nprobe = min(self.nprobe, layout["nlist"])  # nprobe is a search setting, not a saved one
        with self._lock:
            self._generation += 1
            self._index = index
            self._layout = layout
            self._id_sum = int(expected[1])
            self._dirty = False
            self._maybe_relayout()
        return True

    def rebuild(self, chunks) -> None:
        """Replace the contents with ``chunks`` of (ids, vectors), e.g. ``Store.iter_vectors()``.

        The exact index is filled at once; an IVF the policy wants is then built (in the background if enabled).
        """
        index = _build_flat(self.dim)
        id_sum = 0
        for ids, vectors in chunks:
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
            id_sum += int(ids.sum())
        with self._lock:
            self._generation += 1
            self._index = index
            self._layout = {"type": "flat"}
            self._id_sum = id_sum
            self._dirty = True
            self._maybe_relayout()

    def save(self) -> None:
        """Write the index and its stamp atomically; a crash leaves the previous pair (or none) in place."""
        with self._save_lock:
            with self._lock:
                if not self._dirty and os.path.exists(self.path) and os.path.exists(self.stamp_path):
                    return
                stamp = {
                    "identity": self.identity,
                    "dim": self.dim,
                    "count": self.ntotal,
                    "id_sum": self._id_sum,
                    "layout": self._layout,
                }
                data = faiss.serialize_index(self._index)
                self._dirty = False
            # The bytes reach the disk outside the lock, so searches and adds go on during the (fsync-bound) write.
            try:
                _write_saved(self.path, self.stamp_path, data, stamp)
            except BaseException:
                with self._lock:
                    self._dirty = True  # not saved after all: the next save must write
                raise

    # --- background builds ------------------------------------------------------------------------------------
    def _maybe_relayout(self) -> None:
        """Start a (re)build when the policy wants another layout. Call with the lock held."""
        if self._journal is not None:
            return  # a build is running; its completion checks again
        target = self.desired_layout(self.ntotal)
        if target == self._layout:
            return
        ids = _ids_of(self._index)
        vectors = self._index.reconstruct_batch(ids) if len(ids) else np.empty((0, self.dim), np.float32)
        generation = self._generation
        self._journal = []
        if not self.background:
            self._finish_build(ids, vectors, target, generation)
            return
        self._builder = threading.Thread(
            target=self._finish_build, args=(ids, vectors, target, generation), name="index-build", daemon=True
        )
        self._builder.start()

    def _finish_build(self, ids: np.ndarray, vectors: np.ndarray, layout: dict, generation: int) -> None:
        started = time.monotonic()
        try:
            index = _build(self.dim, ids, np.ascontiguousarray(vectors, dtype=np.float32), layout, self.nprobe)
        except Exception as exc:  # the old index keeps serving; the failure is reported, not hidden
            log.exception("building the %s vector index failed", layout["type"])
            with self._lock:
                self.build_error = f"{type(exc).__name__}: {exc}"
                self._journal = None
            return
        del vectors
        with self._lock:
            journal, self._journal = self._journal or [], None
            if generation != self._generation:
                return  # replaced meanwhile by rebuild() or load()
            for op, op_ids, op_vectors in journal:
                if op == "add":
                    index.add_with_ids(op_vectors, op_ids)
                else:
                    index.remove_ids(op_ids)
            self._index = index
            self._layout = layout
            self._dirty = True
            self.build_error = None
            self.builds += 1
            log.info(
                "vector index is now %s (%d vectors) after %.1fs",
                _describe(layout),
                index.ntotal,
                time.monotonic() - started,
            )
            self._maybe_relayout()

    def wait_for_build(self, timeout: float | None = None) -> bool:
        """Block until no background build runs; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            builder = self._builder
            if builder is None or not builder.is_alive():
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            builder.join(remaining)

    # --- changes ----------------------------------------------------------------------------------------------
    def add(self, ids, vectors: np.ndarray) -> None:
        """Add vectors under ``ids`` (ids must not be present)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            self._index.add_with_ids(vectors, ids)
            self._id_sum += int(ids.sum())
            self._dirty = True
            if self._journal is not None:
                self._journal.append(("add", ids.copy(), vectors.copy()))
            self._maybe_relayout()

    def remove(self, ids) -> None:
        """Remove vectors by id (unknown ids are ignored)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        with self._lock:
            present = [i for i in ids.tolist() if self._has(i)]
            if not present:
                return
            removing = np.asarray(present, dtype=np.int64)
            self._index.remove_ids(removing)
            self._id_sum -= sum(present)
            self._dirty = True
            if self._journal is not None:
                self._journal.append(("remove", removing, None))
            self._maybe_relayout()

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
            if self._layout["type"] == "ivf" and allowed is not None and len(allowed) <= EXACT_SUBSET_MAX:
                scores, ids = self._subset_scores(query, allowed)
                top = np.argsort(-scores, kind="stable")[:k]
                return scores[top], ids[top]
            with _query_threads():
                scores, ids = self._index.search(query, k, params=self._params(allowed, k))
        keep = ids[0] >= 0
        return _best_first(scores[0][keep], ids[0][keep])

    def range_search(
        self, query: np.ndarray, min_score: float, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every (score, id) with score ≥ ``min_score``, best first (approximate on an IVF)."""
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        with self._lock:
            if self.ntotal == 0:
                return np.empty(0, np.float32), np.empty(0, np.int64)
            if self._layout["type"] == "ivf" and allowed is not None and len(allowed) <= EXACT_SUBSET_MAX:
                scores, ids = self._subset_scores(query, allowed)
                keep = scores >= np.float32(min_score)
                scores, ids = scores[keep], ids[keep]
            else:
                # FAISS keeps results strictly above the radius for inner product; nudge so ≥ holds.
                radius = float(np.nextafter(np.float32(min_score), np.float32(-np.inf)))
                with _query_threads():
                    _lims, scores, ids = self._index.range_search(query, radius, params=self._params(allowed))
        return _best_first(scores, ids)

    def sample(self, size: int, allowed: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """Up to ``size`` of the held vectors, drawn uniformly and reproducibly (``seed``), from ``allowed`` ids
        only when given (for estimating a query's score distribution over the library)."""
        with self._lock:
            ids = _ids_of(self._index) if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64))
            if len(ids) > size:
                ids = np.sort(np.random.default_rng(seed).choice(ids, size, replace=False))
            if allowed is not None:
                ids = np.asarray([i for i in ids.tolist() if self._has(i)], dtype=np.int64)
            if ids.size == 0:
                return np.empty((0, self.dim), np.float32)
            return self._index.reconstruct_batch(ids)

    def _subset_scores(self, query: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the allowed ids that are present: an IVF probing a few lists would miss most of a
        small filtered set."""
        ids = np.unique(np.asarray(allowed, dtype=np.int64))
        try:
            vectors = self._index.reconstruct_batch(ids)
        except RuntimeError:  # some allowed ids are not in the index (e.g. being re-embedded): keep the rest
            ids = np.asarray([i for i in ids.tolist() if self._has(i)], dtype=np.int64)
            vectors = self._index.reconstruct_batch(ids) if ids.size else np.empty((0, self.dim), np.float32)
        return (vectors @ query[0]).astype(np.float32), ids

    def _params(self, allowed: np.ndarray | None, k: int = 0):
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self._layout["type"] == "ivf":
            candidates = self.ntotal if allowed is None else min(self.ntotal, len(allowed))
            nprobe = ivf_probes(self.nprobe, self._layout["nlist"], self.ntotal, candidates, k)
            return faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        if selector is None:
            return None
        return faiss.SearchParameters(sel=selector)


def _best_first(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best score first, equal scores by id (as the PostgreSQL catalog orders them too)."""
    order = np.lexsort((ids, -scores))
    return scores[order], ids[order]


def _build_flat(dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None):
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if ids is not None and len(ids):
        index.add_with_ids(vectors, ids)
    return index


def _build_ivf(dim: int, ids: np.ndarray, vectors: np.ndarray, nlist: int, sq8: bool, nprobe: int):
    quantizer = faiss.IndexFlatIP(dim)
    if sq8:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
        )
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ITERATIONS
    sample = min(len(ids), nlist * TRAIN_POINTS_PER_LIST)
    rows = np.random.default_rng(0).choice(len(ids), sample, replace=False) if sample < len(ids) else slice(None)
    index.train(np.ascontiguousarray(vectors[rows]))
    # A hashtable direct map lets remove_ids and reconstruct work by our (sparse) ids.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = min(nprobe, nlist)
    index.add_with_ids(vectors, ids)
    return index


def _build(dim: int, ids: np.ndarray, vectors: np.ndarray, layout: dict, nprobe: int):
    """A FAISS index of ``layout`` holding ``vectors`` under ``ids``."""
    if layout["type"] == "ivf":
        return _build_ivf(dim, ids, vectors, layout["nlist"], bool(layout.get("sq8")), nprobe)
    return _build_flat(dim, ids, vectors)


def _ids_of(index) -> np.ndarray:
    """Every id an index holds (flat: its id map; IVF: its inverted lists)."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = index.invlists
    parts = [
        faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
        for i in range(invlists.nlist)
        if invlists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def _read_saved(path: str, stamp_path: str, model: dict, expected: tuple[int, int]) -> tuple[object, dict] | None:
    """The saved (index, layout) when its stamp is of ``model`` (identity, dim) and holds ``expected``, else None."""
    try:
        with open(stamp_path, encoding="utf-8") as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return None
    if any(stamp.get(key) != value for key, value in model.items()):
        return None
    if (stamp.get("count"), stamp.get("id_sum")) != tuple(expected):
        return None
    try:
        index = faiss.read_index(path)
    except RuntimeError as exc:
        log.warning("index file %s is unreadable (%s); rebuilding from the database", path, exc)
        return None
    if index.ntotal != expected[0] or index.d != model["dim"]:
        return None
    return index, stamp.get("layout") or {"type": "flat"}


def _write_saved(path: str, stamp_path: str, data, stamp: dict) -> None:
    """Write the serialised index, then its stamp, each atomically."""
    # Drop the old stamp first: a crash between the two renames must not pair a new index with an old stamp (or
    # the reverse) — a missing stamp simply means "rebuild".
    with contextlib.suppress(FileNotFoundError):
        os.remove(stamp_path)
    _atomic_write(path, memoryview(data))
    _atomic_write(stamp_path, json.dumps(stamp).encode())


def _describe(layout: dict) -> str:
    if layout["type"] != "ivf":
        return "exact (flat)"
    return f"IVF{layout['nlist']}{',SQ8' if layout.get('sq8') else ''} (trained on {layout['trained_on']})"


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

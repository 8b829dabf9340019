"""Pairs of near-identical vectors among many (the duplicate finder's proposals): a short-lived FAISS range
search over the vectors of one kind, exact when small, an IVF tuned for near-duplicates when large."""

from __future__ import annotations

import faiss
import numpy as np

PROPOSE_MIN_COSINE = 0.90  # vectors propose a pair at or above this cosine
PROPOSE_MAX_NEIGHBOURS = 32  # proposals kept per item (its most similar ones)
EXACT_SEARCH_MAX = 20000  # up to this many vectors the range search is exact; above, an IVF
# The IVF is tuned for near-duplicates, not for search: many small lists and few probed, since a copy sits in the
# same list as its original or the next one (at 100k: 1264 lists, 4 probed — recall 1.0 of planted pairs in
# bench/bench_duplicates.py, 6x less CPU than 632 lists / 16 probed).
IVF_LISTS_PER_SQRT = 4  # IVF lists: this × sqrt(n)
IVF_NPROBE = 4  # lists searched per query
IVF_TRAIN_PER_LIST = 20  # k-means sample per list (training is most of the cost at 100k)
IVF_KMEANS_ITERATIONS = 8
RANGE_BATCH = 2048  # queries per FAISS range search call (bounds the memory of the results)


def _search_index(vectors: np.ndarray):
    """A FAISS inner-product index over ``vectors`` (rows are their positions): exact when small, IVF when large."""
    n, dim = vectors.shape
    if n <= EXACT_SEARCH_MAX:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = int(IVF_LISTS_PER_SQRT * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_KMEANS_ITERATIONS
        index.cp.min_points_per_centroid = IVF_TRAIN_PER_LIST  # the sample is small on purpose: no warning
        sample = min(n, nlist * IVF_TRAIN_PER_LIST)
        rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
        index.train(np.ascontiguousarray(vectors[rows]))
        index.nprobe = min(IVF_NPROBE, nlist)
    index.add(vectors)
    return index


def propose_pairs(
    vectors: np.ndarray, min_cosine: float = PROPOSE_MIN_COSINE, max_neighbours: int = PROPOSE_MAX_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows (i < j) whose cosine is ≥ ``min_cosine``, each row keeping its ``max_neighbours`` best;
    returns (pairs as an (m, 2) array, their cosines)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 2:
        return np.empty((0, 2), np.int64), np.empty(0, np.float32)
    index = _search_index(vectors)
    # FAISS keeps results strictly above the radius for inner product; nudge so ≥ holds.
    radius = float(np.nextafter(np.float32(min_cosine), np.float32(-np.inf)))
    found_pairs, found_scores = [], []
    for start in range(0, n, RANGE_BATCH):
        lims, scores, ids = index.range_search(vectors[start : start + RANGE_BATCH], radius)
        queries = np.repeat(np.arange(start, start + len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = ids != queries
        queries, ids, scores = queries[keep], ids[keep], scores[keep]
        order = np.lexsort((-scores, queries))  # by query, best first
        queries, ids, scores = queries[order], ids[order], scores[order]
        first = np.searchsorted(queries, queries, side="left")
        keep = (np.arange(len(queries)) - first) < max_neighbours
        found_pairs.append(np.stack([queries[keep], ids[keep]], axis=1))
        found_scores.append(scores[keep])
    pairs = np.concatenate(found_pairs).astype(np.int64)
    scores = np.concatenate(found_scores)
    pairs.sort(axis=1)
    pairs, first = np.unique(pairs, axis=0, return_index=True)
    return pairs, scores[first]

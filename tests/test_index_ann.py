"""The vector index's IVF layout: chosen by size, built in the background without losing concurrent changes,
add/remove/reconstruct by id, persistence, filters, and recall@10 against exact search on clustered data."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from materialsearch.catalog.vector_index import VectorIndex, ivf_nlist


def clustered(n: int, dim: int = 128, clusters: int = 200, seed: int = 0, spread: float = 0.5, draw: int = 0):
    """Unit vectors in clusters inside a shared cone, like CLIP embeddings of a photo library (random pairs
    ~0.33 cosine, 10th neighbour ~0.87). ``draw`` picks other points around the same centres (queries)."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    centres = common * 0.8 / np.linalg.norm(common) + rng.normal(size=(clusters, dim)) / np.sqrt(dim)
    rng = np.random.default_rng([seed, draw])
    points = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim)) * spread / np.sqrt(dim)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors, ids, query, k):
    scores = vectors @ query
    order = np.argsort(-scores)[:k]
    return ids[order]


def recall_at(index, vectors, ids, queries, k=10):
    hits = 0
    for query in queries:
        _scores, found = index.search(query, k)
        hits += len(set(found.tolist()) & set(exact_top(vectors, ids, query, k).tolist()))
    return hits / (k * len(queries))


@pytest.fixture
def data():
    vectors = clustered(12000)
    ids = np.arange(1, 12001, dtype=np.int64) * 3  # sparse ids, as the database's after deletions
    queries = clustered(60, draw=1)
    return vectors, ids, queries


def test_auto_switches_to_ivf_and_keeps_recall(tmp_path, data):
    vectors, ids, queries = data
    index = VectorIndex(str(tmp_path / "i.faiss"), 128, "m", kind="auto", ann_threshold=10000, background=False)
    index.add(ids[:9000], vectors[:9000])
    assert index.layout == {"type": "flat"}
    index.add(ids[9000:], vectors[9000:])
    layout = index.layout
    assert layout["type"] == "ivf" and layout["nlist"] == ivf_nlist(12000) and layout["trained_on"] == 12000
    assert index.ntotal == 12000 and index.checksum() == (12000, int(ids.sum()))
    assert recall_at(index, vectors, ids, queries) >= 0.98


def test_ivf_add_remove_filter_range_and_persistence(tmp_path, data):
    vectors, ids, queries = data
    path = str(tmp_path / "i.faiss")
    index = VectorIndex(path, 128, "m", kind="ivf", background=False)
    index.add(ids, vectors)
    assert index.layout["type"] == "ivf"
    gone = ids[:500]
    index.remove(np.concatenate([gone, [999_999_999]]))  # unknown ids are ignored
    assert index.ntotal == 11500 and index.checksum() == (11500, int(ids[500:].sum()))
    for query in queries[:10]:
        _scores, found = index.search(query, 50)
        assert not set(found.tolist()) & set(gone.tolist())
    # a removed id comes back under the same id with another vector
    index.add(gone[:1], vectors[-1:])
    scores, found = index.search(vectors[-1], 2)
    assert set(found.tolist()) == {int(gone[0]), int(ids[-1])} and scores[0] == pytest.approx(1.0, abs=1e-5)

    # a small filter is answered exactly over the allowed ids (an IVF probe would miss most of them)
    allowed = ids[1000:1100:7]
    scores, found = index.search(queries[0], 5, allowed)
    members = np.isin(ids, allowed)
    assert found.tolist() == exact_top(vectors[members], ids[members], queries[0], 5).tolist()
    scores, found = index.range_search(queries[0], 0.0, allowed)
    assert set(found.tolist()) <= set(allowed.tolist()) and np.all(np.diff(scores) <= 0)

    # range search on the IVF: best first, every score >= the bound
    scores, found = index.range_search(vectors[600], 0.95)
    assert found[0] == ids[600] and np.all(scores >= 0.95) and np.all(np.diff(scores) <= 0)

    index.save()
    reopened = VectorIndex(path, 128, "m", kind="ivf", background=False)
    assert reopened.load(index.checksum())
    assert reopened.layout == index.layout and reopened.ntotal == index.ntotal
    assert reopened.search(queries[3], 10)[1].tolist() == index.search(queries[3], 10)[1].tolist()
    # the exact setting turns a saved IVF back into a flat index on load
    flat = VectorIndex(path, 128, "m", kind="flat", background=False)
    assert flat.load(index.checksum()) and flat.layout == {"type": "flat"} and flat.ntotal == index.ntotal


def test_background_build_keeps_changes_made_meanwhile(tmp_path, data):
    vectors, ids, queries = data
    index = VectorIndex(str(tmp_path / "i.faiss"), 128, "m", kind="auto", ann_threshold=10000)
    index.add(ids[:10000], vectors[:10000])  # crosses the threshold: the build starts in the background
    errors = []

    def searcher():
        # searches keep answering from the old index while the IVF is built
        try:
            for query in queries:
                assert len(index.search(query, 10)[1]) == 10
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=searcher)
    thread.start()
    index.add(ids[10000:], vectors[10000:])
    index.remove(ids[:100])
    thread.join()
    assert index.wait_for_build(120)
    assert not errors and index.build_error is None
    assert index.layout["type"] == "ivf" and index.builds >= 1
    assert index.checksum() == (11900, int(ids[100:].sum()))
    assert index.search(vectors[-1], 1)[1].tolist() == [ids[-1]]  # added during the build
    assert ids[0] not in index.search(vectors[0], 5)[1]  # removed during the build
    assert recall_at(index, vectors[100:], ids[100:], queries) >= 0.98


def test_shrinking_collection_goes_back_to_exact(tmp_path, data):
    vectors, ids, _queries = data
    index = VectorIndex(str(tmp_path / "i.faiss"), 128, "m", kind="auto", ann_threshold=10000, background=False)
    index.add(ids, vectors)
    assert index.layout["type"] == "ivf"
    index.remove(ids[:6000])  # 6000 left: still above half the threshold, no flapping
    assert index.layout["type"] == "ivf"
    index.remove(ids[6000:7500])
    assert index.layout == {"type": "flat"} and index.ntotal == 4500


def test_sq8_recall_and_memory(tmp_path, data):
    vectors, ids, queries = data
    index = VectorIndex(str(tmp_path / "i.faiss"), 128, "m", kind="ivf", sq8=True, background=False)
    index.add(ids, vectors)
    assert index.layout["sq8"] is True
    assert recall_at(index, vectors, ids, queries) >= 0.95
    index.save()
    flat = VectorIndex(str(tmp_path / "f.faiss"), 128, "m", kind="flat")
    flat.add(ids, vectors)
    flat.save()
    assert (tmp_path / "i.faiss").stat().st_size < (tmp_path / "f.faiss").stat().st_size / 2.5


def test_deep_pages_on_ivf_come_back_full(tmp_path, data):
    vectors, ids, queries = data
    index = VectorIndex(str(tmp_path / "i.faiss"), 128, "m", kind="ivf", nprobe=2, background=False)
    index.add(ids, vectors)
    # nprobe 2 of ~219 lists holds ~110 vectors; a page ending at 3000 must still get 3000 results
    scores, found = index.search(queries[0], 3000)
    assert len(found) == 3000 and len(set(found.tolist())) == 3000 and np.all(np.diff(scores) <= 1e-6)


def test_services_build_the_index_from_the_settings(open_services):
    services = open_services(index_kind="ivf", ann_threshold=1234, ivf_nprobe=7, index_sq8=True)
    index = services.index
    assert (index.kind, index.ann_threshold, index.nprobe, index.sq8) == ("ivf", 1234, 7, True)
    assert index.layout == {"type": "flat"}  # an empty collection cannot train an IVF: exact until it can
    assert open_services(data_dir=services.settings.data_dir + "2").index.kind == "auto"  # the default


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_a_one_vector_query_runs_on_one_openmp_thread_and_leaves_the_callers_count(tmp_path, data, kind):
    """A query's FAISS call runs on one OpenMP thread (two lost badly on busy cores: ``_query_threads``); the
    calling thread's own count is given back, so a build or a batch search after it keeps every core."""
    import faiss

    vectors, ids, queries = data
    index = VectorIndex(str(tmp_path / "i.faiss"), 128, "m", kind=kind, background=False)
    index.add(ids, vectors)
    seen = []

    class Watching:  # the index as it is, noting the thread count FAISS would use inside each query call
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            found = getattr(self.inner, name)
            if name in ("search", "range_search"):

                def call(*args, **kwargs):
                    seen.append((name, faiss.omp_get_max_threads()))
                    return found(*args, **kwargs)

                return call
            return found

    index._index = Watching(index._index)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        _scores, found = index.search(queries[0], 10)
        assert found.tolist() == exact_top(vectors, ids, queries[0], 10).tolist() or kind == "ivf"
        assert len(index.range_search(queries[0], 0.9)[1]) > 0
        assert seen == [("search", 1), ("range_search", 1)]
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)

"""Nearest neighbours on PostgreSQL + pgvector: each query with its filters in one SQL statement.

``PgVectorSearch`` answers what ``VectorSearch`` answers on SQLite + FAISS (``knn``, ``within``, ``count``,
``sample``, ``version``) from the ``vectors`` table itself: the filters are the same SQL (``apply_filters``) in the
same statement as the distance order, so there is no id list to build or cache. Scores are pgvector's inner
product (``<#>`` is its negation) in float32, as FAISS computes them; equal scores are ordered by vector id on both
engines.

``PgVectorIndex`` stands where the FAISS index stands for the catalog (``Catalog``, the status page): the database
holds the vectors, so adding and saving are nothing; what it owns is the HNSW index's policy. Like FAISS's ``auto``,
search is exact below ``MS_ANN_THRESHOLD`` vectors (no index: a sequential scan ranks every vector) and an HNSW
index (``vector_ip_ops`` on the column cast to the model's dimension) is built above it, in the background; filtered
HNSW searches use pgvector's iterative scans (``hnsw.iterative_scan = relaxed_order``, set on every connection by
``postgres``), re-sorted exactly by the outer query. ``MS_INDEX=flat`` never builds it, ``ivf`` always does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable

import numpy as np
from sqlalchemy import Float, cast, func, literal, select

from materialsearch.catalog.filters import Filters, apply_filters
from materialsearch.catalog.schema import Item, PgVector, Vector
from materialsearch.catalog.sql import stack_blobs
from materialsearch.catalog.store import Store
from materialsearch.catalog.vectors import Neighbours

log = logging.getLogger(__name__)

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
INDEX_PREFIX = "ix_vectors_hnsw_"


class PgVectorIndex:
    """The catalog's vectors in PostgreSQL as the catalog's index: counts, the change token and the HNSW policy."""

    def __init__(
        self,
        store: Store,
        dim: int,
        identity: str,
        kind: str = "auto",
        ann_threshold: int = 50000,
        build_memory_mb: int = 512,
    ):
        self.store = store
        self.build_memory_mb = build_memory_mb
        self.dim = dim
        self.identity = identity
        self.kind = kind
        self.ann_threshold = ann_threshold
        self.index_name = f"{INDEX_PREFIX}{int(dim)}"
        self._builder: threading.Thread | None = None
        self._has_index = False
        self._checksum: tuple[Hashable, tuple[int, int]] | None = None
        self._lock = threading.Lock()
        self.build_error: str | None = None

    # --- what the catalog and the status page read ----------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Number of vectors held."""
        return self.checksum()[0]

    def checksum(self) -> tuple[int, int]:
        """(count, sum of ids) of the stored vectors, recomputed only after a commit (the change watch)."""
        version = self.store.places.watch.version()
        cached = self._checksum
        if cached is not None and cached[0] == version:
            return cached[1]
        found = self.store.vector_checksum()
        self._checksum = (version, found)
        return found

    @property
    def layout(self) -> dict:
        """``{"type": "hnsw"}`` once the HNSW index answers, else ``{"type": "flat"}`` (exact)."""
        return {"type": "hnsw" if self._has_index else "flat"}

    @property
    def building(self) -> bool:
        """Whether the HNSW index is being built."""
        builder = self._builder
        return builder is not None and builder.is_alive()

    # --- the catalog's calls --------------------------------------------------------------------------------------
    def load(self, expected: tuple[int, int]) -> bool:
        """Nothing to load (the database holds the vectors): drop an index made for another dimension or left
        invalid by an interrupted build, note whether this one exists, and build it when the policy wants it.
        Always True."""
        with self.store.engine.begin() as conn:
            indexes = conn.exec_driver_sql(
                "SELECT c.relname, i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index AS p"
                " WHERE p.index_relid = i.indexrelid) FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'vectors'::regclass AND c.relname LIKE %s",
                (INDEX_PREFIX + "%",),
            ).all()
            for name, valid, building in indexes:
                if name == self.index_name and valid:
                    self._has_index = True
                elif not building:  # another process's build in progress is left to finish
                    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        self._follow_policy(expected[0])
        return True

    def rebuild(self, _chunks) -> None:
        """Nothing to rebuild: the database is the index."""

    def save(self) -> None:
        """Nothing to save."""

    def add(self, _ids, vectors: np.ndarray) -> None:
        """The vectors are in the database already; an HNSW index is started when the collection grew past the
        threshold."""
        if len(vectors) and not self._has_index and self.kind != "flat":
            self._follow_policy(self.store.vector_checksum()[0])

    def remove(self, _ids) -> None:
        """Nothing: deleting the rows removed them from the HNSW index too."""

    def wait_for_build(self, timeout: float | None = None) -> bool:
        """Wait for a background build; True when none is running."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return not self.building

    def _follow_policy(self, count: int) -> None:
        wanted = self.kind == "ivf" or (self.kind == "auto" and count >= self.ann_threshold)
        with self._lock:
            if not wanted or self._has_index or self.building:
                return
            self._builder = threading.Thread(target=self._build, name="pgvector hnsw build", daemon=True)
            self._builder.start()

    def _build(self) -> None:
        try:
            with self.store.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql(f"SET maintenance_work_mem = '{int(self.build_memory_mb)}MB'")
                conn.exec_driver_sql(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {self.index_name} ON vectors USING hnsw"
                    f" ((embedding::vector({int(self.dim)})) vector_ip_ops)"
                    f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
                )
            self._has_index = True
            log.info("built the HNSW index %s", self.index_name)
        except Exception as error:  # noqa: BLE001 - a failed build leaves exact search answering
            self.build_error = str(error)
            log.warning("could not build the HNSW index (search stays exact): %s", error)


class PgVectorSearch:
    """Filtered nearest-neighbour search on PostgreSQL + pgvector, one statement per query."""

    def __init__(self, store: Store, index: PgVectorIndex):
        self._store = store
        self._index = index

    def version(self) -> Hashable:
        """Changes whenever the searchable vectors change; equal tokens mean the same vectors (across restarts)."""
        return self._index.checksum()

    def _distance(self, vector: np.ndarray):
        """pgvector's negative inner product of each stored vector with ``vector`` (the HNSW index's expression)."""
        dim = self._index.dim
        query = cast(literal(np.asarray(vector, dtype="<f4").reshape(-1).tobytes(), PgVector()), PgVector(dim))
        return cast(Vector.embedding, PgVector(dim)).op("<#>", return_type=Float)(query)

    def _over(self, query, filters: Filters):
        return apply_filters(query.join(Item, Item.id == Vector.item_id), filters) if filters.active else query

    def count(self, filters: Filters) -> int:
        """How many vectors pass ``filters`` (every vector without one)."""
        if not filters.active:
            return self._index.ntotal
        with self._store.engine.connect() as conn:
            return int(conn.execute(self._over(select(func.count(Vector.id)), filters)).scalar() or 0)

    def knn(self, vector: np.ndarray, k: int, filters: Filters):
        """The ``k`` vectors most similar to ``vector`` among those passing ``filters``, best first."""
        if k <= 0:
            return Neighbours(np.empty(0, np.float32), np.empty(0, np.int64))
        return self._neighbours(self.knn_statement(vector, k, filters))

    def knn_statement(self, vector: np.ndarray, k: int, filters: Filters):
        """The one statement ``knn`` runs: the inner query is what an HNSW index answers (ORDER BY the distance,
        LIMIT, the filters checked on each candidate as the scan goes); the outer one orders the candidates
        exactly, equal scores by id."""
        distance = self._distance(vector).label("distance")
        nearest = self._over(select(Vector.id.label("id"), distance), filters).order_by(distance).limit(k).subquery()
        return select(nearest.c.id, nearest.c.distance).order_by(nearest.c.distance, nearest.c.id)

    def within(self, vector: np.ndarray, min_score: float, filters: Filters):
        """Every vector passing ``filters`` whose cosine with ``vector`` is at least ``min_score``, best first."""
        distance = self._distance(vector)
        bound = -float(np.float32(min_score))
        query = self._over(select(Vector.id, distance), filters).where(distance <= bound)
        return self._neighbours(query.order_by(distance, Vector.id))

    def _neighbours(self, query):
        with self._store.engine.connect() as conn:
            rows = conn.execute(query).all()
        ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        scores = np.fromiter((-row[1] for row in rows), np.float32, len(rows))
        return Neighbours(scores, ids)

    def sample(self, size: int, filters: Filters) -> np.ndarray:
        """Up to ``size`` vectors passing ``filters``, drawn uniformly and reproducibly (as the FAISS side draws:
        seed 0 over the ids in order)."""
        with self._store.engine.connect() as conn:
            ids = np.fromiter(
                conn.execute(self._over(select(Vector.id), filters).order_by(Vector.id)).scalars(), np.int64
            )
        if len(ids) > size:
            ids = np.sort(np.random.default_rng(0).choice(ids, size, replace=False))
        if ids.size == 0:
            return np.empty((0, self._index.dim), np.float32)
        found: dict[int, bytes] = {}
        with self._store.engine.connect() as conn:
            for start in range(0, len(ids), 10000):
                chunk = [int(i) for i in ids[start : start + 10000]]
                found.update(conn.execute(select(Vector.id, Vector.embedding).where(Vector.id.in_(chunk))).all())
        return stack_blobs([found[int(i)] for i in ids])

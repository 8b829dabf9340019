"""The catalog: the database and the vector index, kept in agreement.

The database (``Store``) is the truth; the FAISS index (``VectorIndex``) is a cache of its vectors that must hold
exactly the same ids. Everything that writes vectors goes through ``Catalog``, which writes the database first (one
committed transaction) and then makes the index follow, and ``checkpoint`` is the only place the index file is
saved. A crash between the two leaves an index whose stamp disagrees with the database, and ``open`` rebuilds it.

The rest of the product reaches the data through the catalog's repositories, one per concern: ``items`` (the
items, their vectors and meta facts: ``Store``), ``vectors`` (nearest neighbours with filters, one call each),
``text`` (the OCR state and the text found in photos), ``tags``, ``places``, ``duplicates`` and ``tokens``. Each
returns plain frozen dataclasses; none hands out its engine.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence

from materialsearch.catalog.ownership import DatabaseLock, DataDirLock
from materialsearch.catalog.pg_vectors import PgVectorIndex, PgVectorSearch
from materialsearch.catalog.postgres import retrying
from materialsearch.catalog.records import ItemRecord
from materialsearch.catalog.store import DB_FILENAME, Store
from materialsearch.catalog.vector_index import VectorIndex
from materialsearch.catalog.vectors import VectorSearch
from materialsearch.catalog.work_queue import WorkClaim, WorkQueue
from materialsearch.encoders import ModelError

log = logging.getLogger(__name__)

INDEX_FILENAME = "index.faiss"  # inside MS_DATA_DIR, beside the database
MODEL_IDENTITY_KEY = "model_identity"


class Catalog:
    """Owns a ``Store`` and its ``VectorIndex``; the only writer of both.

    Only the owner of the data dir (``owner=True``) writes the index file; another process keeps the index it
    loads or rebuilds in memory.
    """

    def __init__(self, store: Store, index: VectorIndex | PgVectorIndex, *, owner: bool = True):
        self.store = store
        self.index = index
        self.owner = owner
        self.vectors = PgVectorSearch(store, index) if isinstance(index, PgVectorIndex) else VectorSearch(store, index)

    @staticmethod
    def ownership(data_dir: str, database_url: str = "") -> DataDirLock:
        """Who owns the catalog (scans, schedules, writes the index file): ask ``acquire()``. On SQLite the data
        dir's file lock answers; on PostgreSQL that and an advisory lock in the database (one owner across hosts)."""
        return DatabaseLock(data_dir, database_url) if database_url else DataDirLock(data_dir)

    @staticmethod
    def open_store(data_dir: str, database_url: str = "") -> Store:
        """The catalog's database, brought to the current schema (a newer one is refused): the data dir's SQLite
        file, or the PostgreSQL database ``database_url`` names (``MS_DATABASE_URL``)."""
        return Store(database_url or os.path.join(data_dir, DB_FILENAME))

    @staticmethod
    def vector_index(
        data_dir: str, dim: int, identity: str, settings, store: Store | None = None
    ) -> VectorIndex | PgVectorIndex:
        """The vector index for a model (``identity``, ``dim``), laid out as the settings say: the data dir's FAISS
        file, or on a PostgreSQL ``store`` its pgvector column (HNSW above the threshold)."""
        if store is not None and store.postgres:
            return PgVectorIndex(
                store,
                dim,
                identity,
                kind=settings.index_kind,
                ann_threshold=settings.ann_threshold,
                build_memory_mb=settings.pg_index_memory_mb,
            )
        return VectorIndex(
            os.path.join(data_dir, INDEX_FILENAME),
            dim,
            identity,
            kind=settings.index_kind,
            ann_threshold=settings.ann_threshold,
            nprobe=settings.ivf_nprobe,
            sq8=settings.index_sq8,
        )

    # --- the repositories -------------------------------------------------------------------------------------
    @property
    def items(self) -> Store:
        """The items, their vectors (by item) and the meta facts."""
        return self.store

    @property
    def text(self):
        """The OCR state and the text found in photos (``OcrStore``)."""
        return self.store.text

    @property
    def tags(self):
        """The zero-shot tags' rows (``TagRepository``)."""
        return self.store.tags

    @property
    def places(self):
        """Positions and the places they resolve to (``PlaceData``)."""
        return self.store.places

    @property
    def duplicates(self):
        """Hidden items and perceptual hashes (``DuplicateData``)."""
        return self.store.duplicates

    @property
    def tokens(self):
        """API tokens (hashes only; ``TokenStore``)."""
        return self.store.tokens

    def work_queue(self, lease_s: float) -> WorkQueue | None:
        """The scan's work queue, which workers on several hosts share (``lease_s``: how long a claim lasts
        unrenewed); None on SQLite, where the owner's scan embeds everything itself."""
        return WorkQueue(self.store.engine, lease_s) if self.store.postgres else None

    def version(self):
        """The vectors' change token (``VectorSearch.version``): caches of anything computed from them key on it."""
        return self.vectors.version()

    # --- opening ----------------------------------------------------------------------------------------------
    def open(self) -> str | None:
        """Adopt the index's model and load the index (or rebuild it from the database).

        When the database holds vectors of another model, the owner drops them and marks their items for
        re-embedding; the returned sentence says so (None when nothing changed). Another process refuses with
        ModelError: only the owner may re-embed.
        """
        change = self._adopt_model(self.index.identity)
        self._load_index()
        return change

    def _adopt_model(self, identity: str) -> str | None:
        previous = self.store.get_meta(MODEL_IDENTITY_KEY)
        change = None
        if previous is not None and previous != identity:
            data_dir = self.store.location
            if not self.owner:
                raise ModelError(
                    f"{data_dir} holds vectors of another model ({previous.split('|')[0]}); only the "
                    "process that owns the data dir re-embeds them: use the same MS_MODEL here, or stop the server "
                    "and start it (or a scan) with the new one"
                )
            count = self.store.mark_all_pending()
            change = (
                f"the model changed ({previous.split('|')[0]} → {identity.split('|')[0]}): "
                f"{count} items will be re-embedded in the background"
            )
            log.warning(change)
        if self.owner and previous != identity:
            self.store.set_meta(MODEL_IDENTITY_KEY, identity)
        return change

    def writes_refused(self, identity: str) -> str | None:
        """For a process that writes vectors without owning the catalog (a scan worker): why it may not write now —
        the owner has not opened the catalog yet (it sets the model), or the catalog holds another model's vectors
        (ModelError) — or None."""
        stored = self.store.get_meta(MODEL_IDENTITY_KEY)
        if stored is None:
            return "the catalog has no model yet: waiting for the app (its owner) to open it"
        if stored != identity:
            raise ModelError(
                f"the catalog holds vectors of another model ({stored.split('|')[0]}) than this worker's "
                f"({identity.split('|')[0]}): run the worker with the app's MS_MODEL, MS_BACKEND and MS_PRECISION"
            )
        return None

    def _load_index(self) -> None:
        # An index whose stamp disagrees with the database (crash, copy, model change) or that cannot be read is
        # rebuilt from it.
        if self.index.load(self.store.vector_checksum()):
            return
        started = time.monotonic()
        self.index.rebuild(self.store.iter_vectors())
        self.checkpoint()
        log.info(
            "rebuilt the vector index from the database: %d vectors in %.1fs",
            self.index.ntotal,
            time.monotonic() - started,
        )

    # --- changes ----------------------------------------------------------------------------------------------
    def apply(self, records: Sequence[ItemRecord], claim: WorkClaim | None = None) -> None:
        """Write one batch of scanned files (insert or replace by path) in one transaction; the index follows. On
        PostgreSQL a batch whose connection was lost (a server restart) is written again once it is back; files
        taken from the work queue (``claim``) are written only while the writer still holds them."""
        if self.store.postgres:
            new_ids, new_vectors, replaced = retrying(lambda: self.store.write_batch(records, claim))
        else:
            new_ids, new_vectors, replaced = self.store.write_batch(records, claim)
        self.index.remove(replaced)
        if self.owner or not self.store.postgres:  # PostgreSQL's index is built by the owner alone (not workers)
            self.index.add(new_ids, new_vectors)

    def remove(self, item_ids: Iterable[int]) -> None:
        """Delete items and their vectors."""
        self.index.remove(self.store.delete_items(item_ids))

    def move(self, item_id: int, path: str, size: int, mtime_ns: int, still: str | None) -> None:
        """A file moved inside the library: its item (and vectors) now live at ``path``; ``still`` is its pair."""
        self.store.move_item(item_id, path, size, mtime_ns, still)

    def checkpoint(self) -> None:
        """Save the index with its stamp (atomically; nothing to do when unchanged). Only the owner writes it."""
        if self.owner:
            self.index.save()

    def close(self) -> None:
        """Save the index (the owner) and release the database."""
        try:
            self.checkpoint()
        finally:
            self.store.close()

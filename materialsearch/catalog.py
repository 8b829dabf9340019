"""The catalog: the database and the FAISS index, kept in agreement — every write goes through here.

A minimal version for the scanner's branch (writes only); the full catalog (open, checksum, rebuild) replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .index import VectorIndex
from .records import ItemRecord
from .store import Store


class Catalog:
    """Owns the ``Store`` and the ``VectorIndex``; reads go straight to ``store``."""

    def __init__(self, store: Store, index: VectorIndex):
        self.store = store
        self.index = index

    def apply(self, records: Sequence[ItemRecord]) -> None:
        """Write one committed batch of records; the index follows (replaced vectors out, new ones in)."""
        new_ids, new_vectors, replaced = self.store.write_batch(records)
        self.index.remove(replaced)
        self.index.add(new_ids, new_vectors)

    def remove(self, item_ids: Iterable[int]) -> None:
        """Delete items and their vectors; the index follows."""
        self.index.remove(self.store.delete_items(item_ids))

    def move(self, item_id: int, path: str, size: int, mtime_ns: int, still: str | None) -> None:
        """A file moved inside the library: its item (and vectors) now live under ``path``."""
        self.store.move_item(item_id, path, size, mtime_ns, still)

    def checkpoint(self) -> None:
        """Save the index, so a restart does not have to rebuild it (the only place the index is saved)."""
        self.index.save()

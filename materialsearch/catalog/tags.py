"""The tags' rows: the zero-shot tags of each item (``item_tags``) and the vectors they are computed from.

The rule that picks the tags lives in ``organise.tags``; this module only reads and writes what it decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.schema import Item, ItemTag, Meta, Vector
from materialsearch.catalog.sql import any_of, chunked

# Asked for every page of results: built once (``sql.any_of``).
_TAGS_OF = (
    select(ItemTag.item_id, ItemTag.tag).where(any_of(ItemTag.item_id)).order_by(ItemTag.item_id, ItemTag.score.desc())
)


class TagRepository:
    """Reads and replaces the ``item_tags`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def indexed_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(item id per vector, vectors) of the indexed items, grouped by item."""
        query = (
            select(Vector.item_id, Vector.embedding)
            .join(Item, Item.id == Vector.item_id)
            .where(Item.status == ItemStatus.OK)
            .order_by(Vector.item_id, Vector.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return np.empty(0, np.int64), np.empty((0, dim), np.float32)
        owners = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), -1)
        return owners, vectors

    def replace_all(self, rows: Sequence[tuple[int, str, float]], state_key: str, state: str) -> None:
        """Every item's tags become ``rows`` (item id, tag key, score), with the state they were computed from
        stored under ``state_key`` in the same transaction: an interrupted write leaves the old tags and state."""
        with self.engine.begin() as conn:
            conn.execute(delete(ItemTag))
            alive = set(conn.execute(select(Item.id).where(Item.status == ItemStatus.OK)).scalars())
            kept = [
                {"item_id": item_id, "tag": tag, "score": score}
                for item_id, tag, score in rows
                if item_id in alive  # items a scan removed meanwhile
            ]
            if kept:
                conn.execute(insert(ItemTag), kept)
            conn.execute(delete(Meta).where(Meta.key == state_key))
            conn.execute(insert(Meta).values(key=state_key, value=state))

    def counts(self) -> dict[str, int]:
        """Tag key → how many items carry it (keys in use only)."""
        with self.engine.connect() as conn:
            found = conn.execute(select(ItemTag.tag, func.count(ItemTag.item_id)).group_by(ItemTag.tag)).all()
        return {tag: int(count) for tag, count in found}

    def tags_of(self, item_ids: Iterable[int]) -> dict[int, list[str]]:
        """Item id → its tag keys, most standing-out first (items without tags are left out)."""
        found: dict[int, list[str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(int(i) for i in item_ids):
                for item_id, tag in conn.execute(_TAGS_OF, {"values": chunk}):
                    found.setdefault(item_id, []).append(tag)
        return found

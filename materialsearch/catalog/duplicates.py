"""What the duplicates feature keeps: items hidden from results, the perceptual hashes that confirm near-identical
pictures (unsigned 64-bit, stored as SQLite's signed integers), and the vectors of one kind to compare."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.schema import HiddenItem, Item, PerceptualHash, Vector
from materialsearch.catalog.sql import chunked, signed64, stack_blobs, unsigned64


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def replace_hashes(conn, rows: Sequence[tuple[int, int, str, int]]) -> None:
    """Store (item id, time or -1, rendition key, unsigned 64-bit pHash) rows, replacing older ones for the same
    item and time, inside the caller's transaction."""
    signed = [{"item_id": i, "time_ms": t, "rendition": k, "phash": signed64(h)} for i, t, k, h in rows]
    for chunk in chunked(signed):
        for row in chunk:
            conn.execute(
                delete(PerceptualHash).where(
                    PerceptualHash.item_id == row["item_id"], PerceptualHash.time_ms == row["time_ms"]
                )
            )
        conn.execute(insert(PerceptualHash), chunk)


class DuplicateData:
    """What the duplicates feature keeps: items hidden from results, perceptual hashes, vectors by kind."""

    def __init__(self, engine: Engine, watch):
        self.engine = engine
        self.watch = watch  # the catalog's change watch (``ChangeWatch``/``PgChangeWatch``): any commit changes it
        self._has_hidden: tuple[int, bool] | None = None  # (the watch's version, the answer)

    def hide(self, item_ids: Iterable[int]) -> None:
        """Hide items from results (already hidden ones stay as they are)."""
        now = _now()
        with self.engine.begin() as conn:
            for chunk in chunked(sorted(set(item_ids))):
                known = set(conn.execute(select(HiddenItem.item_id).where(HiddenItem.item_id.in_(chunk))).scalars())
                rows = [{"item_id": i, "hidden_at": now} for i in chunk if i not in known]
                if rows:
                    conn.execute(insert(HiddenItem), rows)

    def unhide(self, item_ids: Iterable[int]) -> None:
        """Show items in results again."""
        with self.engine.begin() as conn:
            for chunk in chunked(set(item_ids)):
                conn.execute(delete(HiddenItem).where(HiddenItem.item_id.in_(chunk)))

    def hidden_ids(self) -> set[int]:
        """Every hidden item's id."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(HiddenItem.item_id)).scalars())

    def has_hidden(self) -> bool:
        """Whether any item is hidden (searches then leave them out; asked by every search, so known until the
        next commit, by anyone)."""
        version = self.watch.version()  # before reading: a commit meanwhile makes the next call ask again
        if self._has_hidden is None or self._has_hidden[0] != version:
            with self.engine.connect() as conn:
                self._has_hidden = (version, conn.execute(select(HiddenItem.item_id).limit(1)).scalar() is not None)
        return self._has_hidden[1]

    def kind_vectors(self, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item ids, frame times or -1, vectors) of every indexed item of ``kind``, by item then time."""
        query = (
            select(Vector.item_id, func.coalesce(Vector.time_ms, -1), Vector.embedding)
            .join(Item, Item.id == Vector.item_id)
            .where(Item.status == ItemStatus.OK, Item.kind == kind)
            .order_by(Vector.item_id, Vector.time_ms)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        times = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        return items, times, stack_blobs([r[2] for r in rows])

    def perceptual_hashes(self) -> dict[tuple[int, int], tuple[str, int]]:
        """(item id, time or -1) → (rendition key it was computed from, unsigned 64-bit pHash)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PerceptualHash.item_id, PerceptualHash.time_ms, PerceptualHash.rendition, PerceptualHash.phash)
            )
            return {(item, time): (key, unsigned64(value)) for item, time, key, value in rows}

    def save_perceptual_hashes(self, rows: Sequence[tuple[int, int, str, int]]) -> None:
        """Store (item id, time or -1, rendition key, unsigned 64-bit pHash) rows, replacing older ones."""
        with self.engine.begin() as conn:
            replace_hashes(conn, rows)

"""The database: the source of truth for items, their state and their vectors (SQLAlchemy 2 on SQLite, WAL).

One writer (the scanner, through ``Catalog``) and any number of readers (web requests). Bulk writes run in one
transaction per batch, so a crash loses at most the batch in flight. The tables are declared in ``schema``;
opening a file brings it to the current schema version (``migrations``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine

from materialsearch.catalog import migrations, postgres
from materialsearch.catalog.duplicates import DuplicateData, replace_hashes
from materialsearch.catalog.faces import FaceRepository
from materialsearch.catalog.filters import Filters, apply_filters
from materialsearch.catalog.places import ChangeWatch, PlaceData
from materialsearch.catalog.records import FileState, ItemRecord, ItemStatus, Kind
from materialsearch.catalog.rows import ItemRow, item_rows, select_item_rows
from materialsearch.catalog.schema import STILL_HASH_TIME, Base, Item, Meta, Vector
from materialsearch.catalog.sql import (
    any_of,
    blob_to_vector,
    chunked,
    pragmas,
    stack_blobs,
    vector_to_blob,
)
from materialsearch.catalog.tags import TagRepository
from materialsearch.catalog.text import OcrStore
from materialsearch.catalog.tokens import TokenStore
from materialsearch.catalog.work_queue import WorkClaim

DB_FILENAME = "materialsearch.db"  # inside MS_DATA_DIR

# The items columns a scan record fills (all but ``id`` and ``indexed_at``), from the two declarations.
_RECORD_COLUMNS = tuple(
    column.key
    for column in Item.__table__.columns
    if column.key in {field.name for field in dataclasses.fields(ItemRecord)}
)
_FILE_STATE_COLUMNS = tuple(getattr(Item, field.name) for field in dataclasses.fields(FileState))


# What every page of results looks up, built once: building a statement cost more than running it (an item lookup
# of 20 ids: 655 µs built per call, 349 µs prebuilt, the SQL itself ~45 µs; AMD EPYC, 2 cores, quiet).
_ITEMS_BY_ID = select_item_rows().where(any_of(Item.id))
_PAIRED_WITH = select_item_rows().where(any_of(Item.pair_path), Item.status == bindparam("status"))
_VECTOR_FRAMES = select(Vector.id, Vector.item_id, Vector.time_ms).where(any_of(Vector.id))
_VECTORS_BY_ID = select(Vector.id, Vector.embedding).where(any_of(Vector.id))
_FIRST_VECTORS = select(Vector.item_id, func.min(Vector.id)).where(any_of(Vector.item_id)).group_by(Vector.item_id)
_A_VIDEO = select(Item.id).where(Item.status == ItemStatus.OK, Item.kind == Kind.VIDEO).limit(1)


@dataclasses.dataclass(frozen=True)
class ItemCounts:
    """How many items stand where: indexed photos and videos, Live Photo movies, failures, skips, waiting."""

    images: int = 0
    videos: int = 0
    live_photos: int = 0
    errors: int = 0
    skipped: int = 0
    pending: int = 0


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


class Store:
    """All reads and writes of the items, vectors and meta tables."""

    def __init__(self, path: str):
        """``path``: the SQLite file, or a PostgreSQL URL (``postgres``: the same tables, pgvector vectors)."""
        self.path = path
        self.postgres = postgres.is_database_url(path)
        if self.postgres:
            self.engine: Engine = postgres.engine_for(path)
            watch = postgres.PgChangeWatch(path)
            upgrade = postgres.upgrade
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", pragmas)
            watch, upgrade = ChangeWatch(path), migrations.upgrade
        self.duplicates = DuplicateData(self.engine, watch)
        self.tags = TagRepository(self.engine)
        self.faces = FaceRepository(self.engine)  # faces found in photos and the people they make
        self.text = OcrStore(self.engine)  # the OCR state and the text found in photos
        self.tokens = TokenStore(self.engine)
        self.places = PlaceData(self.engine, watch)
        self._has_videos: tuple[int, bool] | None = None  # (the watch's version, the answer)
        try:
            upgrade(self.engine, Base.metadata)
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def location(self) -> str:
        """Where the catalog is, for messages: the data dir, or the database URL without its password."""
        return postgres.redacted(self.path) if self.postgres else os.path.dirname(os.path.abspath(self.path))

    def close(self) -> None:
        """Release connections."""
        self.places.watch.close()
        self.engine.dispose()

    def _items(self, *where) -> list[ItemRow]:
        """The rows of the items matching ``where``."""
        with self.engine.connect() as conn:
            return item_rows(conn.execute(select_item_rows().where(*where)))

    # --- meta -------------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A stored fact, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(Meta.value).where(Meta.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        """Store a fact (insert or replace)."""
        with self.engine.begin() as conn:
            conn.execute(delete(Meta).where(Meta.key == key))
            conn.execute(insert(Meta).values(key=key, value=value))

    # --- scanning ---------------------------------------------------------------------------------------------
    def file_states(self) -> dict[str, FileState]:
        """Every known path with its (size, mtime) and status."""
        with self.engine.connect() as conn:
            return {row[0]: FileState(*row[1:]) for row in conn.execute(select(Item.path, *_FILE_STATE_COLUMNS))}

    def write_batch(
        self, records: Sequence[ItemRecord], claim: WorkClaim | None = None
    ) -> tuple[list[int], np.ndarray, list[int]]:
        """Insert or replace items (by path) and their vectors in one transaction.

        With a ``claim`` (files taken from the work queue), only the files the writer still holds are written, and
        their queue rows are marked done in the same transaction. Returns (new vector ids, their vectors, vector ids
        that were replaced) so the index can follow.
        """
        if not records:
            return [], np.empty((0, 0), np.float32), []
        now = _now()
        new_ids: list[int] = []
        new_vectors: list[np.ndarray] = []
        replaced: list[int] = []
        with self.engine.begin() as conn:
            if claim is not None:
                held = claim.keep(conn, [r.path for r in records])
                records = [r for r in records if r.path in held]
                claim.done(conn, records)
            existing: dict[str, int] = {}
            for paths in chunked(r.path for r in records):
                existing.update(conn.execute(select(Item.path, Item.id).where(Item.path.in_(paths))).all())
            for item_ids in chunked(existing.values()):
                replaced += conn.execute(select(Vector.id).where(Vector.item_id.in_(item_ids))).scalars()
                conn.execute(delete(Vector).where(Vector.item_id.in_(item_ids)))
            updates = []
            for record in records:
                values = {**{key: getattr(record, key) for key in _RECORD_COLUMNS}, "indexed_at": now}
                if record.path in existing:
                    updates.append({"b_id": existing[record.path], **values})
                else:
                    existing[record.path] = conn.execute(insert(Item).values(**values)).inserted_primary_key[0]
            if updates:
                conn.execute(update(Item).where(Item.id == bindparam("b_id")), updates)
            # The scan's thumbnail pHashes, with their items (see ``ItemRecord.phash``).
            hashed = [(existing[r.path], STILL_HASH_TIME, r.thumbnail, r.phash) for r in records if r.phash is not None]
            replace_hashes(conn, hashed)
            for record in records:
                for time_ms, vector in record.vectors:
                    blob = vector_to_blob(vector)
                    row = {"item_id": existing[record.path], "time_ms": time_ms, "embedding": blob}
                    new_ids.append(conn.execute(insert(Vector).values(**row)).inserted_primary_key[0])
                    new_vectors.append(blob_to_vector(blob))
        vectors = np.vstack(new_vectors) if new_vectors else np.empty((0, 0), np.float32)
        return new_ids, vectors, replaced

    def move_item(self, item_id: int, path: str, size: int, mtime_ns: int, pair_path: str | None = None) -> None:
        """A file moved or renamed inside the library: keep its row (and vectors) under the new path."""
        with self.engine.begin() as conn:
            conn.execute(
                update(Item)
                .where(Item.id == item_id)
                .values(path=path, size=size, mtime_ns=mtime_ns, pair_path=pair_path)
            )

    def delete_items(self, item_ids: Iterable[int]) -> list[int]:
        """Remove items and their vectors; returns the removed vector ids."""
        removed: list[int] = []
        with self.engine.begin() as conn:
            for chunk in chunked(item_ids):
                removed += conn.execute(select(Vector.id).where(Vector.item_id.in_(chunk))).scalars()
                conn.execute(delete(Vector).where(Vector.item_id.in_(chunk)))
                conn.execute(delete(Item).where(Item.id.in_(chunk)))
        return removed

    def mark_all_pending(self) -> int:
        """Drop every vector and mark indexed items for re-embedding (the model changed). Returns how many."""
        with self.engine.begin() as conn:
            conn.execute(delete(Vector))
            result = conn.execute(update(Item).where(Item.status == ItemStatus.OK).values(status=ItemStatus.PENDING))
            return result.rowcount

    # --- vectors ----------------------------------------------------------------------------------------------
    def iter_vectors(self, chunk: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (vector ids, vectors) in id order, ``chunk`` at a time (for rebuilding the index)."""
        last = 0
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(
                    select(Vector.id, Vector.embedding).where(Vector.id > last).order_by(Vector.id).limit(chunk)
                ).all()
                if not rows:
                    return
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                last = int(ids[-1])
                yield ids, stack_blobs([r[1] for r in rows])

    def vector_checksum(self) -> tuple[int, int]:
        """(count, sum of ids) of the vectors: compared with the index's to detect drift."""
        with self.engine.connect() as conn:
            count, total = conn.execute(select(func.count(Vector.id), func.coalesce(func.sum(Vector.id), 0))).one()
        return int(count), int(total)

    def vectors_version(self) -> str:
        """The stored vectors' change token: equal tokens mean the same vectors (across restarts too), so caches and
        fingerprints of anything computed from them key on it. Its form is the catalog's business."""
        count, total = self.vector_checksum()
        return f"{count}:{total}"

    def item_vectors(self, item_id: int) -> np.ndarray:
        """The vectors of one item (empty when it has none)."""
        with self.engine.connect() as conn:
            return stack_blobs(conn.execute(select(Vector.embedding).where(Vector.item_id == item_id)).scalars().all())

    def vector_frames(self, vector_ids: Sequence[int]) -> dict[int, tuple[int, int | None]]:
        """vector id → (item id, frame time in ms or None) for the given ids."""
        found: dict[int, tuple[int, int | None]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(int(v) for v in vector_ids):
                rows = conn.execute(_VECTOR_FRAMES, {"values": chunk})
                found.update((vector_id, (item_id, time_ms)) for vector_id, item_id, time_ms in rows)
        return found

    def frames(self, item_id: int) -> tuple[np.ndarray, np.ndarray]:
        """A video's frame times (ms, ascending) and their vectors."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Vector.time_ms, Vector.embedding).where(Vector.item_id == item_id).order_by(Vector.time_ms)
            ).all()
        times = np.array([r[0] if r[0] is not None else 0 for r in rows], dtype=np.int64)
        return times, stack_blobs([r[1] for r in rows])

    def frame_vector(self, item_id: int, time_ms: int) -> np.ndarray | None:
        """The vector of one video frame, or None."""
        with self.engine.connect() as conn:
            blob = conn.execute(
                select(Vector.embedding).where(Vector.item_id == item_id, Vector.time_ms == time_ms).limit(1)
            ).scalar()
        return blob_to_vector(blob) if blob is not None else None

    def has_videos(self) -> bool:
        """Whether any video is indexed (asked by every search: known until the next commit, by anyone)."""
        version = self.places.watch.version()  # before reading: a commit meanwhile makes the next call ask again
        if self._has_videos is None or self._has_videos[0] != version:
            with self.engine.connect() as conn:
                self._has_videos = (version, conn.execute(_A_VIDEO).scalar() is not None)
        return self._has_videos[1]

    def filtered_vector_ids(self, filters: Filters) -> np.ndarray:
        """Ids of the vectors whose items pass ``filters``."""
        query = select(Vector.id).join(Item, Item.id == Vector.item_id)
        query = apply_filters(query, filters)
        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)

    def passing_filters(self, item_ids: Sequence[int], filters: Filters) -> set[int]:
        """Those of ``item_ids`` whose items pass ``filters`` (found outside the vectors, e.g. by their text)."""
        if not filters.active:
            return set(item_ids)
        found: set[int] = set()
        for chunk in chunked(item_ids):
            query = apply_filters(select(Item.id).where(Item.id.in_(chunk)), filters)
            with self.engine.connect() as conn:
                found.update(conn.execute(query).scalars())
        return found

    def count_searchable(self, filters: Filters, exclude: Iterable[int] = ()) -> int:
        """How many indexed items pass ``filters`` (leaving out ``exclude``)."""
        query = select(func.count(func.distinct(Vector.item_id))).join(Item, Item.id == Vector.item_id)
        query = apply_filters(query, filters)
        exclude = list(exclude)  # a handful of ids (the items a "more like this" starts from)
        if exclude:
            query = query.where(Item.id.not_in(exclude))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # --- browsing (the timeline and folder queries are in ``browse`` and ``folders``) ---------------------
    def vectors_by_id(self, vector_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``vector_ids``, in that order (every id must exist)."""
        found: dict[int, bytes] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(int(v) for v in vector_ids):
                found.update(conn.execute(_VECTORS_BY_ID, {"values": chunk}).all())
        return stack_blobs([found[int(v)] for v in vector_ids])

    def first_vector_ids(self, item_ids: Iterable[int]) -> dict[int, int]:
        """item id → the id of its first vector (a photo's only one), for items that have one."""
        found: dict[int, int] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(int(i) for i in item_ids):
                rows = conn.execute(_FIRST_VECTORS, {"values": chunk})
                found.update((item_id, vector_id) for item_id, vector_id in rows)
        return found

    # --- items ------------------------------------------------------------------------------------------------
    def get_item(self, item_id: int) -> ItemRow | None:
        """One item row, or None."""
        return next(iter(self._items(Item.id == item_id)), None)

    def get_items(self, item_ids: Iterable[int]) -> dict[int, ItemRow]:
        """Item rows by id (missing ids are left out)."""
        with self.engine.connect() as conn:
            return {
                item.id: item
                for chunk in chunked(int(i) for i in item_ids)
                for item in item_rows(conn.execute(_ITEMS_BY_ID, {"values": chunk}))
            }

    def motions_for(self, still_paths: Iterable[str]) -> dict[str, ItemRow]:
        """Live Photo movies by the path of their still."""
        return self._paired_with(still_paths, ItemStatus.MOTION)

    def raws_for(self, still_paths: Iterable[str]) -> dict[str, ItemRow]:
        """Camera RAW originals by the path of their same-name JPEG/HEIC."""
        return self._paired_with(still_paths, ItemStatus.RAW)

    def _paired_with(self, still_paths: Iterable[str], status: ItemStatus) -> dict[str, ItemRow]:
        with self.engine.connect() as conn:
            return {
                item.pair_path: item
                for chunk in chunked(still_paths)
                for item in item_rows(conn.execute(_PAIRED_WITH, {"values": chunk, "status": status}))
            }

    def problems(self, limit: int, offset: int) -> tuple[list[ItemRow], int]:
        """Files that failed or were skipped, newest first, with the total."""
        where = Item.status.in_([ItemStatus.ERROR, ItemStatus.SKIPPED])
        with self.engine.connect() as conn:
            total = conn.scalar(select(func.count(Item.id)).where(where)) or 0
            rows = item_rows(
                conn.execute(
                    select_item_rows().where(where).order_by(Item.status, Item.path).limit(limit).offset(offset)
                )
            )
            return rows, int(total)

    def counts(self) -> ItemCounts:
        """Items per outcome (one grouped query over the kind+status index)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Item.kind, Item.status, func.count(Item.id)).group_by(Item.kind, Item.status))
            found = {(kind, status): int(count) for kind, status, count in rows}

        def total(status: ItemStatus, kind: Kind | None = None) -> int:
            return sum(n for (k, s), n in found.items() if s == status and kind in (None, k))

        return ItemCounts(
            images=total(ItemStatus.OK, Kind.IMAGE),
            videos=total(ItemStatus.OK, Kind.VIDEO),
            live_photos=total(ItemStatus.MOTION, Kind.VIDEO),
            errors=total(ItemStatus.ERROR),
            skipped=total(ItemStatus.SKIPPED),
            pending=total(ItemStatus.PENDING),
        )

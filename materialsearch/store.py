"""The database: the source of truth for items, their state and their vectors (SQLAlchemy 2 on SQLite, WAL).

One writer (the scanner) and any number of readers (web requests). Bulk writes go through Core ``executemany``
in one transaction per batch, so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .records import FileState, ItemRecord, Kind, Status

DB_FILENAME = "materialsearch.db"  # inside MS_DATA_DIR
PAGE_SIZE_BYTES = 16384  # 4 KiB pages waste about half the file on 2 KB vector blobs


class Base(DeclarativeBase):
    pass


class Item(Base):
    """One file of the library (a photo or a video), indexed or not, with why not."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    thumbnail: Mapped[str | None] = mapped_column(String(64))
    indexed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # Videos: length in ms; whether browsers play the file as it is.
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    playable: Mapped[bool | None] = mapped_column(Boolean)
    # Videos: the same-name photo that was considered as its Live Photo still when the video was scanned.
    pair_path: Mapped[str | None] = mapped_column(Text, index=True)
    # Photos: byte offset of the MP4 embedded in an Android motion photo.
    motion_offset: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (Index("ix_items_kind_status", "kind", "status"),)


class Vector(Base):
    """An L2-normalised float32 embedding owned by an item (``time_ms`` is for video frames; NULL for stills)."""

    __tablename__ = "vectors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    time_ms: Mapped[int | None] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (Index("ix_vectors_item_id", "item_id"),)


class Meta(Base):
    """Key/value facts about the database, e.g. the identity of the model that made the vectors."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ApiToken(Base):
    """An API token for scripts: only the SHA-256 of the token is stored, never the token itself."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What is shown about a token: never its secret."""

    id: int
    name: str
    token_hash: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class Filters:
    """Restrictions on search results; all optional."""

    path_contains: str | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    kind: str | None = None

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in dataclasses.astuple(self))


def _pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # page_size only takes effect on a new database, before WAL is switched on.
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE_BYTES}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def vector_to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes."""
    return np.asarray(vector, dtype="<f4").tobytes()


def blob_to_vector(blob: bytes) -> np.ndarray:
    """Inverse of ``vector_to_blob``."""
    return np.frombuffer(blob, dtype="<f4")


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


class Store:
    """All reads and writes of the database."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.engine: Engine = create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(self.engine, "connect", _pragmas)
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older version up to date (new nullable columns and indexes only)."""
        with self.engine.begin() as conn:
            for table in Base.metadata.sorted_tables:
                present = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table.name})")}
                for column in table.columns:
                    if column.name not in present and column.nullable:
                        kind = column.type.compile(self.engine.dialect)
                        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                for index in table.indexes:
                    index.create(conn, checkfirst=True)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

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
        query = select(Item.path, Item.id, Item.size, Item.mtime_ns, Item.status, Item.content_hash, Item.pair_path)
        with self.engine.connect() as conn:
            return {row[0]: FileState(*row[1:]) for row in conn.execute(query)}

    def write_batch(self, records: Sequence[ItemRecord]) -> tuple[list[int], np.ndarray, list[int]]:
        """Insert or replace items (by path) and their vectors in one transaction.

        Returns (new vector ids, their vectors, vector ids that were replaced) so the index can follow.
        """
        if not records:
            return [], np.empty((0, 0), np.float32), []
        now = _now()
        paths = [r.path for r in records]
        new_ids: list[int] = []
        new_vectors: list[np.ndarray] = []
        with self.engine.begin() as conn:
            existing = dict(conn.execute(select(Item.path, Item.id).where(Item.path.in_(paths))).all())
            replaced = (
                list(conn.execute(select(Vector.id).where(Vector.item_id.in_(existing.values()))).scalars())
                if existing
                else []
            )
            if replaced:
                conn.execute(delete(Vector).where(Vector.id.in_(replaced)))
            rows_update = []
            for record in records:
                values = self._item_values(record, now)
                if record.path in existing:
                    rows_update.append({"b_id": existing[record.path], **values})
                else:
                    item_id = conn.execute(insert(Item).values(path=record.path, **values)).inserted_primary_key[0]
                    existing[record.path] = item_id
            if rows_update:
                conn.execute(
                    update(Item).where(Item.id == bindparam("b_id")),
                    rows_update,
                )
            vector_rows = [
                {"item_id": existing[r.path], "time_ms": time_ms, "embedding": vector_to_blob(vector)}
                for r in records
                for time_ms, vector in r.vectors
            ]
            for row in vector_rows:
                vector_id = conn.execute(insert(Vector).values(**row)).inserted_primary_key[0]
                new_ids.append(vector_id)
                new_vectors.append(blob_to_vector(row["embedding"]))
        vectors = np.vstack(new_vectors) if new_vectors else np.empty((0, 0), np.float32)
        return new_ids, vectors, replaced

    @staticmethod
    def _item_values(record: ItemRecord, now: dt.datetime) -> dict:
        return {
            "kind": record.kind,
            "size": record.size,
            "mtime_ns": record.mtime_ns,
            "status": record.status,
            "error": record.error,
            "content_hash": record.content_hash,
            "taken_at": record.taken_at,
            "width": record.width,
            "height": record.height,
            "thumbnail": record.thumbnail,
            "indexed_at": now,
            "duration_ms": record.duration_ms,
            "playable": record.playable,
            "pair_path": record.pair_path,
            "motion_offset": record.motion_offset,
        }

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
        ids = list(item_ids)
        removed: list[int] = []
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                removed += conn.execute(select(Vector.id).where(Vector.item_id.in_(chunk))).scalars().all()
                conn.execute(delete(Vector).where(Vector.item_id.in_(chunk)))
                conn.execute(delete(Item).where(Item.id.in_(chunk)))
        return removed

    def mark_all_pending(self) -> int:
        """Drop every vector and mark indexed items for re-embedding (the model changed). Returns how many."""
        with self.engine.begin() as conn:
            conn.execute(delete(Vector))
            result = conn.execute(update(Item).where(Item.status == Status.OK).values(status=Status.PENDING))
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
                vectors = np.vstack([blob_to_vector(r[1]) for r in rows])
                last = int(ids[-1])
                yield ids, vectors

    def vector_checksum(self) -> tuple[int, int]:
        """(count, sum of ids) of the vectors: compared with the index's to detect drift."""
        with self.engine.connect() as conn:
            count, total = conn.execute(select(func.count(Vector.id), func.coalesce(func.sum(Vector.id), 0))).one()
        return int(count), int(total)

    def item_vectors(self, item_id: int) -> np.ndarray:
        """The vectors of one item (empty when it has none)."""
        with self.engine.connect() as conn:
            blobs = conn.execute(select(Vector.embedding).where(Vector.item_id == item_id)).scalars().all()
        return np.vstack([blob_to_vector(b) for b in blobs]) if blobs else np.empty((0, 0), np.float32)

    def vector_frames(self, vector_ids: Sequence[int]) -> dict[int, tuple[int, int | None]]:
        """vector id → (item id, frame time in ms or None) for the given ids."""
        found: dict[int, tuple[int, int | None]] = {}
        ids = [int(v) for v in vector_ids]
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                rows = conn.execute(select(Vector.id, Vector.item_id, Vector.time_ms).where(Vector.id.in_(chunk)))
                found.update((vector_id, (item_id, time_ms)) for vector_id, item_id, time_ms in rows)
        return found

    def frames(self, item_id: int) -> tuple[np.ndarray, np.ndarray]:
        """A video's frame times (ms, ascending) and their vectors."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Vector.time_ms, Vector.embedding).where(Vector.item_id == item_id).order_by(Vector.time_ms)
            ).all()
        times = np.array([r[0] if r[0] is not None else 0 for r in rows], dtype=np.int64)
        vectors = np.vstack([blob_to_vector(r[1]) for r in rows]) if rows else np.empty((0, 0), np.float32)
        return times, vectors

    def frame_vector(self, item_id: int, time_ms: int) -> np.ndarray | None:
        """The vector of one video frame, or None."""
        with self.engine.connect() as conn:
            blob = conn.execute(
                select(Vector.embedding).where(Vector.item_id == item_id, Vector.time_ms == time_ms).limit(1)
            ).scalar()
        return blob_to_vector(blob) if blob is not None else None

    def motions_for(self, still_paths: Sequence[str]) -> dict[str, Item]:
        """Live Photo movies by the path of their still."""
        found: dict[str, Item] = {}
        paths = list(still_paths)
        with self.engine.connect() as conn:
            for start in range(0, len(paths), 900):
                rows = conn.execute(
                    select(Item).where(Item.pair_path.in_(paths[start : start + 900]), Item.status == Status.MOTION)
                ).all()
                found.update((row.pair_path, _row_to_item(row)) for row in rows)
        return found

    def has_videos(self) -> bool:
        """Whether any video is indexed."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(Item.id).where(Item.status == Status.OK, Item.kind == Kind.VIDEO).limit(1)
            ).scalar()
        return found is not None

    def vector_owners(self, vector_ids: Sequence[int]) -> dict[int, int]:
        """vector id → item id for the given ids."""
        owners: dict[int, int] = {}
        ids = [int(v) for v in vector_ids]
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                owners.update(conn.execute(select(Vector.id, Vector.item_id).where(Vector.id.in_(chunk))).all())
        return owners

    def filtered_vector_ids(self, filters: Filters) -> np.ndarray:
        """Ids of the vectors whose items pass ``filters``."""
        query = select(Vector.id).join(Item, Item.id == Vector.item_id)
        query = self._apply_filters(query, filters)
        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)

    def count_searchable(self, filters: Filters, exclude: Iterable[int] = ()) -> int:
        """How many indexed items pass ``filters`` (leaving out ``exclude``)."""
        query = select(func.count(func.distinct(Vector.item_id))).join(Item, Item.id == Vector.item_id)
        query = self._apply_filters(query, filters)
        exclude = list(exclude)
        if exclude:
            query = query.where(Item.id.not_in(exclude))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    @staticmethod
    def _apply_filters(query, filters: Filters):
        if filters.path_contains:
            escaped = filters.path_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(Item.path.like(f"%{escaped}%", escape="\\"))
        if filters.date_from is not None:
            query = query.where(Item.taken_at >= filters.date_from)
        if filters.date_to is not None:
            query = query.where(Item.taken_at <= filters.date_to)
        if filters.kind is not None:
            query = query.where(Item.kind == filters.kind)
        return query

    # --- items ------------------------------------------------------------------------------------------------
    def get_item(self, item_id: int) -> Item | None:
        """One item row, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Item).where(Item.id == item_id)).one_or_none()
        return _row_to_item(row) if row is not None else None

    def get_items(self, item_ids: Sequence[int]) -> dict[int, Item]:
        """Item rows by id (missing ids are left out)."""
        found: dict[int, Item] = {}
        ids = [int(i) for i in item_ids]
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 900):
                rows = conn.execute(select(Item).where(Item.id.in_(ids[start : start + 900]))).all()
                found.update((row.id, _row_to_item(row)) for row in rows)
        return found

    def problems(self, limit: int, offset: int) -> tuple[list[Item], int]:
        """Files that failed or were skipped, newest first, with the total."""
        where = Item.status.in_([Status.ERROR, Status.SKIPPED])
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count(Item.id)).where(where)).scalar() or 0
            rows = conn.execute(
                select(Item).where(where).order_by(Item.status, Item.path).limit(limit).offset(offset)
            ).all()
        return [_row_to_item(r) for r in rows], int(total)

    def counts(self) -> dict[str, int]:
        """Items per status and kind."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Item.kind, Item.status, func.count(Item.id)).group_by(Item.kind, Item.status))
            result: dict[str, int] = {}
            for kind, status, count in rows:
                result[f"{kind}:{status}"] = int(count)
        return result

    # --- API tokens -------------------------------------------------------------------------------------------
    def add_token(self, name: str, token_hash: str) -> None:
        """Record a new token's hash under a unique name; ValueError if the name is taken."""
        with self.engine.begin() as conn:
            if conn.execute(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
                raise ValueError(f"a token named {name!r} already exists")
            conn.execute(insert(ApiToken).values(name=name, token_hash=token_hash, created_at=_now()))

    def tokens(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    ApiToken.id, ApiToken.name, ApiToken.token_hash, ApiToken.created_at, ApiToken.last_used_at
                ).order_by(ApiToken.id)
            ).all()
        return [TokenInfo(*row) for row in rows]

    def delete_token(self, name: str) -> bool:
        """Revoke a token by name; False when there is none."""
        with self.engine.begin() as conn:
            return conn.execute(delete(ApiToken).where(ApiToken.name == name)).rowcount > 0

    def touch_token(self, token_id: int, when: dt.datetime) -> None:
        """Record when a token was last used."""
        with self.engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))


def _row_to_item(row) -> Item:
    mapping = row._mapping
    return Item(**{column.key: mapping[column.key] for column in Item.__table__.columns})

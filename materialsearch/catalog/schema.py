"""The database's tables, declared once (SQLAlchemy 2 ORM).

A new database is created from these declarations; ``migrations`` brings a file written by an earlier release up
to them. Changing a table here means adding a migration step there (``tests/test_migrations.py`` checks that an
upgraded database and a new one have the same schema).
"""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, UserDefinedType

# 64-bit integers (sizes, mtimes in ns, hashes): SQLite's INTEGER is 64-bit already; PostgreSQL's is 32.
BigInt = Integer().with_variant(BigInteger(), "postgresql")


class VectorBinary(bytes):
    """A vector in pgvector's binary form (dimension and a reserved word as big-endian uint16, then big-endian
    float32s): psycopg sends it as a ``vector`` parameter (``postgres`` registers the dumper on each connection)."""

    @classmethod
    def of(cls, vector) -> VectorBinary:
        values = np.asarray(vector, dtype="<f4").reshape(-1)
        return cls(struct.pack(">HH", len(values), 0) + values.astype(">f4").tobytes())


class PgVector(UserDefinedType):
    """pgvector's ``vector`` type (``dim`` None: any dimension, as the column is declared; the index and the queries
    cast to the model's dimension), holding float32 little-endian bytes on the Python side. Both ways in binary:
    written as ``VectorBinary``, read through ``vector_send``; each float32 is kept bit for bit."""

    cache_ok = True

    def __init__(self, dim: int | None = None):
        self.dim = dim

    def get_col_spec(self, **_kw) -> str:
        return "vector" if self.dim is None else f"vector({int(self.dim)})"

    def column_expression(self, column):
        return func.vector_send(column, type_=self)

    def bind_processor(self, dialect):
        return lambda value: None if value is None else VectorBinary.of(np.frombuffer(value, dtype="<f4"))

    def result_processor(self, dialect, coltype):
        return lambda value: None if value is None else np.frombuffer(value, ">f4", offset=4).astype("<f4").tobytes()


class Embedding(TypeDecorator):
    """A vector as float32 little-endian bytes to the catalog's code: a BLOB on SQLite, a pgvector ``vector`` on
    PostgreSQL (``PgVector`` converts; SQLite's path has no conversion at all)."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(PgVector() if dialect.name == "postgresql" else LargeBinary())


class Base(DeclarativeBase):
    pass


def _create_text_tables(cursor) -> None:
    from materialsearch.catalog.text import (
        create_text_tables,  # imported when a database is created, not with the schema
    )

    create_text_tables(cursor)


# Created with a new database after the tables (``migrations._create``): objects SQLAlchemy cannot declare.
Base.metadata.info["raw_ddl"] = (_create_text_tables,)


class Item(Base):
    """One file of the library (a photo or a video), indexed or not, with why not."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInt)
    mtime_ns: Mapped[int] = mapped_column(BigInt)
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
    motion_offset: Mapped[int | None] = mapped_column(BigInt)
    # The stable code of ``error`` (errors.ProblemCode), for the UI to translate and scripts to branch on.
    error_code: Mapped[str | None] = mapped_column(String(32))
    # Places: GPS position (NULL when none or ignored, with ``location_note`` saying why), whether the file's
    # location was read (NULL: indexed before places existed), and the place it resolves to.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_note: Mapped[str | None] = mapped_column(Text)
    location_read: Mapped[bool | None] = mapped_column(Boolean)
    place_city: Mapped[str | None] = mapped_column(Text)
    place_city_zh: Mapped[str | None] = mapped_column(Text)
    place_region: Mapped[str | None] = mapped_column(Text)
    place_country: Mapped[str | None] = mapped_column(String(2), index=True)
    # Photos: the OCR pre-pass's verdict on this version of the file, taken by the scan on its own decode (NULL:
    # not taken — OCR off, a picture the OCR pass must read itself, or indexed before the scan took it).
    has_text: Mapped[bool | None] = mapped_column(Boolean)
    __table_args__ = (
        Index("ix_items_kind_status", "kind", "status"),
        # The timeline: indexed items in capture-time order, a keyset page at any depth (rowid breaks ties).
        Index("ix_items_status_taken_at", "status", "taken_at"),
        # /api/places groups by these in index order, reading nothing else; ``place=`` looks names up by index.
        Index(
            "ix_items_places",
            "status",
            "place_country",
            "place_region",
            "place_city",
            "place_city_zh",
            "latitude",
            "longitude",
        ),
        Index("ix_items_place_city", text("lower(place_city)")),
        Index("ix_items_place_city_zh", "place_city_zh"),
        Index("ix_items_place_region", text("lower(place_region)")),
    )


class Vector(Base):
    """An L2-normalised float32 embedding owned by an item (``time_ms`` is for video frames; NULL for stills)."""

    __tablename__ = "vectors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    time_ms: Mapped[int | None] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(Embedding)
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


class ItemTag(Base):
    """A zero-shot tag an item clearly shows (``tags``: computed from the stored vectors; ``score`` is how far it
    stands out, the label's robust z-score over the library)."""

    __tablename__ = "item_tags"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_item_tags_tag", "tag", "item_id"),)


class OcrState(Base):
    """Whether a photo's text has been read (OCR), for which version of its file, and why not when it failed.

    The lines themselves live in the text index's tables (``textindex``: FTS5 virtual tables, which SQLAlchemy
    cannot declare; ``ocrstore.create_text_tables`` creates them, and the triggers that forget an item's text when
    the item is deleted or its file changes).
    """

    __tablename__ = "ocr_state"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    # The item's (size, mtime_ns) when it was read: a different pair means the text is of an older file.
    size: Mapped[int] = mapped_column(BigInt)
    mtime_ns: Mapped[int] = mapped_column(BigInt)
    status: Mapped[str] = mapped_column(String(16))  # OcrOutcome: done | error
    error: Mapped[str | None] = mapped_column(Text)
    line_count: Mapped[int] = mapped_column(Integer)
    read_at: Mapped[dt.datetime] = mapped_column(DateTime)


class HiddenItem(Base):
    """An item the user chose to hide from results (a duplicate's other copies); reversible, the file is untouched."""

    __tablename__ = "hidden_items"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    hidden_at: Mapped[dt.datetime] = mapped_column(DateTime)


STILL_HASH_TIME = -1  # ``PerceptualHash.time_ms`` of a photo's thumbnail (not a video frame's)


class PerceptualHash(Base):
    """The 64-bit pHash of an item's thumbnail (``time_ms`` -1) or of a video frame's, for one version of its file
    (``rendition``: the thumbnail key, which changes when the file does). The scan stores each photo's as it writes
    the thumbnail; the duplicate finder computes what is missing."""

    __tablename__ = "perceptual_hashes"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    time_ms: Mapped[int] = mapped_column(Integer, primary_key=True)
    rendition: Mapped[str] = mapped_column(String(64))
    phash: Mapped[int] = mapped_column(BigInt)  # the unsigned 64 bits stored as a signed SQLite integer


class Person(Base):
    """A person: faces grouped as one (``organise.people``), named by the user or not yet. ``cover_face_id`` is the
    face the user chose to show them by (NULL: the best face); not a foreign key, a missing face falls back."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    hidden: Mapped[bool] = mapped_column(Boolean)
    cover_face_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Face(Base):
    """A face found in a photo: its box and five landmarks (x, y pairs) as fractions of the upright picture, the
    detector's score, the L2-normalised embedding (float32) and the models that made them; the person it belongs
    to (NULL: nobody yet), and whether the user put it there (``manual``: the grouping never moves it)."""

    __tablename__ = "faces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    box_left: Mapped[float] = mapped_column(Float)
    box_top: Mapped[float] = mapped_column(Float)
    box_right: Mapped[float] = mapped_column(Float)
    box_bottom: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[bytes] = mapped_column(LargeBinary)  # ten float32: eyes, nose, mouth corners
    score: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    model: Mapped[str] = mapped_column(String(96))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    manual: Mapped[bool] = mapped_column(Boolean)
    time_ms: Mapped[int | None] = mapped_column(Integer)  # a video's frame it was found in (NULL: a photo)
    __table_args__ = (Index("ix_faces_item_id", "item_id"), Index("ix_faces_person_id", "person_id"))


class FaceState(Base):
    """Which version of a photo (size, mtime) its faces were looked for in, by which models, and how many."""

    __tablename__ = "face_state"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInt)
    mtime_ns: Mapped[int] = mapped_column(BigInt)
    model: Mapped[str] = mapped_column(String(96))
    face_count: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

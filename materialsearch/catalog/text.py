"""Where the text read in photos is kept: the text index's tables beside the catalog's, and each item's OCR state.

An item's text belongs to one version of its file. ``ocr_state`` records the (size, mtime) a photo was read at;
triggers on ``items`` forget an item's lines and state when the item is deleted, when its file changes (size,
mtime or content hash) and when it stops being indexed (an error or a skip) — so a scan that re-embeds a changed
file sends it back to OCR, while one that re-embeds an unchanged file after a model change keeps its text (the
text does not depend on the CLIP model). Items under an unreachable folder are not touched by the scan, so they
keep their text.

The OCR pass writes a batch of outcomes in one transaction (``write``): the lines replace the item's lines and the
state row says it was read, together, so a crash leaves either both or neither — text is stored exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

from pydantic import Field
from sqlalchemy.engine import Engine

from materialsearch.catalog.fts import TextHit, TextIndex
from materialsearch.catalog.records import ItemStatus, Kind
from materialsearch.catalog.sql import Qmark
from materialsearch.ocr.engine import OcrLine

TEXT_INDEX_NAME = "ocr_text"  # the text index's tables: ocr_text (trigram), ocr_text_lines, ocr_text_short
# Zero-shot tags (keys of the default label set, ``data/tags.tsv``) of pictures that show text. A photo carrying one
# is read in full even when the pre-pass found no text in it: the pre-pass at 320 px misses text smaller than about
# 1/60 of the picture's long side (a document photographed from afar), and CLIP sees "a document" at any size. A
# tag adds photos to OCR; its absence never removes one.
TEXT_TAGS = ("document", "receipt", "screenshot", "chat", "whiteboard", "book", "text", "sign")
_TEXT_TAGGED = (
    "EXISTS (SELECT 1 FROM item_tags AS t WHERE t.item_id = i.id AND t.tag IN ("
    + ", ".join(f"'{tag}'" for tag in TEXT_TAGS)
    + "))"
)


class OcrOutcome(StrEnum):
    """What reading a photo's text gave (``ocr_state.status``)."""

    DONE = "done"  # read; it may have no lines (no text)
    ERROR = "error"  # OCR could not read it (``ocr_state.error`` says why)


def create_text_tables(cursor) -> None:
    """The text index's tables and the triggers that keep them (and ``ocr_state``) in step with ``items``.

    Idempotent; runs inside the caller's transaction (a new database's creation or a migration step).
    """
    index = TextIndex(cursor, TEXT_INDEX_NAME)
    index.create()
    lines = index.lines_table
    cursor.execute(
        f"""CREATE TRIGGER IF NOT EXISTS ocr_forget_deleted AFTER DELETE ON items BEGIN
            DELETE FROM {lines} WHERE item_id = old.id;
            DELETE FROM ocr_state WHERE item_id = old.id;
        END"""
    )
    cursor.execute(
        f"""CREATE TRIGGER IF NOT EXISTS ocr_forget_changed AFTER UPDATE OF size, mtime_ns, content_hash, status
            ON items WHEN new.size IS NOT old.size OR new.mtime_ns IS NOT old.mtime_ns
                OR new.content_hash IS NOT old.content_hash
                OR new.status NOT IN ('{ItemStatus.OK}', '{ItemStatus.PENDING}') BEGIN
            DELETE FROM {lines} WHERE item_id = old.id;
            DELETE FROM ocr_state WHERE item_id = old.id;
        END"""
    )


@dataclasses.dataclass(frozen=True)
class OcrJob:
    """A photo waiting for OCR: its item, file and the file version the catalog knows."""

    item_id: int
    path: str
    size: int
    mtime_ns: int
    has_text: bool | None = None  # the scan's pre-pass verdict on this version (``items.has_text``)
    text_tagged: bool = False  # its zero-shot tags say it shows text (``TEXT_TAGS``): read in full whatever the verdict


@dataclasses.dataclass(frozen=True)
class OcrRead:
    """One photo's OCR outcome, ready to be written: its lines, or why it could not be read."""

    job: OcrJob
    lines: list[OcrLine]
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class StoredText:
    """What OCR stored for one item: its lines (reading order), or the error; ``status`` None: not read yet."""

    status: OcrOutcome | None
    lines: list[OcrLine]
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class OcrCounts:
    """Photos by where their OCR stands."""

    read: Annotated[int, Field(ge=0, description="Photos read (with or without text, or failed).")]
    with_text: Annotated[int, Field(ge=0, description="Photos in which text was found.")]
    errors: Annotated[int, Field(ge=0, description="Photos OCR could not read (each with a reason).")]
    waiting: Annotated[int, Field(ge=0, description="Indexed photos whose text is not read yet.")]


# Photos whose text is missing or belongs to another version of the file.
_WAITING = (
    f"FROM items AS i LEFT JOIN ocr_state AS s ON s.item_id = i.id WHERE i.kind = '{Kind.IMAGE}'"
    f" AND i.status = '{ItemStatus.OK}' AND (s.item_id IS NULL OR s.size != i.size OR s.mtime_ns != i.mtime_ns)"
)


class OcrStore:
    """Reads and writes of the OCR state and the text index, on the catalog's database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def waiting(self, after_id: int, limit: int) -> list[OcrJob]:
        """Photos still to read, by item id after ``after_id`` (the pass walks them in id order)."""
        with self.engine.connect() as conn:
            rows = (
                Qmark(conn)
                .execute(
                    f"SELECT i.id, i.path, i.size, i.mtime_ns, i.has_text, {_TEXT_TAGGED} {_WAITING} AND i.id > ?"
                    " ORDER BY i.id LIMIT ?",
                    (after_id, limit),
                )
                .fetchall()
            )
        return [OcrJob(*row[:4], None if row[4] is None else bool(row[4]), bool(row[5])) for row in rows]

    def settle_text_free(self, limit: int) -> int:
        """Store "read, no text" for up to ``limit`` waiting photos in which the scan's pre-pass found no text (on
        this version of the file) and no tag says they show text, in one transaction, without opening them;
        returns how many."""
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            rows = raw.execute(
                f"SELECT i.id, i.path, i.size, i.mtime_ns {_WAITING} AND i.has_text = ? AND NOT {_TEXT_TAGGED}"
                " ORDER BY i.id LIMIT ?",
                (False, limit),
            ).fetchall()
            _store(conn, [OcrRead(OcrJob(*row, has_text=False), []) for row in rows])
        return len(rows)

    def waiting_count(self) -> int:
        """How many photos still wait for OCR."""
        with self.engine.connect() as conn:
            return int(Qmark(conn).execute(f"SELECT count(*) {_WAITING}").fetchone()[0] or 0)

    def counts(self) -> OcrCounts:
        """Photos read, of those with text, OCR errors, and still waiting."""
        with self.engine.connect() as conn:
            raw = Qmark(conn)
            read, with_text, errors = raw.execute(
                f"SELECT count(*), coalesce(sum(CASE WHEN status = '{OcrOutcome.DONE}' AND line_count > 0 THEN 1"
                f" ELSE 0 END), 0), coalesce(sum(CASE WHEN status = '{OcrOutcome.ERROR}' THEN 1 ELSE 0 END), 0)"
                " FROM ocr_state"
            ).fetchone()
            waiting = raw.execute(f"SELECT count(*) {_WAITING}").fetchone()[0]
        return OcrCounts(read=int(read), with_text=int(with_text), errors=int(errors), waiting=int(waiting or 0))

    def write(self, reads: Sequence[OcrRead]) -> int:
        """Store a batch of outcomes in one transaction; returns how many were stored.

        A photo whose file the scan changed meanwhile (its item's size or mtime is not the one read) is left out:
        it waits for OCR again.
        """
        if not reads:
            return 0
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            marks = ",".join("?" * len(reads))
            current = {
                row[0]: (row[1], row[2])
                for row in raw.execute(
                    f"SELECT id, size, mtime_ns FROM items WHERE status = '{ItemStatus.OK}' AND id IN ({marks})",
                    [read.job.item_id for read in reads],
                )
            }
            kept = [read for read in reads if current.get(read.job.item_id) == (read.job.size, read.job.mtime_ns)]
            _store(conn, kept)
        return len(kept)

    def text_of(self, item_id: int) -> StoredText:
        """The item's stored text (or OCR error)."""
        with self.engine.connect() as conn:
            state = Qmark(conn).execute("SELECT status, error FROM ocr_state WHERE item_id = ?", (item_id,)).fetchone()
            lines = _text_index(conn).lines(item_id)
        if state is None:
            return StoredText(None, lines)
        return StoredText(OcrOutcome(state[0]), lines, state[1])

    def search(self, words: str, limit: int) -> list[TextHit]:
        """Items whose text contains every word, best first (``TextIndex.search``)."""
        with self.engine.connect() as conn:
            return _text_index(conn).search(words, limit)


def _text_index(conn):
    """The text index on the connection's engine: FTS5 on SQLite, pg_trgm on PostgreSQL (``pg_text``)."""
    if conn.dialect.name == "postgresql":
        from materialsearch.catalog.pg_text import PgTextIndex

        return PgTextIndex(Qmark(conn), TEXT_INDEX_NAME)
    return TextIndex(conn.connection.driver_connection, TEXT_INDEX_NAME)


def _store(conn, reads: Sequence[OcrRead]) -> None:
    """Each read's lines replace its item's, and its state row says so (inside the caller's transaction)."""
    now = dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")
    _text_index(conn).replace_many((read.job.item_id, read.lines) for read in reads)
    Qmark(conn).executemany(
        "INSERT INTO ocr_state (item_id, size, mtime_ns, status, error, line_count, read_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET size = excluded.size,"
        " mtime_ns = excluded.mtime_ns, status = excluded.status, error = excluded.error,"
        " line_count = excluded.line_count, read_at = excluded.read_at",
        [
            (
                read.job.item_id,
                read.job.size,
                read.job.mtime_ns,
                OcrOutcome.ERROR if read.error else OcrOutcome.DONE,
                read.error,
                len(read.lines),
                now,
            )
            for read in reads
        ],
    )

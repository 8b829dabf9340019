"""Numbered schema versions (rclip's ``DB.VERSION`` ladder), kept in ``PRAGMA user_version``.

A new database is created at ``VERSION`` straight from the table declarations in ``schema``. An existing one is
taken up the ladder one step at a time, all in one ``BEGIN IMMEDIATE`` transaction: a crash or a second process
opening the file meanwhile sees either the old schema or the new one. Each step is raw SQL frozen as that release
wrote it, so a later change to ``schema`` cannot change what an old step does. A file from a newer release is
refused (this release would not know what its columns mean).

Releases before the ladder left ``user_version`` at 0; which of them wrote a file is told by what it holds.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from materialsearch.errors import legacy_code  # the wording of older releases, which does not change any more

log = logging.getLogger(__name__)


class SchemaError(RuntimeError):
    """The database cannot be used by this release (it comes from a newer one, or a database server cannot be
    reached)."""


def _add_api_tokens(cursor: sqlite3.Cursor) -> None:
    """Release 2: API tokens for scripts (hashes only)."""
    cursor.execute(
        "CREATE TABLE api_tokens (id INTEGER NOT NULL, name VARCHAR(64) NOT NULL, token_hash VARCHAR(64) NOT NULL, "
        "created_at DATETIME NOT NULL, last_used_at DATETIME, PRIMARY KEY (id), UNIQUE (name), UNIQUE (token_hash))"
    )


_VIDEO_COLUMNS = {"duration_ms": "INTEGER", "playable": "BOOLEAN", "pair_path": "TEXT", "motion_offset": "INTEGER"}


def _add_video_columns(cursor: sqlite3.Cursor) -> None:
    """Release 3: videos, Live Photo pairs and motion photos."""
    # That release added these one ALTER at a time outside a transaction: a crash could leave some of them.
    present = _columns(cursor, "items")
    for name, kind in _VIDEO_COLUMNS.items():
        if name not in present:
            cursor.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
    cursor.execute("CREATE INDEX IF NOT EXISTS ix_items_pair_path ON items (pair_path)")


def _add_kind_status_index(cursor: sqlite3.Cursor) -> None:
    """Release 4: the search's "are any videos indexed" and the status counts without a table scan."""
    cursor.execute("CREATE INDEX IF NOT EXISTS ix_items_kind_status ON items (kind, status)")


def _add_timeline_index(cursor: sqlite3.Cursor) -> None:
    """Release 5: the timeline (indexed items by capture time) pages by keyset over an index."""
    cursor.execute("CREATE INDEX IF NOT EXISTS ix_items_status_taken_at ON items (status, taken_at)")


def _add_error_codes(cursor: sqlite3.Cursor) -> None:
    """Release 6: a stable code next to each recorded problem (derived from the words older releases stored)."""
    cursor.execute("ALTER TABLE items ADD COLUMN error_code VARCHAR(32)")
    problems = cursor.execute("SELECT id, error FROM items WHERE error IS NOT NULL").fetchall()
    cursor.executemany("UPDATE items SET error_code = ? WHERE id = ?", [(str(legacy_code(e)), i) for i, e in problems])


def _add_item_tags(cursor: sqlite3.Cursor) -> None:
    """Release 7: zero-shot tags per item (computed from the stored vectors)."""
    cursor.execute(
        "CREATE TABLE item_tags (item_id INTEGER NOT NULL, tag VARCHAR(64) NOT NULL, score FLOAT NOT NULL, "
        "PRIMARY KEY (item_id, tag), FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE)"
    )
    cursor.execute("CREATE INDEX ix_item_tags_tag ON item_tags (tag, item_id)")


# Release 8's text index as it created it (the live declaration, ``catalog.text.create_text_tables``, may change;
# this step may not).
_OCR_TEXT_TABLES = (
    "CREATE TABLE IF NOT EXISTS ocr_text_lines ( id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, line_no INTEGER "
    "NOT NULL, text TEXT NOT NULL, norm TEXT NOT NULL, grams TEXT NOT NULL, box_left REAL NOT NULL, box_top REAL "
    "NOT NULL, box_right REAL NOT NULL, box_bottom REAL NOT NULL, confidence REAL NOT NULL, UNIQUE (item_id, "
    "line_no) )",
    "CREATE VIRTUAL TABLE IF NOT EXISTS ocr_text USING fts5( norm, content='ocr_text_lines', content_rowid='id', "
    "tokenize='trigram' )",
    "CREATE VIRTUAL TABLE IF NOT EXISTS ocr_text_short USING fts5( grams, content='ocr_text_lines', "
    "content_rowid='id', tokenize='unicode61' )",
    "CREATE TRIGGER IF NOT EXISTS ocr_text_lines_insert AFTER INSERT ON ocr_text_lines BEGIN INSERT INTO "
    "ocr_text(rowid, norm) VALUES (new.id, new.norm); INSERT INTO ocr_text_short(rowid, grams) VALUES (new.id, "
    "new.grams); END",
    "CREATE TRIGGER IF NOT EXISTS ocr_text_lines_delete AFTER DELETE ON ocr_text_lines BEGIN INSERT INTO "
    "ocr_text(ocr_text, rowid, norm) VALUES ('delete', old.id, old.norm); INSERT INTO "
    "ocr_text_short(ocr_text_short, rowid, grams) VALUES ('delete', old.id, old.grams); END",
    "CREATE TRIGGER IF NOT EXISTS ocr_forget_deleted AFTER DELETE ON items BEGIN DELETE FROM ocr_text_lines WHERE "
    "item_id = old.id; DELETE FROM ocr_state WHERE item_id = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS ocr_forget_changed AFTER UPDATE OF size, mtime_ns, content_hash, status ON items "
    "WHEN new.size IS NOT old.size OR new.mtime_ns IS NOT old.mtime_ns OR new.content_hash IS NOT old.content_hash "
    "OR new.status NOT IN ('ok', 'pending') BEGIN DELETE FROM ocr_text_lines WHERE item_id = old.id; DELETE FROM "
    "ocr_state WHERE item_id = old.id; END",
)


def _add_ocr_text(cursor: sqlite3.Cursor) -> None:
    """Release 8: the text read in photos (OCR state, and the FTS5 text index with its triggers)."""
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS ocr_state (item_id INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT "
        "NULL, status VARCHAR(16) NOT NULL, error TEXT, line_count INTEGER NOT NULL, read_at DATETIME NOT NULL, "
        "PRIMARY KEY (item_id), FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE)"
    )
    for statement in _OCR_TEXT_TABLES:
        cursor.execute(statement)


def _add_hidden_items_and_hashes(cursor: sqlite3.Cursor) -> None:
    """Release 9: duplicates — items hidden from results, and the perceptual hashes that confirm duplicates."""
    cursor.execute(
        "CREATE TABLE hidden_items (item_id INTEGER NOT NULL, hidden_at DATETIME NOT NULL, PRIMARY KEY (item_id), "
        "FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE)"
    )
    cursor.execute(
        "CREATE TABLE perceptual_hashes (item_id INTEGER NOT NULL, time_ms INTEGER NOT NULL, "
        "rendition VARCHAR(64) NOT NULL, phash INTEGER NOT NULL, PRIMARY KEY (item_id, time_ms), "
        "FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE)"
    )


_PLACE_COLUMNS = {
    "latitude": "FLOAT",
    "longitude": "FLOAT",
    "location_note": "TEXT",
    "location_read": "BOOLEAN",
    "place_city": "TEXT",
    "place_city_zh": "TEXT",
    "place_region": "TEXT",
    "place_country": "VARCHAR(2)",
}


def _add_place_columns(cursor: sqlite3.Cursor) -> None:
    """Release 10: places — GPS coordinates and the place they resolve to (NULL location_read: not read yet)."""
    for name, kind in _PLACE_COLUMNS.items():
        cursor.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
    cursor.execute(
        "CREATE INDEX ix_items_places ON items "
        "(status, place_country, place_region, place_city, place_city_zh, latitude, longitude)"
    )
    cursor.execute("CREATE INDEX ix_items_place_country ON items (place_country)")
    cursor.execute("CREATE INDEX ix_items_place_city ON items (lower(place_city))")
    cursor.execute("CREATE INDEX ix_items_place_city_zh ON items (place_city_zh)")
    cursor.execute("CREATE INDEX ix_items_place_region ON items (lower(place_region))")


def _add_text_verdict(cursor: sqlite3.Cursor) -> None:
    """Release 11: the scan takes the OCR pre-pass's verdict on its own decode (NULL: not taken)."""
    cursor.execute("ALTER TABLE items ADD COLUMN has_text BOOLEAN")


def _add_faces(cursor: sqlite3.Cursor) -> None:
    """Release 12: people — the faces found in photos, the people they are grouped into, and which photos were read."""
    cursor.execute(
        "CREATE TABLE people (id INTEGER NOT NULL, name TEXT, hidden BOOLEAN NOT NULL, cover_face_id INTEGER, "
        "created_at DATETIME NOT NULL, PRIMARY KEY (id))"
    )
    cursor.execute(
        "CREATE TABLE faces (id INTEGER NOT NULL, item_id INTEGER NOT NULL, box_left FLOAT NOT NULL, box_top FLOAT "
        "NOT NULL, box_right FLOAT NOT NULL, box_bottom FLOAT NOT NULL, landmarks BLOB NOT NULL, score FLOAT NOT "
        "NULL, embedding BLOB NOT NULL, model VARCHAR(96) NOT NULL, person_id INTEGER, manual BOOLEAN NOT NULL, "
        "PRIMARY KEY (id), FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE, FOREIGN KEY(person_id) "
        "REFERENCES people (id) ON DELETE SET NULL)"
    )
    cursor.execute("CREATE INDEX ix_faces_item_id ON faces (item_id)")
    cursor.execute("CREATE INDEX ix_faces_person_id ON faces (person_id)")
    cursor.execute(
        "CREATE TABLE face_state (item_id INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
        "model VARCHAR(96) NOT NULL, face_count INTEGER NOT NULL, error TEXT, PRIMARY KEY (item_id), "
        "FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE)"
    )


def _add_face_times(cursor: sqlite3.Cursor) -> None:
    """Release 13: faces in videos — the time of the sampled frame a face was found in (NULL: a photo's face)."""
    cursor.execute("ALTER TABLE faces ADD COLUMN time_ms INTEGER")


# MIGRATIONS[n - 1] takes a database from version n to n + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Cursor], None], ...] = (
    _add_api_tokens,
    _add_video_columns,
    _add_kind_status_index,
    _add_timeline_index,
    _add_error_codes,
    _add_item_tags,
    _add_ocr_text,
    _add_hidden_items_and_hashes,
    _add_place_columns,
    _add_text_verdict,
    _add_faces,
    _add_face_times,
)
VERSION = len(MIGRATIONS) + 1  # the schema this release writes


def upgrade(engine: Engine, metadata: MetaData) -> int:
    """Bring the database behind ``engine`` to ``VERSION`` (creating it from ``metadata`` when empty).

    Returns the version it was at (0 for a new database); raises SchemaError for a newer one.
    """
    raw = engine.raw_connection()  # through the engine, so its connect-time pragmas (page size, WAL) apply
    try:
        cursor = raw.cursor()
        if cursor.execute("PRAGMA user_version").fetchone()[0] == VERSION:
            cursor.close()
            return VERSION  # the usual case: no write lock taken (a scan may be committing)
        cursor.execute("BEGIN IMMEDIATE")  # one writer at a time: two processes opening a file do not both migrate
        try:
            stored = cursor.execute("PRAGMA user_version").fetchone()[0]
            found = stored or _legacy_version(cursor)
            if found > VERSION:
                raise SchemaError(
                    f"{_file_of(cursor)} was written by a newer release of materialsearch (schema version {found}; "
                    f"this one knows up to {VERSION}): run that release or a later one, or use another MS_DATA_DIR"
                )
            if found == 0:
                _create(cursor, engine, metadata)
            for step in MIGRATIONS[found - 1 :] if found else ():
                log.info("upgrading the database: %s", step.__doc__)
                step(cursor)
            if stored != VERSION:
                cursor.execute(f"PRAGMA user_version = {VERSION}")
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cursor.close()
    finally:
        raw.close()
    if 0 < found < VERSION:
        log.info("database upgraded from schema version %d to %d", found, VERSION)
    return found


def _legacy_version(cursor: sqlite3.Cursor) -> int:
    """The schema version of a file from before the ladder (or 0 for a new one), told by what it holds."""
    tables = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "items" not in tables:
        return 0  # a new file
    if not set(_VIDEO_COLUMNS) <= _columns(cursor, "items"):
        return 2 if "api_tokens" in tables else 1
    indexes = {row[1] for row in cursor.execute("PRAGMA index_list(items)")}
    return 4 if "ix_items_kind_status" in indexes else 3


def _create(cursor: sqlite3.Cursor, engine: Engine, metadata: MetaData) -> None:
    """A new database: every table and index as declared (what ``create_all`` would emit), in this transaction."""
    for table in metadata.sorted_tables:
        cursor.execute(str(CreateTable(table).compile(dialect=engine.dialect)))
        for index in sorted(table.indexes, key=lambda index: index.name):
            cursor.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
    for create in metadata.info.get("raw_ddl", ()):  # what SQLAlchemy cannot declare (FTS5 tables, triggers)
        create(cursor)


def _columns(cursor: sqlite3.Cursor, table: str) -> set[str]:
    return {row[1] for row in cursor.execute(f"PRAGMA table_info({table})")}


def _file_of(cursor: sqlite3.Cursor) -> str:
    return next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "the database")

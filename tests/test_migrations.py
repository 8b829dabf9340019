"""Numbered schema migrations: a database written by every earlier release upgrades to the current schema with its
data intact, a new one is created at the current version, a failed upgrade changes nothing, and a database from
a newer release is refused with a clear message."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from materialsearch.catalog import migrations
from materialsearch.catalog.core import Catalog
from materialsearch.catalog.migrations import VERSION, SchemaError
from materialsearch.catalog.store import ItemCounts, Store
from materialsearch.catalog.tokens import TokenStore
from materialsearch.catalog.vector_index import VectorIndex

# Written by the last release before the ladder (schema 4, user_version 0): see tests/fixtures/README.md.
RELEASE_4 = Path(__file__).parent / "fixtures" / "materialsearch_v4.db"
VIDEO_COLUMNS = ["duration_ms", "playable", "pair_path", "motion_offset"]

# What each release added, undone in reverse to turn a copy of the release-4 file into what an earlier one wrote.
DOWNGRADES = {
    4: ["DROP INDEX ix_items_kind_status"],
    3: ["DROP INDEX ix_items_pair_path", *(f"ALTER TABLE items DROP COLUMN {c}" for c in VIDEO_COLUMNS)],
    2: ["DROP TABLE api_tokens"],
}
EARLIER_RELEASES = (1, 2, 3, 4)
FTS5_SHADOWS = ("data", "idx", "docsize", "config")  # the tables SQLite keeps behind each FTS5 table


def release_db(tmp_path: Path, release: int) -> Path:
    """A copy of the fixture as release ``release`` would have written it."""
    path = tmp_path / f"release{release}" / "materialsearch.db"
    path.parent.mkdir()
    shutil.copy(RELEASE_4, path)
    with sqlite3.connect(path) as conn:
        for undone in range(4, release, -1):
            for statement in DOWNGRADES[undone]:
                conn.execute(statement)
    return path


def schema_of(path: Path) -> dict:
    """Every table's columns (in order), foreign keys and indexes, the triggers and virtual tables (FTS5, as their
    SQL), and the version, as SQLite reports them."""
    with sqlite3.connect(path) as conn:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        schema: dict = {"version": conn.execute("PRAGMA user_version").fetchone()[0]}
        schema["sql of triggers and virtual tables"] = {
            name: " ".join(sql.split())
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' OR sql LIKE 'CREATE VIRTUAL TABLE%'"
            )
        }
        for table in tables:
            indexes = {
                name: (unique, [r[2] for r in conn.execute(f"PRAGMA index_info({name})")])
                for _seq, name, unique, *_rest in conn.execute(f"PRAGMA index_list({table})")
            }
            schema[table] = {
                "columns": [tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({table})")],
                "foreign_keys": [tuple(r[2:]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")],
                "indexes": indexes,
            }
    return schema


def rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture
def fresh_schema(tmp_path) -> dict:
    path = tmp_path / "fresh" / "materialsearch.db"
    Store(str(path)).close()
    return schema_of(path)


def test_a_new_database_is_created_at_the_current_version(fresh_schema):
    assert fresh_schema["version"] == VERSION == len(migrations.MIGRATIONS) + 1
    tables = {"items", "vectors", "meta", "api_tokens", "item_tags", "ocr_state", "ocr_text_lines", "ocr_text"}
    tables |= {"ocr_text_short", "hidden_items", "perceptual_hashes", "people", "faces", "face_state"}
    fts_shadows = {f"{fts}_{shadow}" for fts in ("ocr_text", "ocr_text_short") for shadow in FTS5_SHADOWS}
    assert set(fresh_schema) == {"version", "sql of triggers and virtual tables", *tables, *fts_shadows}
    assert set(fresh_schema["sql of triggers and virtual tables"]) == {
        "ocr_text",
        "ocr_text_short",
        "ocr_text_lines_insert",
        "ocr_text_lines_delete",
        "ocr_forget_deleted",
        "ocr_forget_changed",
    }
    assert set(VIDEO_COLUMNS) <= {c[0] for c in fresh_schema["items"]["columns"]}


@pytest.mark.parametrize("release", EARLIER_RELEASES)
def test_every_earlier_release_upgrades_to_the_current_schema_with_its_data(tmp_path, fresh_schema, release):
    path = release_db(tmp_path, release)
    before = schema_of(path)
    assert before["version"] == 0 and before != fresh_schema
    common = [c[0] for c in before["items"]["columns"]]
    items = rows(path, f"SELECT {', '.join(common)} FROM items ORDER BY id")
    vectors = rows(path, "SELECT * FROM vectors ORDER BY id")
    meta = rows(path, "SELECT * FROM meta ORDER BY key")
    tokens = rows(path, "SELECT * FROM api_tokens") if release >= 2 else []

    Store(str(path)).close()

    assert schema_of(path) == fresh_schema  # the ladder ends where a new database starts
    assert rows(path, f"SELECT {', '.join(common)} FROM items ORDER BY id") == items
    assert rows(path, "SELECT * FROM vectors ORDER BY id") == vectors
    assert rows(path, "SELECT * FROM meta ORDER BY key") == meta
    assert rows(path, "SELECT * FROM api_tokens") == tokens
    if release < 3:  # the columns that release lacked are empty, not invented
        assert rows(path, f"SELECT DISTINCT {', '.join(VIDEO_COLUMNS)} FROM items") == [(None,) * 4]
    assert len(items) == 7 and len(vectors) == 7 and {m[0] for m in meta} == {"model_identity", "last_scan"}


def test_the_release_4_database_reads_as_it_did(tmp_path):
    """Through the code: the counts, a video's columns, the token, and an index rebuilt to match."""
    path = release_db(tmp_path, 4)
    store = Store(str(path))
    try:
        assert store.counts() == ItemCounts(images=5, videos=1, errors=1)
        video = next(item for item in store.get_items(range(1, 10)).values() if item.kind == "video")
        assert video.duration_ms == 2703 and video.playable is True
        assert any(item.motion_offset for item in store.get_items(range(1, 10)).values())
        assert [t.name for t in TokenStore(store.engine).all()] == ["fixture"]
        identity = store.get_meta("model_identity")
        index = VectorIndex(str(path.parent / "index.faiss"), 64, identity, background=False)
        catalog = Catalog(store, index)
        assert catalog.open() is None  # same model: nothing to re-embed
        assert index.checksum() == store.vector_checksum() == (7, 28)
    finally:
        store.close()


def test_upgrading_twice_changes_nothing(tmp_path):
    path = release_db(tmp_path, 1)
    Store(str(path)).close()
    once = schema_of(path), rows(path, "SELECT * FROM items ORDER BY id")
    Store(str(path)).close()
    assert (schema_of(path), rows(path, "SELECT * FROM items ORDER BY id")) == once


def test_a_failed_step_rolls_the_whole_upgrade_back(tmp_path, monkeypatch):
    path = release_db(tmp_path, 2)
    before = schema_of(path), rows(path, "SELECT * FROM items ORDER BY id")

    def broken(cursor):  # in place of the last step: it writes, then fails
        cursor.execute("CREATE INDEX ix_written_before_failing ON items (kind, status)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS[:2], broken))  # in place of step 3
    with pytest.raises(RuntimeError, match="disk on fire"):
        Store(str(path))
    # The steps before it ran in the same transaction: nothing of any of them is left.
    assert (schema_of(path), rows(path, "SELECT * FROM items ORDER BY id")) == before


def test_a_database_from_a_newer_release_is_refused(tmp_path):
    path = release_db(tmp_path, 4)
    Store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    before = schema_of(path)
    with pytest.raises(SchemaError, match=rf"newer release .*schema version {VERSION + 1}.* up to {VERSION}"):
        Store(str(path))
    assert schema_of(path) == before


def test_the_cli_reports_a_newer_database_clearly(tmp_path, monkeypatch, capsys):
    from materialsearch.cli import main

    path = release_db(tmp_path, 4)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    monkeypatch.setenv("MS_DATA_DIR", str(path.parent))
    assert main(["token", "list"]) == 2
    assert "newer release of materialsearch" in capsys.readouterr().err


def test_problems_recorded_by_an_older_release_get_their_code_from_their_words(tmp_path):
    path = release_db(tmp_path, 4)
    with sqlite3.connect(path) as conn:  # a skip and an unknown wording besides the fixture's unreadable image
        conn.execute(
            "UPDATE items SET status = 'skipped', error = 'too small (10x10; MS_MIN_IMAGE_SIZE is 32)' "
            "WHERE id = (SELECT min(id) FROM items WHERE error IS NULL)"
        )
        conn.execute("UPDATE items SET error = 'the disk hummed' WHERE id = (SELECT max(id) FROM items)")
    Store(str(path)).close()
    assert sorted(rows(path, "SELECT error_code FROM items WHERE error IS NOT NULL")) == [
        ("too_small",),
        ("unknown",),
        ("unsupported_format",),
    ]
    assert rows(path, "SELECT count(*) FROM items WHERE error IS NULL AND error_code IS NOT NULL") == [(0,)]

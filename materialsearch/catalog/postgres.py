"""PostgreSQL underneath the catalog (``MS_DATABASE_URL=postgresql://…``): the engine, its versioned schema steps and
the change watch. Nothing outside ``catalog/`` sees which engine it has.

The tables are the same declarations as SQLite's (``schema``); what SQLAlchemy cannot declare is made here: the
``vector`` and ``pg_trgm`` extensions, the text index (``pg_text``: the lines table with a trigram GIN index, for
the FTS5 tables SQLite has), the triggers that forget an item's text when its file changes, and the triggers that
tell listeners a table changed (``ChangeWatch``'s PostgreSQL twin). Vectors are pgvector ``vector`` columns; the
HNSW index, which depends on the model's dimension, is made by ``pg_vectors``.

Schema versions are PostgreSQL's own (``STEPS``, recorded in ``schema_version``), independent of SQLite's frozen
migrations; two processes opening one database migrate one at a time (an advisory lock).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.schema import MetaData

from materialsearch.catalog import pg_schema
from materialsearch.catalog.migrations import SchemaError
from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.schema import VectorBinary

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "materialsearch_catalog"  # NOTIFY channel: some catalog table changed (sent at commit)
MIGRATION_LOCK = 0x6D73_0001  # pg_advisory_xact_lock key: one process migrates at a time
# Tables whose changes invalidate caches keyed on the watch (filters read all of them).
WATCHED = (
    "items",
    "vectors",
    "meta",
    "item_tags",
    "hidden_items",
    "perceptual_hashes",
    "people",
    "faces",
    "face_state",
    "ocr_state",
    "ocr_text_lines",
)
# Search-time settings of every connection: HNSW scans go on past ef_search when filters drop candidates.
HNSW_EF_SEARCH = 100


def is_database_url(location: str) -> bool:
    """Whether the catalog's location is a PostgreSQL URL (else a SQLite file path)."""
    return location.partition("://")[0] in ("postgresql", "postgres", "postgresql+psycopg")


def _driver_url(url: str) -> str:
    _scheme, _, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}"


def _libpq_url(url: str) -> str:
    _scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}"


def redacted(url: str) -> str:
    """The URL as the user writes it (``postgresql://``), without its password (for messages and logs)."""
    parts = urlsplit(_libpq_url(url))
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _session_settings(dbapi_connection, _record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
        oid = cursor.execute("SELECT to_regtype('vector')::oid").fetchone()[0]
    dbapi_connection.commit()
    if oid is not None:  # None in a database the catalog has not created yet (``upgrade`` reconnects after)
        from psycopg.adapt import Dumper
        from psycopg.pq import Format

        class VectorDumper(Dumper):
            format = Format.BINARY

            def dump(self, obj):
                return bytes(obj)

        VectorDumper.oid = oid
        dbapi_connection.adapters.register_dumper(VectorBinary, VectorDumper)


def engine_for(url: str) -> Engine:
    """A pooled engine on the database (psycopg 3), each connection with the catalog's search settings."""
    engine = create_engine(_driver_url(url), pool_pre_ping=True, pool_size=8, max_overflow=8)
    event.listen(engine, "connect", _session_settings)
    return engine


# --- schema steps ----------------------------------------------------------------------------------------------
def _text_tables(conn: Connection) -> None:
    """The text index (``pg_text``): lines with a trigram index on their normalised text, and the triggers that
    forget an item's text and OCR state when it is deleted, its file changes or it stops being indexed."""
    conn.exec_driver_sql(
        """CREATE TABLE ocr_text_lines (
            id BIGSERIAL PRIMARY KEY,
            item_id INTEGER NOT NULL,
            line_no INTEGER NOT NULL,
            text TEXT NOT NULL,
            norm TEXT NOT NULL,
            box_left REAL NOT NULL,
            box_top REAL NOT NULL,
            box_right REAL NOT NULL,
            box_bottom REAL NOT NULL,
            confidence REAL NOT NULL,
            UNIQUE (item_id, line_no)
        )"""
    )
    conn.exec_driver_sql("CREATE INDEX ix_ocr_text_lines_norm ON ocr_text_lines USING gin (norm gin_trgm_ops)")
    conn.exec_driver_sql(
        """CREATE FUNCTION ocr_forget() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            DELETE FROM ocr_text_lines WHERE item_id = OLD.id;
            DELETE FROM ocr_state WHERE item_id = OLD.id;
            RETURN NULL;
        END $$"""
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER ocr_forget_deleted AFTER DELETE ON items FOR EACH ROW EXECUTE FUNCTION ocr_forget()"
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER ocr_forget_changed AFTER UPDATE OF size, mtime_ns, content_hash, status ON items FOR EACH ROW"
        " WHEN (NEW.size IS DISTINCT FROM OLD.size OR NEW.mtime_ns IS DISTINCT FROM OLD.mtime_ns"
        " OR NEW.content_hash IS DISTINCT FROM OLD.content_hash"
        f" OR NEW.status NOT IN ('{ItemStatus.OK}', '{ItemStatus.PENDING}')) EXECUTE FUNCTION ocr_forget()"
    )


def _change_notices(conn: Connection) -> None:
    """Each write to a watched table NOTIFYs ``CHANNEL`` (delivered at commit, one per transaction)."""
    conn.exec_driver_sql(
        f"""CREATE FUNCTION catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$"""
    )
    for table in WATCHED:
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed()"
        )


def _create(conn: Connection) -> None:
    """Version 1: the extensions, the tables (frozen as first released: ``pg_schema``), the text index and the
    change notices."""
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    conn.exec_driver_sql(pg_schema.TABLES_1)
    _text_tables(conn)
    _change_notices(conn)


def _work_queue(conn: Connection) -> None:
    """Version 2: the scan's work queue, which scan workers on several hosts take batches from."""
    conn.exec_driver_sql(pg_schema.WORK_QUEUE_2)


# Each step brings the schema from its position (1-based) to the next; the first creates it. Append, never edit:
# a step's SQL is frozen as released, whatever the declarations in ``schema`` say later.
STEPS: tuple[Callable[[Connection], None], ...] = (_create, _work_queue)
VERSION = len(STEPS)


# A server that does not answer at start is waited for this long (compose starts the database and the app together;
# a NAS boots them in any order), saying so, before the start fails.
START_WAIT_S = 120.0


def upgrade(engine: Engine, _metadata: MetaData | None = None) -> int:
    """Bring the database to ``VERSION`` (creating the catalog in an empty one); returns the version it was at.
    A server that does not answer yet is waited for up to ``START_WAIT_S``; SchemaError after that, or at once for a
    database written by a newer release."""
    try:
        found = retrying(lambda: _upgrade(engine), give_up_after_s=START_WAIT_S)
    except OperationalError as error:
        raise SchemaError(f"cannot use the catalog's database {redacted(str(engine.url))}: {error.orig}") from None
    if found == 0:
        engine.dispose()  # connections made before the extension existed lack its binary form
    return found


def _upgrade(engine: Engine) -> int:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = conn.exec_driver_sql("SELECT max(version) FROM schema_version").scalar() or 0
        if found > VERSION:
            raise SchemaError(
                f"{redacted(str(engine.url))} holds a catalog of a newer release of materialsearch (schema version "
                f"{found}; this one knows up to {VERSION}): run that release or a later one, or use another database"
            )
        for number, step in enumerate(STEPS[found:], start=found + 1):
            log.info("PostgreSQL catalog: schema step %d (%s)", number, (step.__doc__ or "").split(":")[0])
            step(conn)
        if found != VERSION:
            conn.exec_driver_sql("DELETE FROM schema_version")
            conn.exec_driver_sql(f"INSERT INTO schema_version VALUES ({VERSION})")
    return found


# A write that loses its server (restarted, failed over, the network away) is retried this long: the transaction
# was rolled back whole, and a scan batch is written by path (insert or replace), so writing it again is safe.
RECONNECT_FOR_S = 600.0
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def retrying(write: Callable[[], T], give_up_after_s: float = RECONNECT_FOR_S) -> T:
    """``write()``, again after a lost connection or a server that does not answer (waiting 0.5 s, 1 s, 2 s, 5 s,
    then every 10 s) until it succeeds or ``give_up_after_s`` has passed; any other error at once."""
    started = time.monotonic()
    for attempt in itertools.count():
        try:
            return write()
        except DBAPIError as error:
            lost = error.connection_invalidated or isinstance(error, OperationalError)
            if not lost or time.monotonic() - started > give_up_after_s:
                raise
            delay = RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)]
            log.warning("lost the catalog's database (%s); writing again in %.1f s", error.orig, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class PgChangeWatch:
    """Whether anyone has committed to the catalog since it last looked (the PostgreSQL twin of SQLite's
    ``ChangeWatch``): a connection of its own LISTENs on ``CHANNEL``, which the tables' triggers notify at commit;
    ``version`` counts the notices received (a lost connection counts as a change)."""

    def __init__(self, url: str):
        self.url = _libpq_url(url)
        self._connection = None
        self._count = 0
        self._lock = threading.Lock()

    def _notice(self, _notify) -> None:
        self._count += 1

    def version(self) -> int:
        """A number that changes after every commit to a watched table (by any process)."""
        import psycopg

        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg.connect(self.url, autocommit=True)
                    self._connection.add_notify_handler(self._notice)
                    self._connection.execute(f"LISTEN {CHANNEL}")
                    self._count += 1
                else:
                    self._connection.execute("SELECT 1")  # delivers the notices that arrived meanwhile
            except psycopg.OperationalError:
                self._drop()
                self._count += 1
            return self._count

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def close(self) -> None:
        """Close its connection (a later ``version`` opens another)."""
        with self._lock:
            self._drop()

"""SQLite underneath the catalog: the connection's pragmas, vectors as blobs, ``IN`` lists in chunks, 64-bit
hashes as SQLite's signed integers. Nothing outside ``catalog/`` sees these notions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from sqlalchemy import bindparam

PAGE_SIZE_BYTES = 16384  # 4 KiB pages waste about half the file on 2 KB vector blobs
# Ids per ``IN (...)``: SQLite before 3.32 allows at most 999 bound parameters in one statement.
IN_CHUNK = 900

T = TypeVar("T")


def pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # page_size only takes effect on a new database, before WAL is switched on.
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE_BYTES}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Qmark:
    """The DBAPI connection under a SQLAlchemy ``Connection`` (its transaction), taking SQL with ``?`` marks: SQLite's
    own connection as it is (no cost), psycopg's with ``?`` written as ``%s``. For the catalog's hand-written SQL,
    which keeps to what both engines read alike (upserts with ON CONFLICT, RETURNING, booleans as parameters)."""

    def __init__(self, conn):
        self.raw = conn.connection.driver_connection
        self.postgres = conn.dialect.name == "postgresql"

    def execute(self, sql: str, params: Sequence = ()):
        """A cursor over the statement's rows."""
        if not self.postgres:
            return self.raw.execute(sql, params)
        return self.raw.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        """The statement once per row of parameters."""
        if not self.postgres:
            self.raw.executemany(sql, rows)
        elif rows:
            with self.raw.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), [tuple(row) for row in rows])


def vector_to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes."""
    return np.asarray(vector, dtype="<f4").tobytes()


def blob_to_vector(blob: bytes) -> np.ndarray:
    """Inverse of ``vector_to_blob``."""
    return np.frombuffer(blob, dtype="<f4")


def stack_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    return np.vstack([blob_to_vector(b) for b in blobs]) if blobs else np.empty((0, 0), np.float32)


def any_of(column):
    """``column IN (…)`` of the list passed as ``values`` when the statement runs, so that a statement run for every
    page of results is built once (building one cost more than running it: see ``store``)."""
    return column.in_(bindparam("values", expanding=True))


def chunked(values: Iterable[T], size: int | None = None) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size`` (``IN_CHUNK``): one ``IN (...)`` each."""
    size = size or IN_CHUNK
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def signed64(value: int) -> int:
    """An unsigned 64-bit hash as the signed integer SQLite stores."""
    return value - 2**64 if value >= 2**63 else value


def unsigned64(value: int) -> int:
    """Inverse of ``signed64``."""
    return value + 2**64 if value < 0 else value

"""The data-dir lock: exactly one process per data dir scans and schedules, the one holding ``DataDirLock`` (an
exclusive ``flock`` on ``$MS_DATA_DIR/materialsearch.lock``, released by the kernel when the process dies, even by
SIGKILL). Any other process that opens the same data dir (a second server, a CLI scan while the server runs, a
reloader's child) only reads, and says who holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

LOCK_NAME = "materialsearch.lock"


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on a file in the data dir, naming its holder's pid."""

    def __init__(self, data_dir: str):
        self.path = os.path.join(data_dir, LOCK_NAME)
        self._handle = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._handle is not None

    def acquire(self) -> bool:
        """Take the lock if no other process (or other open of it) holds it; True on success."""
        if self._handle is not None:
            return True
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return True

    def holder(self) -> str:
        """Who holds the lock, for messages: 'process 1234' (or 'another process')."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                pid = handle.read().strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid.isdigit() else "another process"

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


OWNER_LOCK = 0x6D73_0002  # pg_advisory_lock key of the catalog's owner (one per database)


class DatabaseLock(DataDirLock):
    """With the catalog in PostgreSQL: the data dir's lock and the database's, one session-level advisory lock
    (``pg_try_advisory_lock``) held on a connection of its own, so one process across every host sharing the
    database scans and schedules. The server releases it when that process dies or its connection drops; the
    holder is named from ``pg_stat_activity`` (its connection's ``application_name``: host and pid)."""

    def __init__(self, data_dir: str, url: str):
        super().__init__(data_dir)
        self.url = "postgresql://" + url.partition("://")[2]
        self._connection = None

    def acquire(self) -> bool:
        """Take both locks; True when this process now holds them."""
        if self._connection is not None:
            return True
        if not super().acquire():
            return False
        import socket

        import psycopg

        from materialsearch.catalog.migrations import SchemaError
        from materialsearch.catalog.postgres import redacted

        name = f"materialsearch {socket.gethostname()} pid {os.getpid()}"[:63]
        try:
            connection = psycopg.connect(self.url, autocommit=True, application_name=name, connect_timeout=10)
        except psycopg.OperationalError as error:
            super().release()
            raise SchemaError(f"cannot reach the catalog's database {redacted(self.url)}: {error}") from None
        if not connection.execute("SELECT pg_try_advisory_lock(%s)", (OWNER_LOCK,)).fetchone()[0]:
            connection.close()
            super().release()
            return False
        self._connection = connection
        return True

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._connection is not None

    def holder(self) -> str:
        """Who holds the database's lock: 'materialsearch HOST pid N' (or the data dir's holder)."""
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True) as connection:
                row = connection.execute(
                    "SELECT a.application_name, a.pid FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s"
                    # Advisory locks are per database: another catalog on the same server has an owner of its own.
                    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    (OWNER_LOCK,),
                ).fetchone()
        except psycopg.Error:
            row = None
        if row is None:
            return super().holder()
        return row[0] or f"the database session {row[1]}"

    def release(self) -> None:
        """Give both locks back (idempotent)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()  # the session's advisory lock goes with it
        super().release()

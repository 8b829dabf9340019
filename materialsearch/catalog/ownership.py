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

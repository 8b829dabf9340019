"""What the places feature keeps on the items: the positions read and the places they resolve to, with the place
counts kept until the next commit (``ChangeWatch``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine

from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.schema import Item


class ChangeWatch:
    """Whether anyone has committed to the database since it last looked: SQLite's ``PRAGMA data_version`` on a
    connection of its own that never writes (a commit by any other connection, of this process or another,
    changes it), so a cache keyed on it costs one pragma per use and is never stale."""

    def __init__(self, path: str):
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def version(self) -> int:
        """The database's data version as this connection sees it."""
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            return self._connection.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        """Close its connection (a later ``version`` opens another)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class PlaceData:
    """What the places feature keeps on the items: positions read, and the places they resolve to."""

    def __init__(self, engine: Engine, watch: ChangeWatch):
        self.engine = engine
        self.watch = watch
        self._counts: tuple[int, list[tuple]] | None = None  # (data version, place_counts) of the last computation

    def place_counts(self) -> list[tuple]:
        """Indexed items per (country, region, city, city_zh): their count and mean position, most first.

        Kept until the next commit to the database (≈ 0.4 s at 100k located items otherwise, for every visit of
        the places view)."""
        version = self.watch.version()  # before reading: a commit meanwhile makes the next call compute again
        if self._counts is not None and self._counts[0] == version:
            return self._counts[1]
        counts = self._compute_counts()
        self._counts = (version, counts)
        return counts

    def _compute_counts(self) -> list[tuple]:
        columns = (Item.place_country, Item.place_region, Item.place_city, Item.place_city_zh)
        query = (
            select(*columns, func.count(Item.id), func.avg(Item.latitude), func.avg(Item.longitude))
            .where(Item.status == ItemStatus.OK, Item.place_country.is_not(None))
            .group_by(*columns)
            .order_by(func.count(Item.id).desc(), Item.place_city)
        )
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def unlocated(self, after_id: int, limit: int) -> list[tuple[int, str, str]]:
        """(id, path, kind) of items whose location was never read (indexed before places), by id after ``after_id``."""
        query = (
            select(Item.id, Item.path, Item.kind)
            .where(
                Item.location_read.is_(None), Item.status.in_([ItemStatus.OK, ItemStatus.MOTION]), Item.id > after_id
            )
            .order_by(Item.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def set_locations(self, located: Sequence[dict]) -> None:
        """Store read locations (``{"b_id": id, column: value…}``) in one transaction, leaving any item that a scan
        has rewritten meanwhile (its location is already read) as the scan wrote it."""
        if located:
            with self.engine.begin() as conn:
                conn.execute(
                    update(Item).where(Item.id == bindparam("b_id"), Item.location_read.is_(None)), list(located)
                )

"""The scan's work queue, with the catalog in PostgreSQL: the files a scan planned, claimed in batches by whoever
embeds them (the owner's scan and ``worker`` processes on any host), and the workers' roll call.

The owner plans (``plan``: one planner at a time, the catalog's advisory lock); anyone claims (``claim``: ``SELECT …
FOR UPDATE SKIP LOCKED``, so two claimers never wait for or take each other's rows). A claim is a lease on the
server's clock: its holder renews it while it works (``renew``); a worker that dies (SIGKILL, a lost host) stops
renewing, its lease runs out and the next claimer takes the files again. What makes "exactly once" hold is the write:
a batch's items are written in the same transaction that marks its queue rows done (``WorkClaim.keep`` locks the rows
and keeps only those still claimed by the writer, ``WorkClaim.done`` marks them), so a worker that lost its lease
(paused past it, cut off from the database) drops its results instead of writing them a second time.

A file whose lease ran out ``GIVE_UP_AFTER`` times (it killed every worker that read it) is not read again: the next
claimer records it as failed, without opening it.

Why a table with ``SKIP LOCKED`` and not a job-queue library (procrastinate, pgqueuer): the unit of work is a row the
planner already has (a file), the claim must commit atomically with the catalog's own write, and the roll call is
one more table; a library would add a schema, a runner and a dependency for what is four statements here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from materialsearch.catalog.postgres import retrying
from materialsearch.catalog.records import ItemRecord, ItemStatus

GIVE_UP_AFTER = 3  # leases that ran out on one file before it is recorded as failed instead of read again
FORGET_WORKERS_AFTER = dt.timedelta(days=7)
PLAN_CHUNK = 5000  # planned files inserted per statement  # the roll call forgets workers not seen for this long


class PlannedFile(Protocol):
    """What the planner queues of a file (the walk's ``FileEntry`` is one)."""

    path: str
    size: int
    mtime_ns: int
    kind: str
    still: str | None


@dataclasses.dataclass(frozen=True)
class QueuedFile:
    """One planned file, as the planner saw it (``known``: it was indexed before, so writing it is an update)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    kind: str
    still: str | None
    known: bool
    attempts: int  # how many claims it has had, this one included

    @property
    def given_up(self) -> bool:
        """Every worker that read it so far died on it: record it as failed without reading it."""
        return self.attempts > GIVE_UP_AFTER


@dataclasses.dataclass(frozen=True)
class WorkerRow:
    """A scan worker in the roll call (``GET /api/status``' ``workers``)."""

    name: str
    host: str
    pid: int
    role: str  # "scan" (the owner's scan) or "worker" (``python -m materialsearch worker``)
    state: str
    files: int  # files it has written, since it started
    started_at: dt.datetime
    last_seen: dt.datetime
    alive: bool  # seen within a lease


@dataclasses.dataclass(frozen=True)
class QueueCounts:
    """Where one planned run stands."""

    planned: int
    done: int
    claimed: int  # not done, held by a live lease
    outcomes: dict[str, int]  # added / updated / error / skipped → files

    @property
    def open(self) -> int:
        return self.planned - self.done


T = TypeVar("T")


def _outlives_restarts(method: Callable[..., T]) -> Callable[..., T]:
    """Run the statement again after a lost connection (a database restart costs a scan nothing). A claim whose
    answer was lost is not lost with it: its holder hands back everything it holds when its round ends."""

    @functools.wraps(method)
    def again(*args, **kwargs) -> T:
        return retrying(lambda: method(*args, **kwargs))

    return again


_COLUMNS = "id, path, size, mtime_ns, kind, still, known, attempts"


def _outcome(record: ItemRecord) -> str:
    if record.status == ItemStatus.ERROR:
        return "error"
    if record.status == ItemStatus.SKIPPED:
        return "skipped"
    return "written"  # "added" or "updated", from the row's ``known`` (see ``WorkClaim.done``)


class WorkQueue:
    """The queue and roll call tables (``pg_schema.WORK_QUEUE_2``); ``lease_s`` is how long a claim lasts unrenewed."""

    def __init__(self, engine: Engine, lease_s: float):
        self.engine = engine
        self.lease = dt.timedelta(seconds=lease_s)

    # --- the planner --------------------------------------------------------------------------------------------
    @_outlives_restarts
    def plan(self, files: Sequence[PlannedFile], known: Iterable[str]) -> int:
        """Queue a scan's files to embed (anything with path, size, mtime_ns, kind, still: the walk's entries);
        returns the run's number. What an
        earlier run left is dropped unless a live lease holds it (a worker still at it: its file joins this run).
        One transaction, inserted in chunks (a first scan of a million files is not a million-row list here)."""
        known = set(known)
        insert = text(
            "INSERT INTO scan_queue (run, path, size, mtime_ns, kind, still, known)"
            " VALUES (:run, :path, :size, :mtime_ns, :kind, :still, :known)"
            " ON CONFLICT (path) DO UPDATE SET run = EXCLUDED.run"
        )
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM scan_queue WHERE done_by IS NOT NULL OR claimed_by IS NULL OR claimed_until < now()")
            )
            run = conn.execute(text("SELECT coalesce(max(run), 0) + 1 FROM scan_queue")).scalar_one()
            run = max(run, int(dt.datetime.now().timestamp()))  # runs stay increasing after the table emptied
            chunk: list[dict] = []
            for file in files:
                chunk.append(
                    {
                        "run": run,
                        "path": file.path,
                        "size": file.size,
                        "mtime_ns": file.mtime_ns,
                        "kind": str(file.kind),
                        "still": file.still,
                        "known": file.path in known,
                    }
                )
                if len(chunk) == PLAN_CHUNK:
                    conn.execute(insert, chunk)
                    chunk = []
            if chunk:
                conn.execute(insert, chunk)
        return run

    @_outlives_restarts
    def drop_unclaimed(self) -> int:
        """Drop the planned files nobody holds (the scan was stopped); claimed ones are finished by their holders.
        Returns how many were dropped."""
        with self.engine.begin() as conn:
            return conn.execute(
                text("DELETE FROM scan_queue WHERE done_by IS NULL AND (claimed_by IS NULL OR claimed_until < now())")
            ).rowcount

    @_outlives_restarts
    def counts(self, run: int) -> QueueCounts:
        """How far the run is, everyone's work together."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT outcome, known, done_by IS NOT NULL, claimed_until > now(), count(*) FROM scan_queue"
                    " WHERE run = :run GROUP BY 1, 2, 3, 4"
                ),
                {"run": run},
            ).all()
        planned = done = claimed = 0
        outcomes: dict[str, int] = {}
        for outcome, known, finished, leased, count in rows:
            planned += count
            if finished:
                done += count
                name = ("updated" if known else "added") if outcome == "written" else outcome
                outcomes[name] = outcomes.get(name, 0) + count
            elif leased:
                claimed += count
        return QueueCounts(planned, done, claimed, outcomes)

    @_outlives_restarts
    def unfinished(self) -> bool:
        """Whether any planned file, of any run, is not written yet (held by someone, or free)."""
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM scan_queue WHERE done_by IS NULL LIMIT 1")).first() is not None

    # --- claiming -----------------------------------------------------------------------------------------------
    @_outlives_restarts
    def claim(self, worker: str, limit: int) -> list[QueuedFile]:
        """Up to ``limit`` files nobody holds (never held, or whose lease ran out), in plan order, leased to
        ``worker``; none when the queue has nothing free."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "UPDATE scan_queue SET claimed_by = :worker, claimed_until = now() + :lease,"
                    " attempts = attempts + 1 WHERE id IN (SELECT id FROM scan_queue WHERE done_by IS NULL"
                    " AND (claimed_by IS NULL OR claimed_until < now()) ORDER BY id LIMIT :limit"
                    f" FOR UPDATE SKIP LOCKED) RETURNING {_COLUMNS}"
                ),
                {"worker": worker, "lease": self.lease, "limit": limit},
            ).all()
        return sorted((QueuedFile(*row) for row in rows), key=lambda file: file.id)

    def renew(self, worker: str, state: str) -> int:
        """Extend ``worker``'s leases and mark it seen (its heartbeat); returns how many files it still holds."""
        with self.engine.begin() as conn:
            held = conn.execute(
                text(
                    "UPDATE scan_queue SET claimed_until = now() + :lease"
                    " WHERE claimed_by = :worker AND done_by IS NULL"
                ),
                {"worker": worker, "lease": self.lease},
            ).rowcount
            conn.execute(
                text("UPDATE scan_workers SET last_seen = now(), state = :state WHERE name = :worker"),
                {"worker": worker, "state": state},
            )
        return held

    @_outlives_restarts
    def release(self, worker: str, paths: Sequence[str] | None = None) -> int:
        """Hand back ``worker``'s unfinished files (all of them, or ``paths``) for others to take at once; the claim
        does not count as an attempt."""
        where = "claimed_by = :worker AND done_by IS NULL" + ("" if paths is None else " AND path = ANY(:paths)")
        with self.engine.begin() as conn:
            return conn.execute(
                text(
                    "UPDATE scan_queue SET claimed_by = NULL, claimed_until = NULL,"
                    f" attempts = greatest(attempts - 1, 0) WHERE {where}"
                ),
                {"worker": worker, "paths": list(paths or ())},
            ).rowcount

    # --- the roll call ------------------------------------------------------------------------------------------
    @_outlives_restarts
    def register(self, name: str, host: str, pid: int, role: str) -> None:
        """``name`` starts working (a restart under the same name starts its count again)."""
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM scan_workers WHERE last_seen < now() - :forget"), {"forget": FORGET_WORKERS_AFTER}
            )
            conn.execute(
                text(
                    "INSERT INTO scan_workers (name, host, pid, role, state, files, started_at, last_seen)"
                    " VALUES (:name, :host, :pid, :role, 'starting', 0, now(), now()) ON CONFLICT (name) DO UPDATE"
                    " SET host = :host, pid = :pid, role = :role, state = 'starting', files = 0,"
                    " started_at = now(), last_seen = now()"
                ),
                {"name": name, "host": host, "pid": pid, "role": role},
            )

    def workers(self) -> list[WorkerRow]:
        """Everyone who worked on scans lately, the most recently seen first. (Asked by the status page: not retried
        while the database is away, the page says so at once.)"""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT name, host, pid, role, state, files, started_at, last_seen,"
                    " last_seen >= now() - :lease AND state <> 'stopped'"
                    " FROM scan_workers ORDER BY last_seen DESC, name"
                ),
                {"lease": self.lease},
            ).all()
        return [WorkerRow(*row) for row in rows]


class WorkClaim:
    """The writer's side of one batch: which of its files it still holds, and marking them done, both inside the
    transaction that writes their items (``Store.write_batch``)."""

    def __init__(self, queue: WorkQueue, worker: str):
        self.queue, self.worker = queue, worker
        self.dropped: list[str] = []  # the last batch's paths whose lease had passed to someone else: not written
        self.dropped_count = 0  # all batches' together

    def keep(self, conn: Connection, paths: Sequence[str]) -> set[str]:
        """Lock the batch's queue rows and return the paths this writer still holds (the others were taken over
        after its lease ran out: writing them would embed those files twice)."""
        held = set(
            conn.execute(
                text(
                    "SELECT path FROM scan_queue WHERE path = ANY(:paths) AND claimed_by = :worker"
                    " AND done_by IS NULL FOR UPDATE"
                ),
                {"paths": list(paths), "worker": self.worker},
            ).scalars()
        )
        self.dropped = [path for path in paths if path not in held]
        self.dropped_count += len(self.dropped)
        return held

    def done(self, conn: Connection, records: Sequence[ItemRecord]) -> None:
        """Mark the written records' queue rows done with their outcome, and count them for the writer."""
        if not records:
            return
        conn.execute(
            text(
                "UPDATE scan_queue SET done_by = :worker, outcome = :outcome, claimed_until = NULL"
                " WHERE path = :path AND claimed_by = :worker"
            ),
            [{"worker": self.worker, "path": r.path, "outcome": _outcome(r)} for r in records],
        )
        conn.execute(
            text("UPDATE scan_workers SET files = files + :count, last_seen = now() WHERE name = :worker"),
            {"worker": self.worker, "count": len(records)},
        )

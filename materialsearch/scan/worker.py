"""Embedding from the work queue (the catalog in PostgreSQL): the owner's scan plans its files into the queue and
then works it like everyone else; ``python -m materialsearch worker`` on any host that sees the library at the same
path works it too. See ``catalog.work_queue`` for the claims, their leases and why nothing is written twice.

A worker takes a few batches of files at a time (so a file is never held long by someone slower), prepares them in
the same read-ahead a scan uses, embeds them (locally, or through ``MS_ENCODER_URLS``) and writes each batch with
its queue rows marked done in the same transaction. A heartbeat thread renews its leases and keeps it in the roll
call. A stopped worker hands its unfinished files back at once; a killed one loses them to the next claimer when its
lease runs out.

What stays with the owner: the walk, the plan, moves and removals, the passes after a scan (OCR, faces, tags) and
the schedule. Thumbnails are written into the worker's own ``MS_DATA_DIR``: give workers the same data dir (shared
storage), or the app makes a missing thumbnail when it is first asked for.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

from materialsearch.catalog.records import Kind
from materialsearch.catalog.work_queue import GIVE_UP_AFTER, QueueCounts, QueuedFile, WorkClaim, WorkQueue
from materialsearch.errors import ProblemCode
from materialsearch.scan.pipeline import EndMessage, FrameMessage
from materialsearch.scan.prepare import error_record
from materialsearch.scan.reports import ScanWorkerStatus
from materialsearch.scan.walk import FileEntry

log = logging.getLogger(__name__)

# Files claimed at a time: this many model batches (enough to keep the read-ahead full, few enough that a slow
# worker does not sit on files that a faster one could take).
CLAIM_BATCHES = 2
# While the queue has no free file but others still hold some (the owner waiting for them to finish), or a worker
# waiting for the next scan: how often to look again.
IDLE_POLL_S = 2.0
# A worker that could not see a planned file's folder waits this long before it claims again (its files go to others).
BLIND_WAIT_S = 30.0
# The owner's progress counts everyone's files: re-read from the queue at most this often.
COUNT_EVERY_S = 1.0


def worker_name(role: str) -> str:
    """How a worker is named in the queue and the roll call: host, pid and role (unique while it lives)."""
    return f"{socket.gethostname()} pid {os.getpid()} {role}"


def roll_call(queue: WorkQueue | None) -> list[ScanWorkerStatus]:
    """Who embeds scans' files (``GET /api/status``' ``workers``): none on SQLite, where the owner's scan does all."""
    if queue is None:
        return []
    return [
        ScanWorkerStatus(
            name=row.name,
            host=row.host,
            pid=row.pid,
            role=row.role,
            state=row.state,
            files=row.files,
            started_at=row.started_at.isoformat(),
            last_seen=row.last_seen.isoformat(),
            alive=row.alive,
        )
        for row in queue.workers()
    ]


def _entry(file: QueuedFile) -> FileEntry:
    return FileEntry(file.path, file.size, file.mtime_ns, Kind(file.kind), file.still)


class Heartbeat:
    """Renews a worker's leases and roll-call entry every third of a lease, in a thread of its own (so a long
    video's decode does not let the lease run out), with the state the worker last reported."""

    def __init__(self, queue: WorkQueue, name: str):
        self.queue, self.name = queue, name
        self.state = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="worker heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def set(self, state: str) -> None:
        """What the worker does now (shown in the roll call); written at once."""
        if state != self.state:
            self.state = state
            self.beat()

    def beat(self) -> None:
        """Renew now. A lost database is logged and tried again next beat (the lease outlasts two missed beats)."""
        try:
            self.queue.renew(self.name, self.state)
        except Exception as exc:  # noqa: BLE001 - the heartbeat must outlive a database restart
            log.warning("worker heartbeat failed (tried again in %.0f s): %s", self._interval, exc)

    @property
    def _interval(self) -> float:
        return self.queue.lease.total_seconds() / 3

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()


class QueueWorker:
    """Works the queue with a scanner's preparer, encoder and catalog: for the owner's scan (``scan_planned``) or
    as a worker process (``serve``)."""

    def __init__(self, scanner, queue: WorkQueue, role: str):
        self.scanner, self.queue, self.role = scanner, queue, role
        self.name = worker_name(role)
        self.claim_size = scanner.settings.batch_size * CLAIM_BATCHES
        self.waiting: str | None = None  # why the owner's scan waits (other workers' files), for the status
        self.blind: str | None = None  # a planned file's folder this host does not see (in the last round)

    # --- one round: claim, prepare, embed, write, until nothing is free --------------------------------------
    def _round(self, embedding, should_stop: Callable[[], bool]) -> int:
        """Claim and embed files until the queue has none free or the worker is stopped; returns how many it
        claimed. Files cut off by a stop are handed back."""
        claimed = 0
        given_up: set[str] = set()

        def entries() -> Iterator[FileEntry]:
            nonlocal claimed
            while not should_stop():
                files = self.queue.claim(self.name, self.claim_size)
                if not files:
                    return
                # A file whose folder this host cannot see (the library mounted elsewhere, or not at all) goes back
                # at once: reading it here would record it as unreadable, which it is not.
                # (The owner walked them: a folder gone since is the scan's ordinary vanished file.)
                unseen = [
                    file.path
                    for file in files
                    if self.role == "worker" and not os.path.isdir(os.path.dirname(file.path))
                ]
                if unseen:
                    self.queue.release(self.name, unseen)
                    self.blind = os.path.dirname(unseen[0])
                    files = [file for file in files if file.path not in set(unseen)]
                    if not files:
                        return
                claimed += len(files)
                for file in files:
                    if file.known:
                        embedding.known.add(file.path)
                    if file.given_up:
                        given_up.add(file.path)
                    yield _entry(file)

        def produce(entry: FileEntry, emit: Callable[[FrameMessage], None]) -> EndMessage:
            if entry.path in given_up:
                reason = (
                    f"{GIVE_UP_AFTER} scan workers stopped (killed or crashed) while reading this file; "
                    "it is tried again when it changes"
                )
                log.warning("giving up %s: %s", entry.path, reason)
                return EndMessage(error_record(entry, reason, ProblemCode.UNEXPECTED_ERROR))
            return self.scanner.preparer.prepare(entry, emit)

        try:
            self.scanner.embed(entries(), embedding, produce)
        finally:
            self.queue.release(self.name)  # what a stop cut off goes back at once, not when the lease runs out
            if embedding.claim.dropped_count:
                log.warning(
                    "%d files were taken over by another worker after this one's claim ran out (MS_WORKER_LEASE); "
                    "their results here were dropped",
                    embedding.claim.dropped_count,
                )
        return claimed

    # --- the owner's scan ---------------------------------------------------------------------------------------
    def scan_planned(self, entries: list[FileEntry], known, make_embedding, controls) -> QueueCounts:
        """Queue the scan's files, embed them with whoever else works the queue, and return once every one of them
        is written (or the scan was stopped: the files nobody holds are taken off the queue)."""
        run = self.queue.plan(entries, known)
        self.queue.register(self.name, socket.gethostname(), os.getpid(), "scan")
        counted = [0.0]

        def report(progress) -> None:  # the bar and the status show everyone's files
            if time.monotonic() - counted[0] >= COUNT_EVERY_S:
                counted[0] = time.monotonic()
                progress.done = self.queue.counts(run).done
            controls.report(progress)

        with Heartbeat(self.queue, self.name) as heartbeat:
            heartbeat.set("embedding")
            try:
                while True:
                    embedding = make_embedding(WorkClaim(self.queue, self.name), report)
                    self._round(embedding, controls.should_stop)
                    if controls.should_stop():
                        self.queue.drop_unclaimed()
                        break
                    counts = self.queue.counts(run)
                    embedding.progress.done = counts.done
                    if not counts.open:
                        break
                    # Files other workers hold: wait for them (a dead one's lease runs out and they come back).
                    self.waiting = f"waiting for {counts.open} files that other scan workers are embedding"
                    heartbeat.set(self.waiting)
                    controls.report(embedding.progress)
                    time.sleep(IDLE_POLL_S)
                    controls.pause()
            finally:
                self.waiting = None
                heartbeat.set("idle")
        return self.queue.counts(run)

    # --- a worker process ---------------------------------------------------------------------------------------
    def serve(self, make_embedding, stop: threading.Event, once: bool = False) -> int:
        """Work the queue until ``stop`` is set (or, with ``once``, until it has nothing left for anyone); returns
        how many files this worker wrote."""
        self.queue.register(self.name, socket.gethostname(), os.getpid(), "worker")
        written = 0
        with Heartbeat(self.queue, self.name) as heartbeat:
            try:
                while not stop.is_set():
                    if once and not self.queue.unfinished():
                        break
                    # Checked before each round: the owner may change the model while this worker runs.
                    refused = self.scanner.catalog.writes_refused(self.scanner.encoder.describe().identity)
                    if refused:
                        heartbeat.set(refused)
                        stop.wait(IDLE_POLL_S)
                        continue
                    embedding = make_embedding(WorkClaim(self.queue, self.name), None)
                    heartbeat.set("embedding")
                    self.blind = None
                    if self._round(embedding, stop.is_set):
                        written += embedding.progress.done
                        log.info("wrote %d files so far", written)
                    if self.blind:
                        blind = (
                            f"cannot see {self.blind}, which the app's scan planned: mount the library at the same "
                            "path as the app"
                        )
                        log.warning("%s; its files are left to others", blind)
                        heartbeat.set(blind)
                        if once:
                            break
                        stop.wait(BLIND_WAIT_S)
                    elif not embedding.progress.done:
                        heartbeat.set("idle: waiting for a scan's files")
                        stop.wait(IDLE_POLL_S)
            finally:
                heartbeat.set("stopped")
        return written

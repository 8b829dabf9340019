"""One scan of the library: walk → plan → prepare ahead → embed → write, one committed batch at a time.

The stages live in their own modules: ``plan`` (the walk diffed against the database, pure), ``prepare`` (one file
→ its record and frames) and ``pipeline`` (a bounded read-ahead that prepares files in threads, so the model never
waits for the disk and memory stays bounded). This module runs them in order: it batches frames for the model and
writes finished files through the catalog.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum

import numpy as np

from materialsearch.catalog.core import Catalog
from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
from materialsearch.catalog.work_queue import WorkClaim
from materialsearch.encoders import Encoder
from materialsearch.errors import Problem, ProblemCode
from materialsearch.media.thumbnails import Renditions
from materialsearch.ocr.engine import OcrEngine
from materialsearch.scan.pipeline import EndMessage, FrameMessage, ReadAhead
from materialsearch.scan.plan import FAILED_STILL, Plan, diff, match_moves
from materialsearch.scan.prepare import Preparer, entry_hash, is_heavy
from materialsearch.scan.reports import ScanWarning
from materialsearch.scan.walk import FileEntry, walk_library
from materialsearch.scan.worker import QueueWorker

log = logging.getLogger(__name__)

# Save the index at least this often during a long scan, so a restart rarely has to rebuild it.
INDEX_SAVE_INTERVAL_S = 60.0
# During the walk, report progress and honour pause/stop every this many files.
WALK_CHECK_EVERY = 500


class Phase(StrEnum):
    """What a running scan is doing (shown by the status endpoint, the UI and the CLI bar)."""

    STARTING = "starting"
    WALKING = "walking"
    MATCHING = "matching moved files"
    REMOVING = "removing"
    EMBEDDING = "embedding"
    SAVING = "saving"
    DONE = "done"


@dataclasses.dataclass
class ScanStats:
    """What a scan found and did."""

    found: int = 0
    unchanged: int = 0
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    errors: int = 0
    skipped: int = 0
    decoded: int = 0
    unreachable: int = 0  # indexed items kept because their folder or file could not be read this time
    cancelled: bool = False
    seconds: float = 0.0
    warnings: list[ScanWarning] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        text = (
            f"{self.found} files: {self.added} added, {self.updated} updated, {self.moved} moved, "
            f"{self.removed} removed, {self.unchanged} unchanged, {self.errors} errors, {self.skipped} skipped "
            f"in {self.seconds:.1f}s"
        )
        text += f", {self.unreachable} kept while unreadable" if self.unreachable else ""
        text += " (cancelled)" if self.cancelled else ""
        return text + "".join(f"; warning: {w}" for w in self.warnings)


@dataclasses.dataclass
class Progress:
    """Live state of a running scan (read by the status endpoint and the CLI bar)."""

    phase: Phase = Phase.STARTING
    done: int = 0
    total: int = 0
    current: str = ""
    errors: int = 0
    found: int = 0  # files seen by the walk so far


@dataclasses.dataclass
class _Controls:
    """How the scan's owner steers it: stop, pause (blocks while paused) and hear about progress."""

    should_stop: Callable[[], bool]
    pause: Callable[[], None]
    on_progress: Callable[[Progress], None] | None

    def report(self, progress: Progress) -> None:
        if self.on_progress:
            self.on_progress(progress)


class Scanner:
    """Runs scans; holds no state between them besides its collaborators."""

    def __init__(
        self, settings, catalog: Catalog, encoder: Encoder, renditions: Renditions, ocr: OcrEngine | None = None
    ):
        self.settings = settings
        self.catalog = catalog
        self.encoder = encoder
        self.preparer = Preparer(settings, encoder, renditions, ocr)
        self.queue_worker: QueueWorker | None = None  # while a scan works the queue (PostgreSQL)

    @property
    def decode_sizes(self) -> dict[str, int]:
        """How large decoded pictures stay: enough for the model input and the thumbnail."""
        return self.preparer.decode_sizes

    def walk(self, on_unreachable: Callable[[str, Problem], None] | None = None) -> Iterator[FileEntry]:
        """The library's current media files (``on_unreachable`` hears of folders and files it could not read)."""
        s = self.settings
        return walk_library(
            s.library,
            s.image_extensions,
            s.skip_patterns,
            exclude=[s.data_dir],
            video_extensions=s.video_extensions,
            follow_symlinks=s.follow_symlinks,
            on_unreachable=on_unreachable,
        )

    def scan(
        self,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[Progress], None] | None = None,
        pause_point: Callable[[], None] | None = None,
    ) -> ScanStats:
        """Bring the database and index in line with the library.

        ``should_stop`` is polled between files; ``pause_point`` is called where pausing is safe (before the walk,
        every ``WALK_CHECK_EVERY`` files of it, and between committed batches) and blocks for as long as the scan
        is paused. Stopping during the walk changes nothing (an incomplete walk must not sweep anything).
        """
        started = time.monotonic()
        progress = progress or Progress()
        stats = ScanStats()
        controls = _Controls(should_stop, pause_point or (lambda: None), on_progress)
        self.encoder.load()

        controls.pause()
        progress.phase = Phase.WALKING
        known = self.catalog.store.file_states()
        unreachable: dict[str, Problem] = {}
        entries = self._walk(stats, progress, controls, unreachable)
        if not stats.cancelled:
            roots = [os.path.realpath(r) for r in self.settings.library]
            plan = diff(entries, known, roots, os.path.isdir, unreachable)
            stats.unchanged, stats.warnings, stats.unreachable = plan.unchanged, plan.warnings, plan.unreachable
            progress.phase = Phase.MATCHING
            plan = match_moves(plan, entry_hash)
            self._carry_out(plan, stats, progress)
            progress.phase, progress.total, progress.done = Phase.EMBEDDING, len(plan.to_prepare), 0
            controls.report(progress)
            self._embed_planned(plan.to_prepare, known, stats, progress, controls)
            if not stats.cancelled:
                self._index_raws_of_failed_stills(plan.to_prepare, known, stats, progress, controls)
            progress.phase = Phase.SAVING
            self.catalog.checkpoint()
        stats.seconds = time.monotonic() - started
        progress.phase = Phase.DONE
        return stats

    def _walk(
        self, stats: ScanStats, progress: Progress, controls: _Controls, unreachable: dict[str, Problem]
    ) -> list[FileEntry]:
        """The walk's files; stops early (``stats.cancelled``) when asked to during it. What could not be read is
        put in ``unreachable`` (path → reason)."""
        entries: list[FileEntry] = []
        for entry in self.walk(on_unreachable=unreachable.__setitem__):
            entries.append(entry)
            if len(entries) % WALK_CHECK_EVERY == 0:
                progress.found = len(entries)
                controls.report(progress)
                controls.pause()
                if controls.should_stop():
                    stats.cancelled = True
                    break
        stats.found = progress.found = len(entries)
        return entries

    def _carry_out(self, plan: Plan, stats: ScanStats, progress: Progress) -> None:
        """The plan's moves and removals (its files to prepare go to the pipeline)."""
        for move in plan.moved:
            entry = move.entry
            self.catalog.move(move.item_id, entry.path, entry.size, entry.mtime_ns, entry.still)
            log.info("moved: %s -> %s", move.old_path, entry.path)
        stats.moved = len(plan.moved)
        if plan.vanished:
            progress.phase = Phase.REMOVING
            self.catalog.remove(state.id for state in plan.vanished.values())
            stats.removed = len(plan.vanished)

    def _index_raws_of_failed_stills(
        self, prepared: list[FileEntry], known, stats: ScanStats, progress: Progress, controls: _Controls
    ) -> None:
        """RAWs just folded into a same-name photo that then failed to decode are indexed on their own (from their
        preview), in a second round; their first outcome is taken back from the counts (later scans unpair them in
        the plan: ``unpair_from_failed_stills``)."""
        paired = [entry for entry in prepared if entry.kind == Kind.IMAGE and entry.still is not None]
        if not paired:
            return
        states = self.catalog.store.file_states()
        orphans = [
            dataclasses.replace(entry, still=None)
            for entry in paired
            if (state := states.get(entry.path)) is not None
            and state.status == ItemStatus.RAW
            and (still := states.get(entry.still)) is not None
            and still.status in FAILED_STILL
        ]
        if not orphans:
            return
        for entry in orphans:
            if entry.path in known:
                stats.updated -= 1
            else:
                stats.added -= 1
            log.info("indexing %s on its own: its same-name photo cannot be read", entry.path)
        stats.decoded -= len(orphans)
        progress.total += len(orphans)
        self.embed(orphans, _Embedding(self.catalog, self.encoder, known, stats, progress, controls))

    def _embed_planned(
        self, jobs: list[FileEntry], known, stats: ScanStats, progress: Progress, controls: _Controls
    ) -> None:
        """Embed the plan's files: here, or with the catalog in PostgreSQL through the work queue, which scan
        workers on other hosts work too (the counts are then everyone's)."""
        queue = self.catalog.work_queue(self.settings.worker_lease)
        if queue is None:
            self.embed(jobs, _Embedding(self.catalog, self.encoder, known, stats, progress, controls))
            return
        self.queue_worker = QueueWorker(self, queue, "scan")

        def make_embedding(claim: WorkClaim, report) -> _Embedding:
            steering = dataclasses.replace(controls, on_progress=report)
            return _Embedding(self.catalog, self.encoder, set(), stats, progress, steering, claim)

        try:
            counts = self.queue_worker.scan_planned(jobs, known, make_embedding, controls)
        finally:
            self.queue_worker = None
        stats.added, stats.updated = counts.outcomes.get("added", 0), counts.outcomes.get("updated", 0)
        stats.errors = progress.errors = counts.outcomes.get("error", 0)
        stats.skipped = counts.outcomes.get("skipped", 0)
        if stats.cancelled or controls.should_stop():
            stats.cancelled = True
        else:
            progress.done = counts.done

    def queue_embedding(
        self, claim: WorkClaim, report: Callable[[Progress], None] | None, should_stop: Callable[[], bool]
    ) -> _Embedding:
        """A worker process's model stage for one round of claims: its own counts, no pause (the owner's scan
        window is the owner's)."""
        controls = _Controls(should_stop, lambda: None, report)
        progress = Progress(phase=Phase.EMBEDDING)
        return _Embedding(self.catalog, self.encoder, set(), ScanStats(), progress, controls, claim)

    @property
    def ocr_prelook(self) -> str | None:
        """Where the OCR pre-look runs and why (None while OCR is off or before ``auto`` has measured)."""
        return self.preparer.prelook.explain() if self.preparer.ocr is not None else None

    @property
    def waiting(self) -> str | None:
        """Why the running scan waits for others (scan workers still embedding its files), or None."""
        worker = self.queue_worker
        return worker.waiting if worker is not None else None

    def embed(self, jobs: Iterable[FileEntry], embedding: _Embedding, produce=None) -> None:
        """Prepare ``jobs`` ahead of the model, as far ahead as memory allows, and embed and write them
        (``produce``: how a file is prepared, the preparer's ``prepare`` unless given)."""
        settings = self.settings
        with ReadAhead(
            jobs,
            produce or self.preparer.prepare,
            threads=settings.decode_threads,
            look_ahead=settings.batch_size * 2 + settings.decode_threads,
            frame_buffer=settings.batch_size * 2,
            stall_timeout=settings.decode_timeout,
            on_stall=self.preparer.stalled,
            heavy=is_heavy,
            heavy_decodes=settings.max_video_decodes,
        ) as ahead:
            embedding.on_encoded = self.preparer.prelook.model_ran  # the model's pace decides where the OCR looks
            embedding.run(ahead, settings.batch_size)
        # Work already decoded is kept, also when cancelled; a video cut off mid-way is rescanned next time.
        embedding.finish()


class _File:
    """A file whose messages the model loop is taking: its vectors so far, and its record once it has ended."""

    def __init__(self, entry: FileEntry):
        self.entry = entry
        self.record: ItemRecord | None = None
        self.vectors: list[tuple[int | None, np.ndarray]] = []
        self.in_batch = 0

    @property
    def complete(self) -> bool:
        """All its frames are read and embedded."""
        return self.record is not None and self.in_batch == 0

    def finished_record(self) -> ItemRecord:
        """Its record with its vectors in time order; a file that failed part-way (a video after some frames)
        keeps none of them."""
        record = self.record
        kept = self.vectors if record.status == ItemStatus.OK else []
        record.vectors = sorted(kept, key=lambda pair: -1 if pair[0] is None else pair[0])
        if record.status == ItemStatus.OK and not record.vectors:
            record.status, record.error = ItemStatus.ERROR, "nothing could be embedded"
            record.error_code = ProblemCode.NOTHING_EMBEDDED
        return record


class _Embedding:
    """One scan's model stage: takes prepared files in order, embeds their frames in batches, and writes each file
    (through the catalog, a batch per commit) once all of it is embedded."""

    def __init__(
        self,
        catalog: Catalog,
        encoder: Encoder,
        known,
        stats: ScanStats,
        progress,
        controls: _Controls,
        claim: WorkClaim | None = None,
    ):
        self.catalog, self.encoder, self.known, self.claim = catalog, encoder, known, claim
        self.stats, self.progress, self.controls = stats, progress, controls
        self.frames: list[tuple[_File, FrameMessage]] = []  # waiting for the model
        self.waiting: list[_File] = []  # read to their end, vectors still in the batch or not yet written
        self.current: _File | None = None
        self.on_encoded: Callable[[float, int], None] | None = None  # hears each batch's wall seconds, size

    def run(self, ahead: ReadAhead, batch_size: int) -> None:
        """Take every file's messages until the pipeline is exhausted or the scan is stopped."""
        last_save = time.monotonic()
        while not ahead.exhausted:
            if not self.frames:  # between batches: everything so far is committed, a pause can last hours
                self.controls.pause()
            if self.controls.should_stop():
                self.stats.cancelled = True
                return
            self._take(*ahead.next())
            if len(self.frames) >= batch_size or (ahead.exhausted and self.frames):
                self._encode()
            if not self.frames or len(self.waiting) >= batch_size:
                self._write_complete()
            if time.monotonic() - last_save > INDEX_SAVE_INTERVAL_S:
                self.catalog.checkpoint()
                last_save = time.monotonic()

    def finish(self) -> None:
        """Embed and write what is left."""
        self._encode()
        self._write_complete()

    def _take(self, entry: FileEntry, message: FrameMessage | EndMessage) -> None:
        if self.current is None or self.current.entry is not entry:
            self.current = _File(entry)
        if isinstance(message, FrameMessage):
            self._add(self.current, message)
            return
        # The file's end: a photo's one frame joins this batch, so the photo is written with it.
        if message.last_frame is not None:
            self._add(self.current, message.last_frame)
        self.current.record = message.record
        self.waiting.append(self.current)
        self.current = None
        self.stats.decoded += 1
        self.progress.current = entry.path
        if message.record.status == ItemStatus.ERROR:
            log.warning("skipping %s: %s", entry.path, message.record.error)

    def _add(self, file: _File, frame: FrameMessage) -> None:
        file.in_batch += 1
        self.frames.append((file, frame))

    def _encode(self) -> None:
        if not self.frames:
            return
        started = time.perf_counter()
        vectors = self.encoder.encode_prepared([frame.prepared for _file, frame in self.frames])
        if self.on_encoded is not None:
            self.on_encoded(time.perf_counter() - started, len(self.frames))
        for (file, frame), vector in zip(self.frames, vectors, strict=True):
            file.vectors.append((frame.time_ms, vector))
            file.in_batch -= 1
        self.frames.clear()

    def _write_complete(self) -> None:
        """Commit the wholly embedded files as one batch and count them."""
        done = [file for file in self.waiting if file.complete]
        if not done:
            return
        self.waiting = [file for file in self.waiting if not file.complete]
        records = [file.finished_record() for file in done]
        self.catalog.apply(records, self.claim)
        if self.claim is not None and self.claim.dropped:  # taken over by another worker: not written here
            dropped = set(self.claim.dropped)
            records = [record for record in records if record.path not in dropped]
        for record in records:
            if record.status == ItemStatus.ERROR:
                self.stats.errors += 1
                self.progress.errors += 1
            elif record.status == ItemStatus.SKIPPED:
                self.stats.skipped += 1
            elif record.path in self.known:
                self.stats.updated += 1
            else:
                self.stats.added += 1
        self.progress.done += len(records)
        self.controls.report(self.progress)

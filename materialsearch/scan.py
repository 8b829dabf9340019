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
from collections.abc import Callable, Sequence
from enum import StrEnum

import numpy as np

from . import prepare
from .catalog import Catalog
from .embed import Encoder
from .pipeline import EndMessage, FrameMessage, ReadAhead
from .plan import diff, match_moves
from .prepare import Preparer
from .records import FileState, ItemRecord, Status
from .thumbnails import Renditions
from .walk import FileEntry, walk_library

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
    cancelled: bool = False
    seconds: float = 0.0
    warnings: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        text = (
            f"{self.found} files: {self.added} added, {self.updated} updated, {self.moved} moved, "
            f"{self.removed} removed, {self.unchanged} unchanged, {self.errors} errors, {self.skipped} skipped "
            f"in {self.seconds:.1f}s"
        )
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

    def __init__(self, settings, catalog: Catalog, encoder: Encoder, renditions: Renditions):
        self.settings = settings
        self.catalog = catalog
        self.encoder = encoder
        self.preparer = Preparer(settings, encoder, renditions)

    @property
    def decode_sizes(self) -> dict[str, int]:
        """How large decoded pictures stay: enough for the model input and the thumbnail."""
        return self.preparer.decode_sizes

    def walk(self):
        """The library's current media files."""
        s = self.settings
        return walk_library(
            s.library,
            s.image_extensions,
            s.skip_patterns,
            exclude=[s.data_dir],
            video_extensions=s.video_extensions,
            follow_symlinks=s.follow_symlinks,
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
        entries = self._walk(stats, progress, controls)
        if not stats.cancelled:
            roots = [os.path.realpath(r) for r in self.settings.library]
            plan = diff(entries, known, roots, os.path.isdir)
            stats.unchanged, stats.warnings = plan.unchanged, plan.warnings
            progress.phase = Phase.MATCHING
            plan = match_moves(plan, prepare.entry_hash)
            for move in plan.moved:
                entry = move.entry
                self.catalog.move(move.item_id, entry.path, entry.size, entry.mtime_ns, entry.still)
                log.info("moved: %s -> %s", move.old_path, entry.path)
            stats.moved = len(plan.moved)
            if plan.vanished:
                progress.phase = Phase.REMOVING
                self.catalog.remove(state.id for state in plan.vanished.values())
                stats.removed = len(plan.vanished)
            progress.phase, progress.total, progress.done = Phase.EMBEDDING, len(plan.to_prepare), 0
            controls.report(progress)
            self._embed_all(plan.to_prepare, known, stats, progress, controls)
            progress.phase = Phase.SAVING
            self.catalog.checkpoint()
        stats.seconds = time.monotonic() - started
        progress.phase = Phase.DONE
        return stats

    def _walk(self, stats: ScanStats, progress: Progress, controls: _Controls) -> list[FileEntry]:
        """The walk's files; stops early (``stats.cancelled``) when asked to during it."""
        entries: list[FileEntry] = []
        for entry in self.walk():
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

    def _embed_all(self, jobs, known, stats: ScanStats, progress: Progress, controls: _Controls) -> None:
        """Prepare ``jobs`` ahead, embed their frames in batches and write each file once all of it is embedded."""
        settings = self.settings
        batch_size = settings.batch_size
        batches = _Batches(self.encoder)
        current: _File | None = None
        last_save = time.monotonic()
        with ReadAhead(
            jobs,
            self.preparer.prepare,
            threads=settings.decode_threads,
            look_ahead=batch_size * 2 + settings.decode_threads,
            frame_buffer=batch_size * 2,
        ) as ahead:
            while not ahead.exhausted:
                if not batches.frames:  # between batches: everything so far is committed, a pause can last hours
                    controls.pause()
                if controls.should_stop():
                    stats.cancelled = True
                    break
                entry, message = ahead.next()
                if current is None or current.entry is not entry:
                    current = _File(entry)
                if isinstance(message, FrameMessage):
                    batches.add(current, message)
                else:
                    batches.end(current, message)
                    current = None
                    stats.decoded += 1
                    progress.current = entry.path
                    if message.record.status == Status.ERROR:
                        log.warning("skipping %s: %s", entry.path, message.record.error)
                if len(batches.frames) >= batch_size or (ahead.exhausted and batches.frames):
                    batches.encode()
                if not batches.frames or len(batches.waiting) >= batch_size:
                    self._write(batches.take_complete(), known, stats, progress, controls)
                if time.monotonic() - last_save > INDEX_SAVE_INTERVAL_S:
                    self.catalog.checkpoint()
                    last_save = time.monotonic()
        # Work already decoded is kept, also when cancelled; a video cut off mid-way is rescanned next time.
        batches.encode()
        self._write(batches.take_complete(), known, stats, progress, controls)

    def _write(
        self, records: Sequence[ItemRecord], known: dict[str, FileState], stats, progress, controls: _Controls
    ) -> None:
        """Commit finished files as one batch and count them."""
        if not records:
            return
        self.catalog.apply(records)
        for record in records:
            if record.status == Status.ERROR:
                stats.errors += 1
                progress.errors += 1
            elif record.status == Status.SKIPPED:
                stats.skipped += 1
            elif record.path in known:
                stats.updated += 1
            else:
                stats.added += 1
        progress.done += len(records)
        controls.report(progress)


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
        kept = self.vectors if record.status == Status.OK else []
        record.vectors = sorted(kept, key=lambda pair: -1 if pair[0] is None else pair[0])
        if record.status == Status.OK and not record.vectors:
            record.status, record.error = Status.ERROR, "nothing could be embedded"
        return record


class _Batches:
    """Frames waiting for the model, and files read to their end waiting for their last vectors to be written."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.frames: list[tuple[_File, FrameMessage]] = []
        self.waiting: list[_File] = []

    def add(self, file: _File, frame: FrameMessage) -> None:
        file.in_batch += 1
        self.frames.append((file, frame))

    def end(self, file: _File, message: EndMessage) -> None:
        """The file's last message: a photo's one frame joins this batch, so the photo is written with it."""
        if message.last_frame is not None:
            self.add(file, message.last_frame)
        file.record = message.record
        self.waiting.append(file)

    def encode(self) -> None:
        """Run the model on the frames gathered so far."""
        if not self.frames:
            return
        vectors = self.encoder.encode_images([frame.pixels for _file, frame in self.frames])
        for (file, frame), vector in zip(self.frames, vectors, strict=True):
            file.vectors.append((frame.time_ms, vector))
            file.in_batch -= 1
        self.frames.clear()

    def take_complete(self) -> list[ItemRecord]:
        """The records of the files that are wholly embedded, taken out of the waiting list."""
        done = [file for file in self.waiting if file.complete]
        self.waiting = [file for file in self.waiting if not file.complete]
        return [file.finished_record() for file in done]

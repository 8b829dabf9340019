"""One scan of the library: walk → plan (mark-and-sweep on size/mtime) → decode ahead → embed → store → index.

Decoding runs in a bounded thread pool that stays ahead of the model, so the model never waits for the disk
and memory stays bounded. Work is committed one batch at a time.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from .decode import DecodeError, decode_image
from .embed import Encoder
from .index import VectorIndex
from .store import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED, FileState, ItemRecord, Store
from .thumbnails import Renditions, rendition_key
from .walk import FileEntry, walk_library

log = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20
# Save the index at least this often during a long scan, so a restart rarely has to rebuild it.
INDEX_SAVE_INTERVAL_S = 60.0


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

    phase: str = "starting"
    done: int = 0
    total: int = 0
    current: str = ""
    errors: int = 0


def file_hash(path: str) -> str:
    """blake2b of the whole file."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Scanner:
    """Runs scans; holds no state between them besides its collaborators."""

    def __init__(self, settings, store: Store, index: VectorIndex, encoder: Encoder, renditions: Renditions):
        self.settings = settings
        self.store = store
        self.index = index
        self.encoder = encoder
        self.renditions = renditions

    @property
    def decode_sizes(self) -> dict[str, int]:
        """How large decoded pictures stay: enough for the model input and the thumbnail."""
        return decode_sizes(self.settings, self.encoder)

    # --- planning ---------------------------------------------------------------------------------------------
    def walk(self) -> Iterator[FileEntry]:
        """The library's current media files."""
        s = self.settings
        return walk_library(s.library, s.image_extensions, s.skip_patterns, exclude=[s.data_dir])

    def scan(
        self,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> ScanStats:
        """Bring the database and index in line with the library."""
        started = time.monotonic()
        progress = progress or Progress()
        stats = ScanStats()
        self.encoder.load()

        progress.phase = "walking"
        known = self.store.file_states()
        seen: set[str] = set()
        to_embed: list[FileEntry] = []
        new_entries: list[FileEntry] = []
        for entry in self.walk():
            stats.found += 1
            seen.add(entry.path)
            state = known.get(entry.path)
            if state is None:
                new_entries.append(entry)
            elif state.size == entry.size and state.mtime_ns == entry.mtime_ns and state.status != "pending":
                stats.unchanged += 1
            else:
                to_embed.append(entry)
            if stats.found % 1000 == 0:
                progress.total = stats.found
                if on_progress:
                    on_progress(progress)
        vanished = self._vanished(known, seen, stats)

        progress.phase = "matching moved files"
        new_entries = self._match_moves(new_entries, vanished, stats)
        if vanished:
            progress.phase = "removing"
            removed_vectors = self.store.delete_items(state.id for state in vanished.values())
            self.index.remove(removed_vectors)
            stats.removed = len(vanished)

        jobs = to_embed + new_entries
        progress.phase = "embedding"
        progress.total = len(jobs)
        progress.done = 0
        if on_progress:
            on_progress(progress)
        self._embed_all(jobs, known, stats, progress, should_stop, on_progress)
        self.index.save()
        stats.seconds = time.monotonic() - started
        progress.phase = "done"
        return stats

    def _vanished(self, known: dict[str, FileState], seen: set[str], stats: ScanStats) -> dict[str, FileState]:
        """Known paths that are gone — except under a library folder that looks unmounted.

        A missing library folder, or one that yields no file at all while the database holds files from it, is
        what an unmounted NAS share looks like: sweeping it would throw away the whole index, so it is kept
        (with a warning) until the folder is back. Paths outside every configured folder are swept.
        """
        roots = [os.path.realpath(r) for r in self.settings.library]
        found_under = dict.fromkeys(roots, False)
        for path in seen:
            root = _root_of(path, roots)
            if root is not None:
                found_under[root] = True
        held = {
            root
            for root in roots
            if not os.path.isdir(root) or (not found_under[root] and any(_root_of(p, [root]) for p in known))
        }
        for root in held:
            message = f"library folder {root} is missing or empty; keeping its indexed items until it is back"
            log.warning(message)
            stats.warnings.append(message)
        return {path: state for path, state in known.items() if path not in seen and _root_of(path, roots) not in held}

    def _match_moves(
        self, new_entries: list[FileEntry], vanished: dict[str, FileState], stats: ScanStats
    ) -> list[FileEntry]:
        """Re-attach vanished items to new paths with identical content; hashes only size-matched candidates."""
        by_size: dict[int, list[tuple[str, FileState]]] = collections.defaultdict(list)
        for path, state in vanished.items():
            if state.content_hash:
                by_size[state.size].append((path, state))
        if not by_size:
            return new_entries
        remaining = []
        for entry in new_entries:
            candidates = by_size.get(entry.size)
            if not candidates:
                remaining.append(entry)
                continue
            try:
                digest = file_hash(entry.path)
            except OSError:
                remaining.append(entry)
                continue
            match = next((c for c in candidates if c[1].content_hash == digest), None)
            if match is None:
                remaining.append(entry)
                continue
            old_path, state = match
            candidates.remove(match)
            del vanished[old_path]
            self.store.move_item(state.id, entry.path, entry.size, entry.mtime_ns)
            stats.moved += 1
            log.info("moved: %s -> %s", old_path, entry.path)
        return remaining

    # --- embedding --------------------------------------------------------------------------------------------
    def _embed_all(self, jobs, known, stats, progress, should_stop, on_progress) -> None:
        settings = self.settings
        batch_size = settings.batch_size
        look_ahead = batch_size * 2 + settings.decode_threads
        pending: collections.deque[tuple[FileEntry, Future]] = collections.deque()
        queue = iter(jobs)
        batch: list[tuple[ItemRecord, np.ndarray | None]] = []
        last_save = time.monotonic()

        with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:

            def refill() -> None:
                while len(pending) < look_ahead:
                    entry = next(queue, None)
                    if entry is None:
                        return
                    pending.append((entry, pool.submit(self._prepare, entry)))

            refill()
            try:
                while pending:
                    if should_stop():
                        stats.cancelled = True
                        break
                    entry, future = pending.popleft()
                    refill()
                    record, pixels = future.result()
                    stats.decoded += 1
                    progress.current = entry.path
                    batch.append((record, pixels))
                    if record.status == STATUS_ERROR:
                        log.warning("skipping %s: %s", entry.path, record.error)
                    if len(batch) >= batch_size or not pending:
                        self._flush(batch, known, stats, progress)
                        batch = []
                        if on_progress:
                            on_progress(progress)
                        if time.monotonic() - last_save > INDEX_SAVE_INTERVAL_S:
                            self.index.save()
                            last_save = time.monotonic()
            finally:
                for _entry, future in pending:
                    future.cancel()
        if batch:  # work already decoded is kept, also when cancelled
            self._flush(batch, known, stats, progress)

    def _prepare(self, entry: FileEntry) -> tuple[ItemRecord, np.ndarray | None]:
        """Runs in a decode thread: read once, hash, decode, thumbnail, preprocess."""
        record = ItemRecord(entry.path, entry.kind, entry.size, entry.mtime_ns, STATUS_OK)
        settings = self.settings
        try:
            with open(entry.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            record.status, record.error = STATUS_ERROR, f"cannot read file ({exc.strerror or exc})"
            return record, None
        record.content_hash = hashlib.blake2b(data, digest_size=20).hexdigest()
        try:
            decoded = decode_image(data, max_pixels=settings.max_image_pixels, **self.decode_sizes)
        except DecodeError as exc:
            record.status, record.error = STATUS_ERROR, str(exc)
            return record, None
        del data
        record.width, record.height, record.taken_at = decoded.width, decoded.height, decoded.taken_at
        if min(decoded.width, decoded.height) < settings.min_image_size:
            record.status = STATUS_SKIPPED
            record.error = (
                f"too small ({decoded.width}x{decoded.height}; MS_MIN_IMAGE_SIZE is {settings.min_image_size})"
            )
            return record, None
        if record.taken_at is None:
            record.taken_at = _mtime_datetime(entry.mtime_ns)
        key = rendition_key(entry.path, entry.size, entry.mtime_ns)
        try:
            self.renditions.write_thumbnail(key, decoded)
            record.thumbnail = key
        except OSError as exc:
            log.warning("cannot write thumbnail for %s: %s", entry.path, exc)
        pixels = self.encoder.preprocess(decoded.image)
        return record, pixels

    def _flush(self, batch, known, stats: ScanStats, progress: Progress) -> None:
        to_encode = [(i, pixels) for i, (_record, pixels) in enumerate(batch) if pixels is not None]
        if to_encode:
            vectors = self.encoder.encode_images([pixels for _i, pixels in to_encode])
            for (i, _pixels), vector in zip(to_encode, vectors, strict=True):
                batch[i][0].vector = vector
        records = [record for record, _pixels in batch]
        new_ids, new_vectors, replaced = self.store.write_batch(records)
        self.index.remove(replaced)
        self.index.add(new_ids, new_vectors)
        for record in records:
            if record.status == STATUS_ERROR:
                stats.errors += 1
                progress.errors += 1
            elif record.status == STATUS_SKIPPED:
                stats.skipped += 1
            elif record.path in known:
                stats.updated += 1
            else:
                stats.added += 1
        progress.done += len(batch)


def _root_of(path: str, roots: list[str]) -> str | None:
    """The library folder ``path`` lies in, or None."""
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None


def decode_sizes(settings, encoder: Encoder) -> dict[str, int]:
    """``decode_image`` size arguments: the model squashes to its square input, the thumbnail needs its long side;
    HEIC/HEIF from their embedded thumbnail when MS_HEIC_THUMBNAIL allows."""
    return {
        "min_side": encoder.input_resolution,
        "min_long_side": settings.thumbnail_size,
        "heif_thumbnail": settings.heic_thumbnail,
    }


def _mtime_datetime(mtime_ns: int):
    import datetime as dt

    return dt.datetime.fromtimestamp(mtime_ns / 1e9).replace(microsecond=0)

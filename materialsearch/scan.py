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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .catalog import Catalog
from .decode import DecodeError, decode_image
from .encoders import Encoder
from .motion import LIVE_PHOTO_MAX_UNVERIFIED_MS, embedded_motion_offset, still_content_identifier
from .records import FileState, ItemRecord, Kind, Status
from .thumbnails import Renditions, rendition_key
from .video import NotAVideo, VideoError, probe, sample_frames
from .walk import FileEntry, walk_library

log = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20
# Videos can be gigabytes: they are fingerprinted (for move detection) by their size, head and tail.
VIDEO_HASH_SPAN = 1 << 20
# A video poster should not be a black fade-in: skip up to this many dark leading samples.
POSTER_MAX_SKIPPED = 3
POSTER_MIN_BRIGHTNESS = 24
# Save the index at least this often during a long scan, so a restart rarely has to rebuild it.
INDEX_SAVE_INTERVAL_S = 60.0
# During the walk, report progress and honour pause/stop every this many files.
WALK_CHECK_EVERY = 500


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
    found: int = 0  # files seen by the walk so far


def file_hash(path: str, kind: str = "image") -> str:
    """blake2b of the whole file; for videos, of its size, first and last MiB (reading GBs would be too slow)."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        if kind == Kind.VIDEO:
            size = os.fstat(handle.fileno()).st_size
            digest.update(f"video:{size}:".encode())
            digest.update(handle.read(VIDEO_HASH_SPAN))
            if size > 2 * VIDEO_HASH_SPAN:
                handle.seek(size - VIDEO_HASH_SPAN)
            digest.update(handle.read(VIDEO_HASH_SPAN))
            return digest.hexdigest()
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Stopped(Exception):
    """The scan stopped while a decode thread was waiting to hand over a frame."""


# The last message about a file (after its frames); a photo's single frame message says it is the last instead.
_END = object()


class _Work:
    """One file being prepared in a decode thread; the model loop takes its frames in order.

    The frame queue is bounded, so a long video never holds more than a few decoded frames in memory.
    """

    def __init__(self, entry: FileEntry, frame_buffer: int):
        self.entry = entry
        self.frames: queue.Queue = queue.Queue(maxsize=frame_buffer)
        self.record: ItemRecord | None = None
        self.vectors: list[tuple[int | None, np.ndarray]] = []
        self.in_batch = 0
        self.ended = False

    @property
    def complete(self) -> bool:
        """All frames are read and embedded."""
        return self.ended and self.in_batch == 0


class Scanner:
    """Runs scans; holds no state between them besides its collaborators."""

    def __init__(self, settings, catalog: Catalog, encoder: Encoder, renditions: Renditions):
        self.settings = settings
        self.catalog = catalog
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
        pause = pause_point or (lambda: None)
        self.encoder.load()

        pause()
        progress.phase = "walking"
        known = self.catalog.store.file_states()
        seen: set[str] = set()
        to_embed: list[FileEntry] = []
        new_entries: list[FileEntry] = []
        for entry in self.walk():
            stats.found += 1
            seen.add(entry.path)
            state = known.get(entry.path)
            if state is None:
                new_entries.append(entry)
            elif (
                state.size == entry.size
                and state.mtime_ns == entry.mtime_ns
                and state.status != "pending"
                and (entry.kind != Kind.VIDEO or state.pair_path == entry.still)
            ):
                stats.unchanged += 1
            else:
                to_embed.append(entry)
            if stats.found % WALK_CHECK_EVERY == 0:
                progress.found = stats.found
                if on_progress:
                    on_progress(progress)
                pause()
                if should_stop():
                    stats.cancelled = True
                    break
        progress.found = stats.found
        if stats.cancelled:
            stats.seconds = time.monotonic() - started
            progress.phase = "done"
            return stats
        vanished = self._vanished(known, seen, stats)

        progress.phase = "matching moved files"
        new_entries = self._match_moves(new_entries, vanished, stats)
        if vanished:
            progress.phase = "removing"
            self.catalog.remove(state.id for state in vanished.values())
            stats.removed = len(vanished)

        jobs = to_embed + new_entries
        progress.phase = "embedding"
        progress.total = len(jobs)
        progress.done = 0
        if on_progress:
            on_progress(progress)
        self._embed_all(jobs, known, stats, progress, should_stop, on_progress, pause)
        progress.phase = "saving"
        self.catalog.checkpoint()
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
                digest = file_hash(entry.path, entry.kind)
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
            if entry.kind == Kind.VIDEO and state.pair_path is not None and entry.still is None:
                remaining.append(entry)  # a Live Photo movie moved away from its still: rescan it as a video
                continue
            self.catalog.move(state.id, entry.path, entry.size, entry.mtime_ns, entry.still)
            stats.moved += 1
            log.info("moved: %s -> %s", old_path, entry.path)
        return remaining

    # --- embedding --------------------------------------------------------------------------------------------
    def _embed_all(self, jobs, known, stats, progress, should_stop, on_progress, pause) -> None:
        settings = self.settings
        batch_size = settings.batch_size
        look_ahead = batch_size * 2 + settings.decode_threads
        pending: collections.deque[_Work] = collections.deque()
        queue_of_entries = iter(jobs)
        stop = threading.Event()
        batch: list[tuple[_Work, int | None, np.ndarray]] = []
        waiting: list[_Work] = []  # read to the end, vectors still in the batch or not yet written
        last_save = time.monotonic()

        def encode_batch() -> None:
            if not batch:
                return
            vectors = self.encoder.encode_images([pixels for _work, _time, pixels in batch])
            for (work, time_ms, _pixels), vector in zip(batch, vectors, strict=True):
                work.vectors.append((time_ms, vector))
                work.in_batch -= 1
            batch.clear()

        def write_complete() -> None:
            nonlocal waiting
            done = [work for work in waiting if work.complete]
            if not done:
                return
            waiting = [work for work in waiting if not work.complete]
            self._flush(done, known, stats, progress)
            if on_progress:
                on_progress(progress)

        with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:

            def refill() -> None:
                while len(pending) < look_ahead:
                    entry = next(queue_of_entries, None)
                    if entry is None:
                        return
                    work = _Work(entry, frame_buffer=batch_size * 2)
                    pool.submit(self._produce, work, stop)
                    pending.append(work)

            refill()
            try:
                while pending:
                    if not batch:  # between batches: everything so far is committed, a pause can last hours
                        pause()
                    if should_stop():
                        stats.cancelled = True
                        break
                    work = pending[0]
                    message = work.frames.get()
                    if isinstance(message, BaseException):
                        raise message
                    if message is not _END:
                        time_ms, pixels, last = message
                        work.in_batch += 1
                        batch.append((work, time_ms, pixels))
                    if message is _END or last:
                        pending.popleft()
                        refill()
                        work.ended = True
                        stats.decoded += 1
                        progress.current = work.entry.path
                        waiting.append(work)
                        if work.record.status == Status.ERROR:
                            log.warning("skipping %s: %s", work.entry.path, work.record.error)
                    if len(batch) >= batch_size or (not pending and batch):
                        encode_batch()
                    if len(batch) == 0 or len(waiting) >= batch_size:
                        write_complete()
                    if time.monotonic() - last_save > INDEX_SAVE_INTERVAL_S:
                        self.catalog.checkpoint()
                        last_save = time.monotonic()
            finally:
                stop.set()
        # Work already decoded is kept, also when cancelled; a video cut off mid-way is rescanned next time.
        encode_batch()
        write_complete()

    def _produce(self, work: _Work, stop: threading.Event) -> None:
        """Runs in a decode thread: prepare one file and hand its frames to the model loop."""

        def emit(message) -> None:
            while True:
                if stop.is_set():
                    raise _Stopped
                try:
                    work.frames.put(message, timeout=0.2)
                    return
                except queue.Full:
                    continue

        if stop.is_set():
            return  # the scan ended before this file's turn came
        try:
            try:
                if work.entry.kind == Kind.VIDEO:
                    work.record = self._prepare_video(work.entry, emit)
                else:
                    record, pixels = self._prepare(work.entry)
                    work.record = record
                    # A photo's one frame is also its end: its item can be written with the batch that embeds it.
                    emit(_END if pixels is None else (None, pixels, True))
                    return
            except _Stopped:
                raise
            except Exception as exc:
                # Whatever a decoder, probe, parser or thumbnailer raises costs this one file, never the scan:
                # the file is recorded with the reason and retried when it changes.
                log.exception("unexpected error preparing %s", work.entry.path)
                work.record = _failed_record(work.entry, exc)
            emit(_END)
        except _Stopped:
            return
        # Not about one file (MemoryError, interpreter shutdown): hand it to the scan loop, which re-raises it
        # (else the loop would wait forever for this file's frames).
        except BaseException as exc:  # noqa: BLE001
            try:
                emit(exc)
            except _Stopped:
                raise exc from None

    def _prepare(self, entry: FileEntry) -> tuple[ItemRecord, np.ndarray | None]:
        """Read once, hash, decode, thumbnail, preprocess a photo."""
        record = ItemRecord(entry.path, entry.kind, entry.size, entry.mtime_ns, Status.OK)
        settings = self.settings
        try:
            with open(entry.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            record.status, record.error = Status.ERROR, f"cannot read file ({exc.strerror or exc})"
            return record, None
        record.content_hash = hashlib.blake2b(data, digest_size=20).hexdigest()
        try:
            decoded = decode_image(data, max_pixels=settings.max_image_pixels, **self.decode_sizes)
        except DecodeError as exc:
            record.status, record.error = Status.ERROR, str(exc)
            return record, None
        record.motion_offset = _playable_motion_offset(data)
        del data
        record.width, record.height, record.taken_at = decoded.width, decoded.height, decoded.taken_at
        if min(decoded.width, decoded.height) < settings.min_image_size:
            record.status = Status.SKIPPED
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

    def _prepare_video(self, entry: FileEntry, emit: Callable) -> ItemRecord:
        """Probe a video, decide whether it is a Live Photo's motion, else sample, thumbnail and emit its frames."""
        record = ItemRecord(entry.path, Kind.VIDEO, entry.size, entry.mtime_ns, Status.OK, pair_path=entry.still)
        try:
            record.content_hash = file_hash(entry.path, Kind.VIDEO)
            info = probe(entry.path)
        except OSError as exc:
            record.status, record.error = Status.ERROR, f"cannot read file ({exc.strerror or exc})"
            return record
        except NotAVideo as exc:
            record.status, record.error = Status.SKIPPED, str(exc)
            return record
        except VideoError as exc:
            record.status, record.error = Status.ERROR, str(exc)
            return record
        record.width, record.height = info.width, info.height
        record.duration_ms, record.playable = info.duration_ms, info.browser_playable
        record.taken_at = info.created_at or _mtime_datetime(entry.mtime_ns)
        if entry.still is not None and self._is_live_motion(info, entry.still):
            record.status = Status.MOTION
            return record
        key = rendition_key(entry.path, entry.size, entry.mtime_ns)
        interval_ms = max(1, round(self.settings.frame_interval * 1000))
        poster = None
        skipped_dark = 0
        try:
            sizes = self.decode_sizes
            frames = sample_frames(entry.path, interval_ms, sizes["min_side"], sizes["min_long_side"])
            for frame in frames:
                if poster is None or (skipped_dark < POSTER_MAX_SKIPPED and _is_dark(poster)):
                    if poster is not None:
                        skipped_dark += 1
                    poster = frame.image
                emit((frame.time_ms, self.encoder.preprocess(frame.image), False))
        except VideoError as exc:
            record.status, record.error = Status.ERROR, str(exc)
            return record
        except OSError as exc:
            record.status, record.error = Status.ERROR, f"cannot read file ({exc.strerror or exc})"
            return record
        try:
            self.renditions.write_image_thumbnail(self.renditions.thumbnail_path(key), poster)
            record.thumbnail = key
        except OSError as exc:
            log.warning("cannot write thumbnail for %s: %s", entry.path, exc)
        return record

    @staticmethod
    def _is_live_motion(info, still_path: str) -> bool:
        """A same-name video is the still's Live Photo motion if their Apple content identifiers match, or — when
        either has none — if it is as short as Live Photo movies are."""
        still_identifier = None
        if info.content_identifier:
            try:
                with open(still_path, "rb") as handle:
                    still_identifier = still_content_identifier(handle.read())
            except OSError:
                still_identifier = None  # the still vanished meanwhile: judge by length alone
        if info.content_identifier and still_identifier:
            return info.content_identifier == still_identifier
        return info.duration_ms is not None and info.duration_ms <= LIVE_PHOTO_MAX_UNVERIFIED_MS

    def _flush(self, done: list[_Work], known, stats: ScanStats, progress: Progress) -> None:
        records = []
        for work in done:
            record = work.record
            # A file that failed part-way (a video after some frames) keeps none of its vectors.
            kept = work.vectors if record.status == Status.OK else []
            record.vectors = sorted(kept, key=lambda pair: -1 if pair[0] is None else pair[0])
            if record.status == Status.OK and not record.vectors:
                record.status, record.error = Status.ERROR, "nothing could be embedded"
            records.append(record)
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


def _failed_record(entry: FileEntry, exc: Exception) -> ItemRecord:
    """The error record of a file whose preparation raised something nobody anticipated."""
    detail = " ".join(str(exc).split())[:200]
    reason = f"unexpected error ({type(exc).__name__}{': ' + detail if detail else ''})"
    record = ItemRecord(entry.path, entry.kind, entry.size, entry.mtime_ns, Status.ERROR, error=reason)
    if entry.kind == Kind.VIDEO:
        record.pair_path = entry.still  # as a good scan would: an unchanged rescan must not retry the file
    return record


def _is_dark(image) -> bool:
    return max(image.convert("L").resize((16, 16)).getextrema()) < POSTER_MIN_BRIGHTNESS


def _playable_motion_offset(data: bytes) -> int | None:
    """Where an Android motion photo's video starts, if it holds one with a decodable frame."""
    offset = embedded_motion_offset(data)
    if offset is None:
        return None
    try:
        next(iter(sample_frames(data[offset:], 10_000, min_side=1)))
    except (VideoError, StopIteration):
        return None
    except Exception:
        # The still is fine; only its embedded motion is unusable, so the photo is indexed without it.
        log.warning("embedded motion video at byte %d is unreadable", offset, exc_info=True)
        return None
    return offset


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

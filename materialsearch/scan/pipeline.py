"""An ordered, bounded read-ahead: files are prepared in a thread pool ahead of their consumer, in order.

Each file is prepared by ``produce(entry, emit)`` in a worker thread, which hands over its frames with ``emit``
and returns its ``EndMessage``. The consumer takes the messages file after file, in the order the files came in.
Memory stays bounded: at most ``look_ahead`` files are in flight, each holding at most ``frame_buffer`` messages
that the consumer has not taken yet (a producer waits when its file's queue is full).

A scan must never hang on one file: a file whose producer hands over nothing for ``stall_timeout`` seconds (a
decoder stuck inside a C library, a read from a share that never answers) is given up — the consumer gets
``on_stall(entry, seconds)``'s message for it and goes on, and a fresh worker takes the stuck one's place. A
thread stuck in C cannot be stopped; it is a daemon thread, so it holds neither the scan nor the process's exit.

Files take permits before they are prepared: a worker thread, and for a heavy file (a video, whose decoder holds
frame pools of hundreds of MB, or a still decoded at a large size) also one of ``heavy_decodes`` heavy permits,
both at once. Because the consumer
takes files in order, a plain semaphore could deadlock: later files hold every permit while they wait for the
consumer to take their frames, and the consumer waits for the oldest file, which waits for a permit. So the last
free permit of each kind is kept for the oldest unfinished file (head of line) unless it already holds one of that
kind: later files never hold them all, the oldest can always start, and once it is done (or given up as stalled)
its permits go back, to the file that is oldest then.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from materialsearch.catalog.records import ItemRecord
from materialsearch.encoders.base import PreparedPicture

Entry = TypeVar("Entry")
# How long a producer waits on a full queue before it looks again whether the pipeline was closed.
PUT_POLL_S = 0.2
# How often the consumer, waiting for a file, looks whether that file's producer has stalled.
STALL_POLL_S = 0.5

# glibc's mallopt parameters (malloc.h): the number of malloc arenas, and the size from which an allocation is
# its own mapping, given back to the system when freed.
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 8 * 1024 * 1024


def bound_malloc() -> dict[str, bool]:
    """Keep glibc from holding on to what the decoders freed; call before the threads start. Each of the two
    settings is left alone where the environment chose it (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``);
    returns which were set here.

    Arenas: glibc gives each thread that allocates an arena of its own (up to 8 per core) and keeps what was freed
    there: the decode threads' frames and pictures then stay resident. Scanning androidx/media's test assets (247
    files: odd and long videos, a 144 MP WebP; tiny model, 2 cores) held 1.7 GB after the scan with glibc's default
    and 1.2 GB with two arenas, peaking at 2.5 against 2.0 GB; the scan's speed was the same within the load's noise.

    Mapping threshold: glibc maps an allocation of its own only above a threshold that it raises, up to 32 MB, to
    the size of each mapped block freed. After the first large picture, Pillow's 16 MB image blocks therefore come
    from an arena's heap, and a freed heap is kept: a 200 MP still decoded in one arena stayed resident while the
    next was decoded in the other. The test library of tests/test_memory_bound.py peaked at +0.67 to +0.89 GB over
    the loaded model in five runs here and +1.28 GB once in CI; with the threshold fixed at 8 MB, +0.71 to +0.74
    in seven (AMD EPYC, 2 cores). The cost is a fresh mapping for each picture above 8 MB (a 12 MP HEIC's
    36 MB): measured in bench/run.py's scan throughput, see the README's Performance section.
    """
    chosen = {
        "arenas": (M_ARENA_MAX, MALLOC_ARENAS, "MALLOC_ARENA_MAX"),
        "mmap_threshold": (M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
    }
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator is not this one
        return dict.fromkeys(chosen, False)
    return {
        name: not os.environ.get(variable) and bool(mallopt(parameter, value))
        for name, (parameter, value, variable) in chosen.items()
    }


@dataclasses.dataclass(frozen=True)
class FrameMessage:
    """One picture ready for the model: a video frame at ``time_ms``, or a still (``time_ms`` None), as the
    encoder's ``prepare`` made it."""

    time_ms: int | None
    prepared: PreparedPicture


@dataclasses.dataclass(frozen=True)
class EndMessage:
    """The file is prepared: its record, and for a photo its one frame (so it is written with the batch that
    embeds it, and the file is never left between its frame and its end)."""

    record: ItemRecord
    last_frame: FrameMessage | None = None


@dataclasses.dataclass(frozen=True)
class FailedMessage:
    """Preparing raised something that is not about one file (MemoryError, interpreter shutdown)."""

    error: BaseException


Message = FrameMessage | EndMessage | FailedMessage
Produce = Callable[[Entry, Callable[[FrameMessage], None]], EndMessage]
OnStall = Callable[[Entry, float], EndMessage]


class Stopped(BaseException):
    """The pipeline was closed while a producer was handing over a frame.

    A BaseException, so that a producer's ``except Exception`` (for one file's problems) lets it through.
    """


class _Permits:
    """A count of permits whose last free one is kept for the oldest unfinished file (see the module's doc)."""

    def __init__(self, count: int):
        if count < 1:
            raise ValueError("at least one permit is needed")
        self.free = count

    def can_take(self, oldest: bool, oldest_holds_one: bool) -> bool:
        return self.free > 1 or (self.free == 1 and (oldest or oldest_holds_one))


class _InFlight(Generic[Entry]):
    """One file being prepared, with the messages it has handed over and the consumer has not taken yet."""

    def __init__(self, entry: Entry, frame_buffer: int):
        self.entry = entry
        self.messages: queue.Queue[Message] = queue.Queue(maxsize=frame_buffer)
        self.active_since: float | None = None  # when its producer last started or handed something over
        self.waiting = False  # its producer waits on a full queue: that is the consumer's pace, not a stall
        self.abandoned = False
        self.thread: threading.Thread | None = None
        self.permits: list[_Permits] = []  # what its producer holds while it prepares the file


class ReadAhead(Generic[Entry]):
    """Prepares ``entries`` in ``threads`` worker threads, at most ``look_ahead`` files ahead of the consumer.

    Use as a context manager; leaving it stops the producers (a file cut off is simply not finished) and waits
    for their threads (not for those of files given up as stalled).
    """

    def __init__(
        self,
        entries: Iterable[Entry],
        produce: Produce,
        *,
        threads: int,
        look_ahead: int,
        frame_buffer: int,
        stall_timeout: float | None = None,
        on_stall: OnStall | None = None,
        heavy: Callable[[Entry], bool] | None = None,
        heavy_decodes: int = 1,
    ):
        if (stall_timeout is None) != (on_stall is None):
            raise ValueError("stall_timeout and on_stall go together")
        self._entries = iter(entries)
        self._produce = produce
        self._look_ahead = look_ahead
        self._frame_buffer = frame_buffer
        self._stall_timeout = stall_timeout
        self._on_stall = on_stall
        self._in_flight: collections.deque[_InFlight[Entry]] = collections.deque()
        self._stop = threading.Event()
        self._changed = threading.Condition()  # guards the permits and the head of ``_in_flight``
        self._workers = _Permits(threads)  # one per worker thread at work
        self._heavy = _Permits(heavy_decodes)  # for files ``heavy`` says are (videos, large stills): this many at once
        self._is_heavy = heavy or (lambda entry: False)

    def __enter__(self) -> ReadAhead[Entry]:
        self._refill()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for work in list(self._in_flight):
            if work.thread is not None and not work.abandoned:
                work.thread.join()
        self._in_flight.clear()

    @property
    def exhausted(self) -> bool:
        """Every file's end has been taken."""
        return not self._in_flight

    def next(self) -> tuple[Entry, FrameMessage | EndMessage]:
        """The next message of the oldest unfinished file (waits for it); after its ``EndMessage``, the next file.

        A ``FailedMessage`` is raised here, in the consumer's thread. A file stalled past ``stall_timeout`` ends
        with ``on_stall``'s message.
        """
        head = self._in_flight[0]
        while True:
            try:
                message = head.messages.get(timeout=STALL_POLL_S if self._stall_timeout else None)
                break
            except queue.Empty:
                stalled = self._stalled_for(head)
                if stalled is not None:
                    head.abandoned = True
                    self._release(head)  # its thread is lost to the file: a fresh one takes its place
                    message = self._on_stall(head.entry, stalled)
                    break
        if isinstance(message, FailedMessage):
            raise message.error
        if isinstance(message, EndMessage):
            with self._changed:
                self._in_flight.popleft()
                self._changed.notify_all()  # a new oldest file: it may take the last permits
            self._refill()
        return head.entry, message

    def _stalled_for(self, work: _InFlight[Entry]) -> float | None:
        """Seconds ``work``'s producer has been silent, once past ``stall_timeout``; else None."""
        if work.active_since is None or work.waiting or not work.messages.empty():
            return None
        silent = time.monotonic() - work.active_since
        return silent if silent > self._stall_timeout else None

    def _refill(self) -> None:
        while len(self._in_flight) < self._look_ahead:
            entry = next(self._entries, None)
            if entry is None:
                return
            work = _InFlight(entry, self._frame_buffer)
            work.thread = threading.Thread(target=self._run, args=(work,), name="decode", daemon=True)
            self._in_flight.append(work)
            work.thread.start()

    def _run(self, work: _InFlight[Entry]) -> None:
        """In a worker thread: wait for its permits, prepare one file and hand its messages over."""
        if not self._acquire(work):
            return  # closed before this file's turn came
        try:
            self._prepare(work)
        finally:
            if not work.abandoned:
                self._release(work)

    def _acquire(self, work: _InFlight[Entry]) -> bool:
        """Wait until ``work`` may take its permits (all at once, head of line) and take them; False once closed
        or given up."""
        # Deciding may read the file (a still's declared size): a read that never returns is a stall like any.
        work.active_since = time.monotonic()
        heavy = self._is_heavy(work.entry)
        work.active_since = None  # waiting for permits is the other files' pace, never a stall
        pools = [self._workers, self._heavy] if heavy else [self._workers]
        with self._changed:
            while not self._stop.is_set() and not work.abandoned:
                head = self._in_flight[0] if self._in_flight else None
                if all(pool.can_take(head is work, head is not None and pool in head.permits) for pool in pools):
                    for pool in pools:
                        pool.free -= 1
                    work.permits = pools
                    return True
                self._changed.wait(PUT_POLL_S)
        return False

    def _release(self, work: _InFlight[Entry]) -> None:
        """Give ``work``'s permits back (once: the consumer giving it up and its thread ending may both call)."""
        with self._changed:
            for pool in work.permits:
                pool.free += 1
            work.permits = []
            self._changed.notify_all()

    def _prepare(self, work: _InFlight[Entry]) -> None:
        def emit(message: Message) -> None:
            work.waiting = True
            try:
                while True:
                    if self._stop.is_set() or work.abandoned:
                        raise Stopped
                    try:
                        work.messages.put(message, timeout=PUT_POLL_S)
                        return
                    except queue.Full:
                        continue
            finally:
                work.waiting = False
                work.active_since = time.monotonic()

        if self._stop.is_set():
            return  # closed before this file's turn came
        work.active_since = time.monotonic()
        try:
            emit(self._produce(work.entry, emit))
        except Stopped:
            return
        # Not about one file: the consumer re-raises it (else it would wait forever for this file's messages).
        except BaseException as exc:  # noqa: BLE001
            try:
                emit(FailedMessage(exc))
            except Stopped:
                raise exc from None

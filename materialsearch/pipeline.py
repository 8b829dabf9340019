"""An ordered, bounded read-ahead: files are prepared in a thread pool ahead of their consumer, in order.

Each file is prepared by ``produce(entry, emit)`` in a worker thread, which hands over its frames with ``emit``
and returns its ``EndMessage``. The consumer takes the messages file after file, in the order the files came in.
Memory stays bounded: at most ``look_ahead`` files are in flight, each holding at most ``frame_buffer`` messages
that the consumer has not taken yet (a producer waits when its file's queue is full).
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np

from .records import ItemRecord

Entry = TypeVar("Entry")
# How long a producer waits on a full queue before it looks again whether the pipeline was closed.
PUT_POLL_S = 0.2


@dataclasses.dataclass(frozen=True)
class FrameMessage:
    """One picture ready for the model: a video frame at ``time_ms``, or a still (``time_ms`` None)."""

    time_ms: int | None
    pixels: np.ndarray


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


class Stopped(BaseException):
    """The pipeline was closed while a producer was handing over a frame.

    A BaseException, so that a producer's ``except Exception`` (for one file's problems) lets it through.
    """


class _InFlight(Generic[Entry]):
    """One file being prepared, with the messages it has handed over and the consumer has not taken yet."""

    def __init__(self, entry: Entry, frame_buffer: int):
        self.entry = entry
        self.messages: queue.Queue[Message] = queue.Queue(maxsize=frame_buffer)


class ReadAhead(Generic[Entry]):
    """Prepares ``entries`` in ``threads`` worker threads, at most ``look_ahead`` files ahead of the consumer.

    Use as a context manager; leaving it stops the producers (a file cut off is simply not finished) and waits
    for the threads.
    """

    def __init__(self, entries: Iterable[Entry], produce: Produce, *, threads: int, look_ahead: int, frame_buffer: int):
        self._entries = iter(entries)
        self._produce = produce
        self._threads = threads
        self._look_ahead = look_ahead
        self._frame_buffer = frame_buffer
        self._in_flight: collections.deque[_InFlight[Entry]] = collections.deque()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> ReadAhead[Entry]:
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="decode")
        self._refill()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        assert self._pool is not None
        self._pool.shutdown(wait=True)

    @property
    def exhausted(self) -> bool:
        """Every file's end has been taken."""
        return not self._in_flight

    def next(self) -> tuple[Entry, FrameMessage | EndMessage]:
        """The next message of the oldest unfinished file (waits for it); after its ``EndMessage``, the next file.

        A ``FailedMessage`` is raised here, in the consumer's thread.
        """
        head = self._in_flight[0]
        message = head.messages.get()
        if isinstance(message, FailedMessage):
            raise message.error
        if isinstance(message, EndMessage):
            self._in_flight.popleft()
            self._refill()
        return head.entry, message

    def _refill(self) -> None:
        assert self._pool is not None
        while len(self._in_flight) < self._look_ahead:
            entry = next(self._entries, None)
            if entry is None:
                return
            work = _InFlight(entry, self._frame_buffer)
            self._pool.submit(self._run, work)
            self._in_flight.append(work)

    def _run(self, work: _InFlight[Entry]) -> None:
        """In a worker thread: prepare one file and hand its messages over."""

        def emit(message: Message) -> None:
            while True:
                if self._stop.is_set():
                    raise Stopped
                try:
                    work.messages.put(message, timeout=PUT_POLL_S)
                    return
                except queue.Full:
                    continue

        if self._stop.is_set():
            return  # closed before this file's turn came
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

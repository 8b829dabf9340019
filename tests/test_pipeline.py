"""The read-ahead pipeline on its own: order, bounded memory, failures and closing, with plain producer functions."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
from materialsearch.scan.pipeline import EndMessage, FrameMessage, ReadAhead

PIXELS = np.zeros(3, np.float32)


def record(name: str) -> ItemRecord:
    return ItemRecord(name, Kind.VIDEO, 1, 1, ItemStatus.OK)


def drain(ahead: ReadAhead) -> list[tuple[str, object]]:
    messages = []
    while not ahead.exhausted:
        entry, message = ahead.next()
        messages.append((entry, message.time_ms if isinstance(message, FrameMessage) else "end"))
    return messages


def test_files_come_out_in_order_whatever_order_they_finish_in():
    delays = {"a": 0.3, "b": 0.0, "c": 0.15, "d": 0.0}

    def produce(name, emit):
        time.sleep(delays[name])
        for time_ms in range(2):
            emit(FrameMessage(time_ms, PIXELS))
        return EndMessage(record(name))

    with ReadAhead(list(delays), produce, threads=4, look_ahead=4, frame_buffer=4) as ahead:
        messages = drain(ahead)
    assert messages == [(name, m) for name in delays for m in (0, 1, "end")]


def test_a_photo_end_carries_its_frame_and_the_record():
    def produce(name, emit):
        return EndMessage(record(name), FrameMessage(None, PIXELS))

    with ReadAhead(["p"], produce, threads=1, look_ahead=1, frame_buffer=1) as ahead:
        entry, message = ahead.next()
        assert ahead.exhausted
    assert entry == "p" and isinstance(message, EndMessage)
    assert message.record.path == "p" and message.last_frame.time_ms is None


def test_memory_stays_bounded_files_ahead_and_frames_per_file():
    frame_buffer, look_ahead, frames_per_file = 2, 3, 10
    started: list[str] = []
    emitted: dict[str, int] = {}
    lock = threading.Lock()

    def produce(name, emit):
        with lock:
            started.append(name)
        for time_ms in range(frames_per_file):
            emit(FrameMessage(time_ms, PIXELS))
            with lock:
                emitted[name] = emitted.get(name, 0) + 1
        return EndMessage(record(name))

    names = [f"f{i}" for i in range(8)]
    with ReadAhead(names, produce, threads=4, look_ahead=look_ahead, frame_buffer=frame_buffer) as ahead:
        taken: dict[str, int] = {}
        finished = 0
        while not ahead.exhausted:
            time.sleep(0.01)  # a slow consumer: the producers run into their bounds
            with lock:
                # Files started never run more than look_ahead ahead of the files the consumer has finished.
                assert len(started) <= finished + look_ahead
                # No file holds more than frame_buffer frames the consumer has not taken.
                for name, count in emitted.items():
                    assert count - taken.get(name, 0) <= frame_buffer
            entry, message = ahead.next()
            if isinstance(message, EndMessage):
                finished += 1
            else:
                taken[entry] = taken.get(entry, 0) + 1
    assert taken == dict.fromkeys(names, frames_per_file)


class NotAboutOneFile(BaseException):
    """Stands for MemoryError or interpreter shutdown: must reach the consumer."""


def test_a_failure_that_is_not_about_one_file_is_raised_in_the_consumer():
    def produce(name, emit):
        if name == "bad":
            raise NotAboutOneFile("out of memory")
        return EndMessage(record(name))

    with ReadAhead(["ok", "bad", "never"], produce, threads=2, look_ahead=3, frame_buffer=2) as ahead:
        assert ahead.next()[0] == "ok"
        with pytest.raises(NotAboutOneFile, match="out of memory"):
            ahead.next()


def test_closing_stops_producers_mid_file_even_through_their_own_except_exception():
    caught = []
    files_started = []

    def produce(name, emit):
        files_started.append(name)
        try:
            for time_ms in range(10**9):  # a video that never ends
                emit(FrameMessage(time_ms, PIXELS))
        except Exception as exc:  # noqa: BLE001 - a handler for one file's problems must not catch the stop
            caught.append(exc)
        return EndMessage(record(name))

    names = [f"v{i}" for i in range(20)]
    started = time.monotonic()
    with ReadAhead(names, produce, threads=2, look_ahead=4, frame_buffer=2) as ahead:
        assert ahead.next()[1].time_ms == 0
    assert time.monotonic() - started < 5, "closing must not wait for files to finish"
    assert caught == []
    assert len(files_started) <= 2  # files not started before closing never start


def test_no_files_is_exhausted_at_once():
    with ReadAhead([], lambda name, emit: EndMessage(record(name)), threads=1, look_ahead=1, frame_buffer=1) as a:
        assert a.exhausted


# --- the heavy-decode bound (head of line) ----------------------------------------------------------------------
def stalled_end(name, seconds):
    return EndMessage(ItemRecord(name, Kind.VIDEO, 1, 1, ItemStatus.ERROR, error=f"stalled {seconds:.1f}"))


class Concurrency:
    """Counts producers of heavy files running at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def is_video(name: str) -> bool:
    return name.startswith("v")


@pytest.mark.parametrize(("threads", "heavy_decodes"), [(1, 1), (2, 1), (4, 1), (4, 2), (3, 3)])
def test_heavy_files_are_bounded_and_the_ordered_read_ahead_cannot_deadlock(threads, heavy_decodes):
    """Videos emit far more frames than their queues hold, so every producer but the oldest file's blocks on the
    consumer: with a plain semaphore, later videos would hold every permit while the oldest waits for one."""
    names = [f"v{i}" if i % 3 else f"p{i}" for i in range(14)]
    running = Concurrency()

    def produce(name, emit):
        if not is_video(name):
            return EndMessage(record(name), FrameMessage(None, PIXELS))
        with running:
            for time_ms in range(12):
                emit(FrameMessage(time_ms, PIXELS))
                time.sleep(0.001)
        return EndMessage(record(name))

    done = []

    def consume():
        with ReadAhead(
            names, produce, threads=threads, look_ahead=8, frame_buffer=2, heavy=is_video, heavy_decodes=heavy_decodes
        ) as ahead:
            done.extend(drain(ahead))

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(timeout=60)
    assert not consumer.is_alive(), "the read-ahead deadlocked"
    assert [name for name, message in done if message == "end"] == names
    assert 1 <= running.peak <= min(heavy_decodes, threads)


def test_more_than_one_heavy_file_runs_at_once_when_allowed():
    both_running = threading.Barrier(2, timeout=20)

    def produce(name, emit):
        both_running.wait()  # passes only when two videos are being prepared together
        emit(FrameMessage(0, PIXELS))
        return EndMessage(record(name))

    with ReadAhead(
        ["v1", "v2"], produce, threads=3, look_ahead=2, frame_buffer=1, heavy=is_video, heavy_decodes=2
    ) as ahead:
        assert [m for _n, m in drain(ahead)] == [0, "end", 0, "end"]


STALL_S = 0.6


def drain_one_video_at_a_time(names, produce, frame_buffer):
    """Every message of ``names`` through two worker threads, one heavy permit and a stall timeout of STALL_S."""
    with ReadAhead(
        names,
        produce,
        threads=2,
        look_ahead=len(names),
        frame_buffer=frame_buffer,
        stall_timeout=STALL_S,
        on_stall=stalled_end,
        heavy=is_video,
        heavy_decodes=1,
    ) as ahead:
        return drain(ahead)


def test_a_stalled_heavy_file_times_out_and_hands_its_permit_on():
    """The only heavy permit is held by a video stuck in its decoder: it is given up after the stall timeout,
    and the next video gets the permit."""
    stuck = threading.Event()

    def produce(name, emit):
        if name == "v-stuck":
            stuck.wait(30)  # a decoder that never returns
        emit(FrameMessage(0, PIXELS))
        return EndMessage(record(name))

    started = time.monotonic()
    try:
        messages = drain_one_video_at_a_time(["v-stuck", "v-next", "p-photo"], produce, frame_buffer=1)
    finally:
        stuck.set()
    assert messages[0] == ("v-stuck", "end") and [n for n, m in messages if m == "end"] == [
        "v-stuck",
        "v-next",
        "p-photo",
    ]
    assert time.monotonic() - started < 10


def test_a_file_waiting_for_a_permit_is_not_stalled():
    """Waiting for its turn is not decoding: a video queued behind a long one is never given up for the wait."""

    def produce(name, emit):
        for time_ms in range(6):
            emit(FrameMessage(time_ms, PIXELS))
            time.sleep(STALL_S / 3)  # each frame well within the timeout; the whole file far beyond it
        return EndMessage(record(name))

    messages = drain_one_video_at_a_time(["v1", "v2"], produce, frame_buffer=8)
    assert [m for _n, m in messages] == [0, 1, 2, 3, 4, 5, "end"] * 2


def test_malloc_is_bounded_unless_the_environment_chose(monkeypatch):
    import ctypes
    import platform

    from materialsearch.scan.pipeline import bound_malloc

    try:
        glibc = bool(ctypes.CDLL("libc.so.6").gnu_get_libc_version) and platform.system() == "Linux"
    except (OSError, AttributeError):
        glibc = False
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert bound_malloc() == {"arenas": False, "mmap_threshold": glibc}  # the user's number stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert bound_malloc() == {"arenas": glibc, "mmap_threshold": False}
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert bound_malloc() == {"arenas": glibc, "mmap_threshold": glibc}

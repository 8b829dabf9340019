"""The read-ahead pipeline on its own: order, bounded memory, failures and closing, with plain producer functions."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from materialsearch.pipeline import EndMessage, FrameMessage, ReadAhead
from materialsearch.records import ItemRecord, Kind, Status

PIXELS = np.zeros(3, np.float32)


def record(name: str) -> ItemRecord:
    return ItemRecord(name, Kind.VIDEO, 1, 1, Status.OK)


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

"""A scan never hangs on one file: a decode that makes no progress is given up, listed, and the scan goes on."""

from __future__ import annotations

import threading
import time

import numpy as np

from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
from materialsearch.scan import prepare as prepare_module
from materialsearch.scan.pipeline import EndMessage, FrameMessage, ReadAhead


def _record(name: str, status: ItemStatus = ItemStatus.OK, error: str | None = None) -> ItemRecord:
    return ItemRecord(name, Kind.IMAGE, 1, 1, status, error=error)


def test_a_stalled_file_ends_with_the_stall_message_and_the_rest_flow():
    release = threading.Event()

    def produce(name, emit):
        if name == "stuck":
            release.wait()  # a decoder stuck inside C: it never hands anything over
        return EndMessage(_record(name), FrameMessage(None, np.zeros(1, np.float32)))

    def on_stall(name, seconds):
        return EndMessage(_record(name, ItemStatus.ERROR, f"stalled {seconds:.1f}"))

    started = time.monotonic()
    try:
        with ReadAhead(
            ["a", "stuck", "b", "c"],
            produce,
            threads=1,  # the one worker is lost to the stuck file: a fresh one must take its place
            look_ahead=4,
            frame_buffer=2,
            stall_timeout=0.5,
            on_stall=on_stall,
        ) as ahead:
            ends = []
            while not ahead.exhausted:
                name, message = ahead.next()
                ends.append((name, message.record.status))
        assert ends == [("a", ItemStatus.OK), ("stuck", ItemStatus.ERROR), ("b", ItemStatus.OK), ("c", ItemStatus.OK)]
        assert time.monotonic() - started < 5  # leaving the context did not wait for the stuck thread
    finally:
        release.set()


def test_a_slow_consumer_is_not_a_stall():
    """A producer waiting on its full queue is kept waiting by the consumer, not stalled."""

    def produce(name, emit):
        for i in range(6):
            emit(FrameMessage(i, np.zeros(1, np.float32)))
        return EndMessage(_record(name))

    with ReadAhead(
        ["video"],
        produce,
        threads=1,
        look_ahead=1,
        frame_buffer=1,
        stall_timeout=0.2,
        on_stall=lambda name, seconds: EndMessage(_record(name, ItemStatus.ERROR, "stalled")),
    ) as ahead:
        seen = []
        while not ahead.exhausted:
            time.sleep(0.3)  # slower than the stall timeout, every message
            _name, message = ahead.next()
            seen.append(message)
    assert len(seen) == 7 and seen[-1].record.status == ItemStatus.OK


def test_a_scan_gives_up_a_stuck_decode_and_goes_on(open_services, library, monkeypatch):
    release = threading.Event()
    target = (library / "jpg_orient1.jpg").read_bytes()
    original = prepare_module.decode_image

    def decode_image(data, *args, **kwargs):
        if data == target:
            release.wait()
        return original(data, *args, **kwargs)

    monkeypatch.setattr(prepare_module, "decode_image", decode_image)
    services = open_services(library=str(library), decode_timeout=1)
    try:
        stats = services.scans.run()
    finally:
        release.set()
    problems, _total = services.store.problems(100, 0)
    reasons = {item.path.rsplit("/", 1)[-1]: item.error for item in problems}
    assert reasons["jpg_orient1.jpg"].startswith("decoding stalled: no progress for ")
    assert "MS_DECODE_TIMEOUT is 1 s" in reasons["jpg_orient1.jpg"]
    assert (stats.added, stats.errors) == (4, 2)  # the other files are indexed as usual
    assert services.index.ntotal == services.store.vector_checksum()[0]

"""Stopping on SIGINT/SIGTERM, the same way for the CLI scan and the server: the first signal asks for a graceful
stop (finish the batch in hand, save the index), a second one ends the process at once."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def graceful_stop(on_first: Callable[[int], None]) -> Iterator[list[int]]:
    """While inside, the first SIGINT or SIGTERM calls ``on_first(signum)`` (which may raise to unwind the main
    thread); from then on both get their default behaviour, so a second Ctrl-C or SIGTERM ends the process.

    Yields the signals received (empty if none). The previous handlers come back on exit. Outside the main thread,
    where Python cannot set handlers, it installs nothing.
    """
    received: list[int] = []

    def handler(signum, _frame) -> None:
        received.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        on_first(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_now(code: int) -> None:
    """Leave without the interpreter's teardown (``python app.py`` and ``python -m materialsearch``, once a command
    has closed its services): by now the index is saved, the database closed and every job has ended. Tearing down
    torch, ONNX Runtime and OpenCV costs ~1.5 CPU-s — seconds of `docker stop`'s grace on a busy NAS (measured: 4 s
    of a 10 s grace at load 15 on 2 cores) — and a native thread pool torn down under a thread still leaving could
    abort the process after its work was done ("terminate called without an active exception", exit -6: seen once
    in a scan worker's `--once` exit)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

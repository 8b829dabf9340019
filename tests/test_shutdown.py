"""The one SIGINT/SIGTERM handler the CLI scan and the server share: first signal graceful, second the default."""

from __future__ import annotations

import os
import signal
import threading

from materialsearch.shutdown import graceful_stop


def test_first_signal_calls_back_then_defaults_then_restores():
    calls = []
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with graceful_stop(calls.append) as received:
        assert signal.getsignal(signal.SIGTERM) not in (before[signal.SIGTERM], signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread before kill returns to Python code
        assert calls == [signal.SIGTERM] and received == [signal.SIGTERM]
        # A second signal now ends the process (SIGTERM) or raises KeyboardInterrupt (Ctrl-C) at once.
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_an_exception_from_the_callback_unwinds_the_main_thread():
    class Stop(Exception):
        pass

    def stop(_signum):
        raise Stop

    unwound = False
    with graceful_stop(stop) as received:
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except Stop:
            unwound = True
    assert unwound and received == [signal.SIGINT]


def test_outside_the_main_thread_nothing_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def worker():
        with graceful_stop(seen.append) as received:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(received)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before, []]

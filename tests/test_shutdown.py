"""The one SIGINT/SIGTERM handler the CLI scan and the server share: first signal graceful, second the default."""

from __future__ import annotations

import os
import signal
import threading

from materialsearch.jobs.shutdown import graceful_stop


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


def test_a_signal_stops_a_cli_scan_after_its_batch(tiny_model, media_dir, tmp_path):
    import shutil
    import subprocess
    import sys
    import time

    library = tmp_path / "library"
    library.mkdir()
    for i in range(120):  # enough that the scan is still embedding when the signal comes
        shutil.copy(media_dir / "jpg_orient1.jpg", library / f"copy{i:03}.jpg")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MS_")},
        "MS_LIBRARY": str(library),
        "MS_DATA_DIR": str(tmp_path / "data"),
        "MS_MODEL": tiny_model,
        "MS_BATCH_SIZE": "8",
    }
    scan = subprocess.Popen(
        [sys.executable, "-m", "materialsearch", "scan"], env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        seen = ""
        deadline = time.monotonic() + 120
        while "embedding" not in seen and time.monotonic() < deadline:
            seen += scan.stderr.read(1)
        scan.send_signal(signal.SIGINT)
        _out, rest = scan.communicate(timeout=120)
    finally:
        scan.kill()
    assert scan.returncode == 130, seen + rest
    assert "interrupted; work committed so far is kept" in rest

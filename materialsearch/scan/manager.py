"""Running scans: at most one at a time, in the background or in the caller's thread, paused, resumed, reported."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable

from materialsearch.catalog.core import Catalog
from materialsearch.jobs.schedule import ScanScheduler, ScanWindow
from materialsearch.scan.reports import LastScan, ScanProgress, ScanSchedule, ScanStatus
from materialsearch.scan.scanner import Progress, Scanner, ScanStats

log = logging.getLogger(__name__)

LAST_SCAN_KEY = "last_scan"


class ScanRefused(RuntimeError):
    """A scan cannot start: one is running, or another process scans this data dir."""


# Scans someone asked for explicitly run at once, whatever MS_SCAN_WINDOW says; the others keep to the window.
EXPLICIT_TRIGGERS = frozenset({"manual", "command line"})
RATE_WINDOW_S = 60.0  # items/s is measured over the last minute of embedding


class ScanManager:
    """Runs at most one scan at a time, in the background or in the caller's thread; pauses, resumes, reports.

    Pausing blocks the scan thread between committed batches (no CPU used) until resumed or cancelled. It is
    paused when someone asks, and (for scheduled and start-up scans) while outside the scan window.
    """

    def __init__(
        self,
        scanner: Scanner,
        catalog: Catalog,
        *,
        owner: bool = True,
        refusal: str | None = None,
        window: ScanWindow | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ):
        self.scanner = scanner
        self.catalog = catalog
        self.owner = owner
        self.refusal = refusal  # why this process may not scan (another one holds the data dir)
        self.window = window
        self.scheduler: ScanScheduler | None = None
        self.clock = clock  # local wall-clock time, for the window (tests give a fake one)
        self._lock = threading.Lock()
        self._pause_cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._user_paused = False
        self._ignore_window = False
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=512)  # (time, done)
        self._samples_lock = threading.Lock()
        self.progress: Progress | None = None
        self.started_at: dt.datetime | None = None
        self.trigger: str | None = None
        self.last: dict | None = self._load_last()
        self.finished = 0  # scans finished by this process (lets callers tell that something may have changed)
        self.after_scan: list[Callable[[], None]] = []  # called (in the scan's thread) when a scan has ended

    @property
    def running(self) -> bool:
        """Whether a scan is in progress."""
        return self.progress is not None

    # --- control ----------------------------------------------------------------------------------------------
    def try_start(self, trigger: str = "manual") -> str | None:
        """Start a scan in a background thread; None when started, else why not."""
        with self._lock:
            refusal = self._refusal()
            if refusal:
                return refusal
            self._begin(trigger)
            self._thread = threading.Thread(target=self._run_claimed, name="scan", daemon=True)
            self._thread.start()
            return None

    def start(self, trigger: str = "manual") -> bool:
        """Start a scan in a background thread; False if one is running or this process may not scan."""
        return self.try_start(trigger) is None

    def run(self, on_progress=None, trigger: str = "command line") -> ScanStats:
        """Scan in this thread (the CLI); raises ScanRefused if a scan runs or another process owns the data dir."""
        with self._lock:
            refusal = self._refusal()
            if refusal:
                raise ScanRefused(refusal)
            self._begin(trigger)
        return self._run_claimed(on_progress)

    def pause(self) -> bool:
        """Pause the running scan after its current batch; False when no scan runs."""
        with self._pause_cond:
            if not self.running:
                return False
            self._user_paused = True
            self._pause_cond.notify_all()
        log.info("scan paused by user")
        return True

    def resume(self) -> bool:
        """Resume a paused scan (also outside the scan window: asked by hand); False when no scan runs."""
        with self._pause_cond:
            if not self.running:
                return False
            self._user_paused = False
            if self._outside_window():
                self._ignore_window = True
            self._pause_cond.notify_all()
        log.info("scan resumed")
        return True

    def cancel(self) -> bool:
        """Ask a running scan to stop after its current batch (also when paused)."""
        if not self.running:
            return False
        self._cancel.set()
        with self._pause_cond:
            self._pause_cond.notify_all()
        return True

    def poke(self) -> None:
        """Make a paused scan look at the clock again now (the window may have opened)."""
        with self._pause_cond:
            self._pause_cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background scan (if any) finishes; True if none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _refusal(self) -> str | None:
        if not self.owner:
            return self.refusal or "this process may not scan this data dir"
        if self.running:
            return "a scan is already running"
        return None

    def _begin(self, trigger: str) -> None:
        self._cancel.clear()
        self._user_paused = False
        self._ignore_window = trigger in EXPLICIT_TRIGGERS
        with self._samples_lock:
            self._samples.clear()
        self.trigger = trigger
        self.progress = Progress()
        self.started_at = dt.datetime.now().replace(microsecond=0)

    # --- pausing ----------------------------------------------------------------------------------------------
    def _outside_window(self) -> bool:
        return self.window is not None and not self.window.contains(self.clock())

    def pause_reason(self) -> str | None:
        """Why the running scan is (or is about to be) paused, or None."""
        if not self.running or self._cancel.is_set():
            return None
        if self._user_paused:
            return "paused by user"
        if not self._ignore_window and self._outside_window():
            return f"outside scan window {self.window}"
        return None

    def _pause_point(self) -> None:
        """Called by the scan thread where pausing is safe; blocks while the scan should stay paused."""
        reason = self.pause_reason()
        if reason is None:
            return
        # A pause may last all day: save the index first, so a crash meanwhile does not mean a rebuild.
        self.catalog.checkpoint()
        log.info("scan paused (%s)", reason)
        with self._pause_cond:
            while self.pause_reason() is not None:
                timeout = 60.0  # look at the clock now and then: the window opens by itself
                if self.window is not None and not self._user_paused:
                    timeout = min(timeout, max(1.0, self.window.seconds_until_open(self.clock())))
                self._pause_cond.wait(timeout)
        with self._samples_lock:
            self._samples.clear()  # the rate is of working time, not of the pause
        log.info("scan resumed" if not self._cancel.is_set() else "paused scan cancelled")

    # --- running ----------------------------------------------------------------------------------------------
    def _run_claimed(self, on_progress=None) -> ScanStats:
        started = time.monotonic()
        progress = self.progress

        def report(progress: Progress) -> None:
            if progress.phase == "embedding":
                with self._samples_lock:
                    self._samples.append((time.monotonic(), progress.done))
            if on_progress:
                on_progress(progress)

        try:
            stats = self.scanner.scan(progress, self._cancel.is_set, report, self._pause_point)
            log.info("scan finished: %s", stats.summary())
            self._finish(
                {
                    "seconds": round(stats.seconds, 2),
                    "summary": stats.summary(),
                    "stats": dataclasses.asdict(stats),  # warnings as dicts, with their codes
                    "cancelled": stats.cancelled,
                    "error": None,
                }
            )
            return stats
        except Exception as exc:
            log.exception("scan failed")
            self._finish(
                {
                    "seconds": round(time.monotonic() - started, 2),
                    "summary": f"failed: {type(exc).__name__}: {exc}",
                    "stats": None,
                    "cancelled": False,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
            raise
        finally:
            with self._lock:
                self.progress = None
                self.finished += 1
            for listener in self.after_scan:
                listener()

    def _finish(self, outcome: dict) -> None:
        self.last = {
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": dt.datetime.now().replace(microsecond=0).isoformat(),
            "trigger": self.trigger,
            **outcome,
        }
        try:
            self.catalog.store.set_meta(LAST_SCAN_KEY, json.dumps(self.last, default=str))
        except Exception:
            # Remembering the last scan across restarts is a nicety; it must not turn a finished scan into a failed one.
            log.exception("cannot record the last scan in the database")

    def _load_last(self) -> dict | None:
        raw = self.catalog.store.get_meta(LAST_SCAN_KEY)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            log.warning("ignoring an unreadable record of the last scan")
            return None

    # --- reporting --------------------------------------------------------------------------------------------
    def _rate(self) -> float | None:
        """Items embedded per second over about the last minute of work, or None before there is enough to tell."""
        with self._samples_lock:
            samples = list(self._samples)
        if len(samples) < 2:
            return None
        now = time.monotonic()
        base = samples[0]  # the newest sample at least a minute old, so the rate covers a full minute when it can
        for sample in samples:
            if now - sample[0] <= RATE_WINDOW_S:
                break
            base = sample
        elapsed = now - base[0]
        if elapsed < 1.0:
            return None
        return max(samples[-1][1] - base[1], 0) / elapsed

    def status(self) -> ScanStatus:
        """State of the current scan (idle|scanning|paused), its progress, the last finished one, the schedule."""
        progress = self.progress
        current = None
        reason = self.pause_reason() if progress is not None else None
        if progress is not None:
            rate = None if reason else self._rate()
            remaining = max(progress.total - progress.done, 0)
            eta = round(remaining / rate, 1) if rate and progress.phase == "embedding" else None
            current = ScanProgress(
                phase=progress.phase,
                done=progress.done,
                total=progress.total,
                found=progress.found,
                rate=round(rate, 2) if rate is not None else None,
                eta_s=eta,
                current=progress.current,
                errors=progress.errors,
                started_at=self.started_at.isoformat() if self.started_at else None,
                trigger=self.trigger,
            )
        scheduler = self.scheduler
        next_run = scheduler.next_run() if scheduler is not None else None
        return ScanStatus(
            state="idle" if progress is None else ("paused" if reason else "scanning"),
            paused_reason=reason,
            progress=current,
            last=LastScan.from_record(self.last) if self.last else None,
            next_run=next_run.isoformat() if next_run else None,
            schedule=ScanSchedule(
                active=bool(scheduler and scheduler.active),
                cron=self.scanner.settings.scan_cron or None,
                interval_s=self.scanner.settings.scan_interval or None,
                window=str(self.window) if self.window else None,
            ),
            can_scan=self.owner,
            refusal=None if self.owner else self.refusal,
        )

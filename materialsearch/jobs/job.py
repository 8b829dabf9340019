"""The one lifecycle of every long task (scan, OCR pass, tags, places backfill): ``BackgroundJob``.

A job runs at most one run at a time, in a background thread (``try_start``) or in the caller's (``run``); it is
refused, with the reason, while a run is in progress, in a process that does not own the data dir, and once the
job is stopped. Its work calls the job's pause point between units (batches, files): there the run blocks while it
is paused by hand (``pause``/``resume``), while it waits for another job, or outside the time window
(``MS_SCAN_WINDOW``: runs nobody asked for by hand keep to it), and ``cancel`` wakes it to end early. Progress has
one rate rule (``RateMeter``), the last finished run is kept in one place (``last``, and ``KeptRun``: the
catalog's meta table under the job's key), and ``snapshot`` is the state every job's status is built from.

A subclass says only what differs: its work (``_work``), what counts as its units (``_units``), and what its
status and last-run record add.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Protocol

log = logging.getLogger(__name__)

# Runs someone asked for explicitly run at once, whatever the time window says; the others keep to the window.
EXPLICIT_TRIGGERS = frozenset({"manual", "command line"})
RATE_WINDOW_S = 60.0  # the rate is measured over about the last minute of working time
RATE_MIN_S = 1.0  # below a second of work the rate says nothing yet
JobState = Literal["idle", "running", "paused"]


class JobRefused(RuntimeError):
    """A run cannot start now; the message says why."""


class WindowLike(Protocol):
    """Daily hours in which runs nobody asked for by hand may go on (``jobs.schedule.ScanWindow``)."""

    def contains(self, when: dt.datetime) -> bool: ...

    def seconds_until_open(self, when: dt.datetime) -> float: ...


class MetaStore(Protocol):
    """Where the last run is kept across restarts (the catalog's ``Store``: its meta table)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


class Outcome(Protocol):
    """What a job's work returns: how long it took, whether it was cancelled, and a line for people."""

    seconds: float
    cancelled: bool

    def summary(self) -> str: ...


@dataclasses.dataclass
class WorkDone:
    """The outcome of a job whose work has no statistics of its own."""

    text: str
    seconds: float
    cancelled: bool = False

    def summary(self) -> str:
        """One line for people."""
        return self.text


class RateMeter:
    """Units per second over about the last minute of working time: the one rate (and ETA) rule of every job.

    The job takes a sample (time, units done) at the start, at each pause point and whenever its work reports
    progress; a pause starts the measure afresh (the rate is of work, not of waiting). The measure starts when the
    count first moves: the time a (re)started pipeline takes to fill (a first batch decoded and encoded) is no
    rate — measured from the resume, a scan that ended 20 s later said "about 5 min" left. The rate is the units
    done since the newest sample at least ``RATE_WINDOW_S`` old (else that first move), over the time since it;
    there is none before ``RATE_MIN_S`` of work. The ETA is the units left at that rate.
    """

    def __init__(self, ticks: Callable[[], float] = time.monotonic):
        self.ticks = ticks
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=512)
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the samples (a run starts, or resumes after a pause)."""
        with self._lock:
            self._samples.clear()

    def sample(self, done: int) -> None:
        """Note that ``done`` units are done now."""
        with self._lock:
            if self._samples and done < self._samples[-1][1]:
                self._samples.clear()  # the count started over (a new phase): so does the measure
            self._samples.append((self.ticks(), done))

    def rate(self, done: int) -> float | None:
        """Units per second, ``done`` being the count now; None before there is enough to tell."""
        with self._lock:
            samples = list(self._samples)
        moved = next((i for i, sample in enumerate(samples) if sample[1] > samples[0][1]), None)
        if moved is None:
            return None  # the count has not moved since the measure started: nothing to tell yet
        samples = samples[moved:]
        now = self.ticks()
        base = samples[0]
        for sample in samples:  # the newest sample at least a window old, so the rate covers a full window
            if now - sample[0] <= RATE_WINDOW_S:
                break
            base = sample
        elapsed = now - base[0]
        if elapsed < RATE_MIN_S:
            return None
        return max(done - base[1], 0) / elapsed

    @staticmethod
    def eta(done: int, total: int, rate: float | None) -> float | None:
        """Seconds left for ``total - done`` units at ``rate`` (None without a rate)."""
        return round(max(total - done, 0) / rate, 1) if rate else None


class KeptRun:
    """Where a job's last finished run is kept across restarts: the catalog's meta table, under the job's key."""

    def __init__(self, meta: MetaStore | None, key: str | None, noun: str):
        self.meta = meta if key is not None else None  # without a key, the last run is kept in memory only
        self.key = key
        self.noun = noun

    def load(self) -> dict | None:
        """The record kept, or None (none yet, or unreadable)."""
        if self.meta is None:
            return None
        raw = self.meta.get_meta(self.key)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            log.warning("ignoring an unreadable record of the last %s", self.noun)
            return None

    def keep(self, record: dict) -> None:
        """Keep ``record`` (never raises: a finished run must not turn into a failed one for this)."""
        if self.meta is None:
            return
        try:
            self.meta.set_meta(self.key, json.dumps(record, default=str))
        except Exception:  # remembering the last run across restarts is a nicety
            log.exception("cannot record the last %s in the database", self.noun)


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """A job's state at one moment, which each job's status dataclass is built from."""

    state: JobState
    paused_reason: str | None
    progress: Any  # the running run's live progress object (the job's own kind), None when idle
    started_at: str | None  # ISO 8601 local time
    trigger: str | None
    rate: float | None  # units/s (``RateMeter``), rounded to 2 places; None while paused
    eta_s: float | None
    last: dict | None  # the last finished run's record


class BackgroundJob:
    """A job's lifecycle: start/run, pause/resume/cancel/stop, the time window, pause points, rate, last run.

    Subclasses set the class attributes and implement ``_work``; the hooks below have do-nothing defaults.
    """

    NAME: ClassVar[str] = "job"  # the thread's name and the logs'
    RUNNING_REFUSAL: ClassVar[str] = "the job is already running"
    REFUSED: ClassVar[type[JobRefused]] = JobRefused  # what ``run`` raises when it cannot start
    LAST_KEY: ClassVar[str | None] = None  # the meta key the last run is kept under (None: kept in memory only)
    RECORD_START: ClassVar[bool] = False  # whether the last run's record carries its start time and trigger
    PAUSE_POLL_S: ClassVar[float] = 60.0  # a pause looks at the clock (and its other reasons) this often
    STOP_WAIT_S: ClassVar[float | None] = None  # how long closing waits for a stopped run (None: until it ends)

    def __init__(
        self,
        *,
        owner: bool = True,
        not_owner: str = "this process does not own the data dir",
        meta: MetaStore | None = None,
        window: WindowLike | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        ticks: Callable[[], float] = time.monotonic,
    ):
        self.owner = owner
        self.not_owner = not_owner  # why this process may not run the job (another one holds the data dir)
        self.meta = meta
        self.window = window
        self.clock = clock  # local wall-clock time, for the window (tests give a fake one)
        self.meter = RateMeter(ticks)
        self._lock = threading.Lock()  # starting and ending a run
        self._cond = threading.Condition()  # pausing: a waiting run is woken by resume, cancel, request, poke
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._user_paused = False
        self._ignore_window = False
        self._again = False  # asked for while running: go once more over the work when the run ends
        self._stopped = False
        self.progress: Any = None  # the running run's live progress (``_new_progress``); None when idle
        self.started_at: dt.datetime | None = None
        self.trigger: str | None = None
        self.finished = 0  # runs ended in this process (lets callers tell that something may have changed)
        self.after_run: list[Callable[[], None]] = []  # called (in the run's thread) when a run has ended
        self._kept = KeptRun(meta, self.LAST_KEY, self.NAME)
        self.last: dict | None = self._kept.load()  # the last finished run's record

    # --- what a subclass says -----------------------------------------------------------------------------------
    def _work(self, on_progress: Callable[[Any], None] | None) -> Outcome:
        """One run's work over ``self.progress``: call ``self._pause_point`` between units, stop when
        ``self._cancel`` is set."""
        raise NotImplementedError

    def _new_progress(self) -> Any:
        """The live progress object of a new run (anything but None)."""
        return True

    def _units(self) -> tuple[int, int] | None:
        """(done, total) of the units the rate counts now, or None while the run counts none."""
        return None

    def _unavailable(self) -> str | None:
        """Why the job cannot start besides ownership and a run in progress (it is off, something is busy)."""
        return None

    def _waits_for(self) -> str | None:
        """Why a run must wait besides a user's pause and the window (another job runs), or None."""
        return None

    def _before_pause(self) -> None:
        """Called in the run's thread as it pauses (save what a long pause must not risk)."""

    def _on_stop(self) -> None:
        """Called when the job is stopped (stop what starts it by itself)."""

    def _details(self, outcome: Outcome | None) -> dict:
        """What the last run's record adds (``outcome`` is None when the run failed)."""
        return {}

    def _error_text(self, exc: Exception) -> str:
        """A failed run's ``error`` field."""
        return f"{type(exc).__name__}: {exc}"

    # --- control ------------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.progress is not None

    def why_not_start(self) -> str | None:
        """Why a run cannot start now, or None."""
        if self._stopped:
            return f"shutting down: no new {self.NAME} starts"
        unavailable = self._unavailable()
        if unavailable:
            return unavailable
        if not self.owner:
            return self.not_owner
        return self.RUNNING_REFUSAL if self.running else None

    def try_start(self, trigger: str = "manual") -> str | None:
        """Start a run in a background thread; None when started, else why not."""
        with self._lock:
            refusal = self.why_not_start()
            if refusal:
                return refusal
            self._begin(trigger)
            self._thread = threading.Thread(target=self._run_in_thread, name=self.NAME, daemon=True)
            self._thread.start()
            return None

    def start(self, trigger: str = "manual") -> bool:
        """Start a run in a background thread; False when it cannot start now."""
        return self.try_start(trigger) is None

    def run(self, on_progress: Callable[[Any], None] | None = None, trigger: str = "command line") -> Any:
        """A run in this thread (the CLI); raises ``REFUSED`` when it cannot start."""
        with self._lock:
            refusal = self.why_not_start()
            if refusal:
                raise self.REFUSED(refusal)
            self._begin(trigger)
        return self._run_claimed(on_progress)

    def request(self, trigger: str = "after scan") -> None:
        """Start a run, or, while one runs, have it go once more over the work when it ends (what changed)."""
        with self._lock:
            if self.running:
                self._again = True
                self.poke()
                return
        self.try_start(trigger)

    def pause(self) -> bool:
        """Pause the running run at its next pause point; False when none runs."""
        return self._set_paused(True)

    def resume(self) -> bool:
        """Resume a paused run (also outside the window: asked by hand); False when none runs."""
        return self._set_paused(False)

    def _set_paused(self, paused: bool) -> bool:
        with self._cond:
            if not self.running:
                return False
            self._user_paused = paused
            if not paused and self._outside_window():
                self._ignore_window = True
            self._cond.notify_all()
        log.info("%s %s", self.NAME, "paused by user" if paused else "resumed")
        return True

    def cancel(self) -> bool:
        """Ask the running run to end at its next unit (also when paused); what it did is kept. False when none
        runs."""
        if not self.running:
            return False
        self._cancel.set()
        self.poke()
        return True

    def stop(self) -> None:
        """For good (closing): refuse new runs, stop what starts runs by itself, cancel the running one."""
        with self._lock:
            self._stopped = True
        self._on_stop()
        self.cancel()

    def poke(self) -> None:
        """Make a paused run look at its reasons again now (the window may have opened, a scan ended)."""
        with self._cond:
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background run (and one it chained to) ends; True if none runs any more."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            thread = self._thread
            if thread is None:
                return True
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if thread.is_alive():
                return False
            if self._thread is thread:  # else the run chained to another one (``request``): wait for that too
                return True

    def _begin(self, trigger: str) -> None:
        self._cancel.clear()
        self._user_paused = self._again = False
        self._ignore_window = trigger in EXPLICIT_TRIGGERS
        self.trigger = trigger
        self.progress = self._new_progress()
        self.started_at = dt.datetime.now().replace(microsecond=0)
        self.meter.reset()
        self._sample()

    # --- pausing ------------------------------------------------------------------------------------------------
    def _outside_window(self) -> bool:
        return self.window is not None and not self.window.contains(self.clock())

    def pause_reason(self) -> str | None:
        """Why the running run is (or is about to be) paused, or None."""
        if not self.running or self._cancel.is_set():
            return None
        if self._user_paused:
            return "paused by user"
        waiting = self._waits_for()
        if waiting:
            return waiting
        if not self._ignore_window and self._outside_window():
            return f"outside scan window {self.window}"
        return None

    def _pause_point(self) -> None:
        """Called by the work where pausing is safe; blocks while the run should stay paused."""
        self._sample()
        reason = self.pause_reason()
        if reason is None:
            return
        self._before_pause()
        log.info("%s paused (%s)", self.NAME, reason)
        with self._cond:
            while self.pause_reason() is not None:
                timeout = self.PAUSE_POLL_S
                if self.window is not None and not self._user_paused:  # the window opens by itself
                    timeout = min(timeout, max(1.0, self.window.seconds_until_open(self.clock())))
                self._cond.wait(timeout)
        self.meter.reset()  # the rate is of working time, not of the pause
        self._sample()
        log.info("%s resumed" if not self._cancel.is_set() else "paused %s cancelled", self.NAME)

    def _rest(self, seconds: float) -> None:
        """Sleep between units (a duty cycle); a cancel cuts it short."""
        self._cancel.wait(seconds)

    # --- running ------------------------------------------------------------------------------------------------
    def _run_in_thread(self) -> None:
        with contextlib.suppress(Exception):  # logged and recorded as the last run by _run_claimed: the thread ends
            self._run_claimed(None)

    def _run_claimed(self, on_progress: Callable[[Any], None] | None) -> Any:
        started = time.monotonic()
        rerun = False
        try:
            while True:
                outcome = self._work(on_progress)
                with self._lock:
                    again, self._again = self._again, False
                if not again or outcome.cancelled:
                    break
            log.info("%s finished: %s", self.NAME, outcome.summary())
            record = {"seconds": round(outcome.seconds, 2), "summary": outcome.summary(), **self._details(outcome)}
            self._finish({**record, "cancelled": outcome.cancelled, "error": None})
            return outcome
        except Exception as exc:
            log.exception("%s failed", self.NAME)
            record = {"seconds": round(time.monotonic() - started, 2)}
            record.update(summary=f"failed: {type(exc).__name__}: {exc}", **self._details(None))
            self._finish({**record, "cancelled": False, "error": self._error_text(exc)})
            raise
        finally:
            with self._lock:
                self.progress = None
                self.finished += 1
                # Asked for after the run's last look at the flag: the new run starts below.
                rerun, self._again = self._again and not self._cancel.is_set(), False
            for listener in self.after_run:
                listener()
            if rerun:
                self.try_start(self.trigger or "again")

    # --- the last run -------------------------------------------------------------------------------------------
    def _finish(self, outcome: dict) -> None:
        finished_at = dt.datetime.now().replace(microsecond=0).isoformat()
        if self.RECORD_START:
            started_at = self.started_at.isoformat() if self.started_at else None
            self.last = {"started_at": started_at, "finished_at": finished_at, "trigger": self.trigger, **outcome}
        else:
            self.last = {"finished_at": finished_at, **outcome}
        self._kept.keep(self.last)

    # --- reporting ----------------------------------------------------------------------------------------------
    def _sample(self) -> None:
        """Note the units done now for the rate (called at pause points and when the work reports progress)."""
        units = self._units() if self.running else None
        if units is not None:
            self.meter.sample(units[0])

    def snapshot(self) -> JobSnapshot:
        """The job's state now: idle, running or paused (and why), the live progress, rate and ETA, the last run."""
        progress = self.progress
        reason = self.pause_reason() if progress is not None else None
        units = self._units() if progress is not None else None
        rate = self.meter.rate(units[0]) if units is not None and reason is None else None
        return JobSnapshot(
            state="idle" if progress is None else ("paused" if reason else "running"),
            paused_reason=reason,
            progress=progress,
            started_at=self.started_at.isoformat() if progress is not None and self.started_at else None,
            trigger=self.trigger if progress is not None else None,
            rate=round(rate, 2) if rate is not None else None,
            eta_s=RateMeter.eta(*units, rate) if units is not None else None,
            last=self.last,
        )

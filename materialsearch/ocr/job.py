"""The OCR pass: a second background pass after embedding that reads the text in indexed photos.

Photos become searchable by meaning first (the scan); their text arrives here. The scan has already run the
detector pre-pass on its own decode of each photo (``items.has_text``), so the pass first settles, unopened, the
waiting photos it found text-free — unless a zero-shot tag says they show text (``ocrstore.TEXT_TAGS``; the tags
are brought up to date first). It then walks the rest (``OcrStore.waiting``: no state yet, or state of another
version of the file) in item-id order and reads each file as it is now (``OcrEngine.read_file``: photos the scan
found text in, or tagged, go straight to full detection + recognition; photos without a verdict get the small
decode and the pre-pass first), committing a batch of ``BATCH`` outcomes per transaction. A crash loses at most
the batch in hand; the next pass starts where the committed ones end, and text is stored once.

One photo's failure (an ``OcrError``: too small, too large, 16-bit, CMYK, animated, corrupt; or any exception from
the OCR runtime) is stored as that photo's OCR error and the pass goes on. A file that cannot be opened now (an
unreachable folder) is left waiting, without an error, for a later pass. Videos are not read (see README).

``OcrManager`` runs at most one pass at a time in the background (or in the caller's thread), pauses it between
batches (by hand, while a scan runs, outside MS_SCAN_WINDOW), resumes and cancels it, and reports its progress.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field

from materialsearch.catalog.text import OcrCounts, OcrJob, OcrRead, OcrStore
from materialsearch.ocr.engine import OcrConfig, OcrEngine, OcrError

log = logging.getLogger(__name__)

BATCH = 8  # photos per committed transaction: a crash re-reads at most this many (≈ 8 s of text-heavy photos)
# Photos the scan found no text in are settled without being opened, this many per transaction.
SETTLE_CHUNK = 2000
LAST_PASS_KEY = "last_ocr_pass"
OcrPassState = Literal["idle", "reading", "paused"]


@dataclasses.dataclass
class OcrPassStats:
    """What one OCR pass did."""

    read: int = 0
    with_text: int = 0
    errors: int = 0
    unreadable: int = 0  # files that could not be opened now: left waiting for a later pass
    cancelled: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        text = f"{self.read} photos read, {self.with_text} with text, {self.errors} OCR errors"
        text += f", {self.unreadable} unreadable now" if self.unreadable else ""
        return text + f" in {self.seconds:.1f}s" + (" (cancelled)" if self.cancelled else "")


@dataclasses.dataclass
class OcrLive:
    """Live state of a running pass (read by the status endpoint and the CLI)."""

    done: int = 0
    total: int = 0
    errors: int = 0
    current: str = ""


@dataclasses.dataclass(frozen=True)
class OcrProgress:
    """The running OCR pass."""

    done: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=0, description="Photos waiting when the pass started.")]
    errors: Annotated[int, Field(ge=0)]
    current: Annotated[str, Field(description="Photo being read.")]
    started_at: Annotated[str | None, Field(description="ISO 8601 local time.")]
    trigger: Annotated[str | None, Field(description="manual, after scan, start-up…")]
    rate: Annotated[float | None, Field(ge=0, description="Photos/s since the pass (re)started.")] = None


@dataclasses.dataclass(frozen=True)
class LastOcrPass:
    """The last finished OCR pass."""

    finished_at: str
    seconds: Annotated[float, Field(ge=0)]
    summary: str
    cancelled: bool
    error: Annotated[str | None, Field(description="Why it failed.")]


@dataclasses.dataclass(frozen=True)
class OcrStatus:
    """The OCR pass: whether it is on, its state and progress, the counts, the last finished pass."""

    enabled: Annotated[bool, Field(description="MS_OCR.")]
    state: OcrPassState
    paused_reason: Annotated[str | None, Field(description="By a user, while a scan runs, outside MS_SCAN_WINDOW.")]
    progress: Annotated[OcrProgress | None, Field(description="The running pass (null when idle).")]
    counts: OcrCounts
    last: Annotated[LastOcrPass | None, Field(description="The last finished pass (null before the first).")]


class OcrPass:
    """Reads the text of every photo waiting for it; holds no state between passes besides its collaborators."""

    def __init__(
        self,
        settings,
        store: OcrStore,
        engine: OcrEngine | None = None,
        refresh_tags: Callable[[], object] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.engine = engine or OcrEngine(OcrConfig(threads=settings.ocr_threads))
        # Brings the zero-shot tags up to date (``Tagger.refresh``), so a photo tagged as showing text is read in
        # full before the photos the pre-pass found text-free are settled unopened.
        self.refresh_tags = refresh_tags

    def run(
        self,
        live: OcrLive,
        should_stop: Callable[[], bool],
        pause_point: Callable[[], None],
        rest: Callable[[float], None],
    ) -> OcrPassStats:
        """One sweep over the waiting photos, a committed batch at a time; ``rest(seconds)`` keeps MS_OCR_DUTY."""
        started = time.monotonic()
        stats = OcrPassStats()
        self.engine.load()
        live.total = self.store.waiting_count()
        self._bring_tags_up_to_date()
        self._settle_text_free(live, stats, should_stop, pause_point)
        after = 0
        while not stats.cancelled:
            pause_point()
            if should_stop():
                stats.cancelled = True
                break
            jobs = self.store.waiting(after, BATCH)
            if not jobs:
                break
            after = jobs[-1].item_id
            reads = []
            for job in jobs:
                if should_stop():
                    break  # the batch's finished reads are still written
                live.current = job.path
                began = time.monotonic()
                read = self.read(job)
                if read is None:
                    stats.unreadable += 1
                else:
                    reads.append(read)
                live.done += 1
                duty = self.settings.ocr_duty
                if duty < 1:
                    rest((time.monotonic() - began) * (1 / duty - 1))
            self.store.write(reads)
            for read in reads:
                stats.read += 1
                stats.with_text += bool(read.lines)
                stats.errors += read.error is not None
            live.errors = stats.errors
        stats.seconds = time.monotonic() - started
        return stats

    def _bring_tags_up_to_date(self) -> None:
        if self.refresh_tags is None:
            return
        try:
            self.refresh_tags()
        except Exception:  # the tags as stored still count; the tagger reports its own failure in the status
            log.exception("OCR: computing the zero-shot tags failed; reading with the tags as stored")

    def _settle_text_free(self, live: OcrLive, stats: OcrPassStats, should_stop, pause_point) -> None:
        """Settle the photos the scan's pre-pass found no text in, a committed chunk at a time."""
        while True:
            pause_point()
            if should_stop():
                stats.cancelled = True
                return
            settled = self.store.settle_text_free(SETTLE_CHUNK)
            if not settled:
                return
            stats.read += settled
            live.done += settled

    def read(self, job: OcrJob) -> OcrRead | None:
        """One photo's lines, or its OCR error; None when the file cannot be opened now (it stays waiting)."""
        if job.has_text is False and not job.text_tagged:  # the scan's pre-pass found no text in this version
            return OcrRead(job, [])
        try:
            with open(job.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            log.warning("OCR: cannot open %s now: %s", job.path, exc)
            return None
        try:
            result = self.engine.read_file(
                data, max_pixels=self.settings.max_image_pixels, has_text=bool(job.has_text) or job.text_tagged
            )
        except OcrError as exc:
            log.warning("OCR: %s: %s", job.path, exc)
            return OcrRead(job, [], str(exc))
        except Exception as exc:  # a crash inside the OCR runtime on one file costs that file only
            log.exception("OCR failed on %s", job.path)
            return OcrRead(job, [], f"OCR failed: {type(exc).__name__}: {str(exc)[:200]}")
        return OcrRead(job, result.lines)


class OcrManager:
    """Runs at most one OCR pass at a time; pauses it while a scan runs, by hand, or outside the scan window."""

    def __init__(
        self, ocr_pass: OcrPass, meta, *, enabled: bool, owner: bool, scans, window=None, clock=dt.datetime.now
    ):
        self.ocr_pass = ocr_pass
        self.meta = meta  # the catalog's Store: get_meta/set_meta keep the last pass across restarts
        self.enabled = enabled
        self.owner = owner
        self.scans = scans  # the ScanManager: the pass waits while it runs
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._user_paused = False
        self._ignore_window = False
        self._again = False  # a scan finished during the pass: sweep once more for what it changed
        self.live: OcrLive | None = None
        self.started_at: dt.datetime | None = None
        self._working_since = 0.0
        self._done_since = 0
        self.trigger: str | None = None
        self.last: dict | None = self._load_last()

    @property
    def running(self) -> bool:
        """Whether a pass is in progress."""
        return self.live is not None

    # --- control ----------------------------------------------------------------------------------------------
    def refusal(self) -> str | None:
        """Why a pass cannot start now, or None."""
        if not self.enabled:
            return "OCR is off (MS_OCR=off)"
        if not self.owner:
            return "this process does not own the data dir and does not read text"
        return "an OCR pass is already running" if self.running else None

    def try_start(self, trigger: str = "manual") -> str | None:
        """Start a pass in a background thread; None when started, else why not."""
        with self._lock:
            refusal = self.refusal()
            if refusal:
                return refusal
            self._begin(trigger)
            self._thread = threading.Thread(target=self._run_claimed, name="ocr", daemon=True)
            self._thread.start()
            return None

    def run(self, trigger: str = "command line") -> OcrPassStats:
        """A pass in this thread (the CLI); RuntimeError when one cannot start."""
        with self._lock:
            refusal = self.refusal()
            if refusal:
                raise RuntimeError(refusal)
            self._begin(trigger)
        return self._run_claimed()

    def after_scan(self) -> None:
        """A scan finished: read what it added or changed (now, or once more at the end of the running pass)."""
        with self._cond:
            if self.running:
                self._again = True
                self._cond.notify_all()
                return
        self.try_start("after scan")

    def pause(self) -> bool:
        """Pause the running pass after its current batch; False when none runs."""
        return self._set_paused(True)

    def resume(self) -> bool:
        """Resume a paused pass (also outside the scan window); False when none runs."""
        return self._set_paused(False)

    def _set_paused(self, paused: bool) -> bool:
        with self._cond:
            if not self.running:
                return False
            self._user_paused = paused
            if not paused and self._outside_window():
                self._ignore_window = True
            self._cond.notify_all()
        return True

    def cancel(self) -> bool:
        """Stop the running pass after the photo in hand (what is read is kept)."""
        if not self.running:
            return False
        self._cancel.set()
        with self._cond:
            self._cond.notify_all()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background pass (if any) ends; True if none runs any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _begin(self, trigger: str) -> None:
        self._cancel.clear()
        self._user_paused = self._again = False
        self._ignore_window = trigger in {"manual", "command line"}
        self.trigger = trigger
        self.live = OcrLive()
        self.started_at = dt.datetime.now().replace(microsecond=0)
        self._working_since, self._done_since = time.monotonic(), 0

    # --- pausing ----------------------------------------------------------------------------------------------
    def _outside_window(self) -> bool:
        return self.window is not None and not self.window.contains(self.clock())

    def pause_reason(self) -> str | None:
        """Why the running pass is (or is about to be) paused, or None."""
        if not self.running or self._cancel.is_set():
            return None
        if self._user_paused:
            return "paused by user"
        if self.scans is not None and self.scans.running:
            return "waiting for the scan to finish (photos are searchable by meaning first)"
        if not self._ignore_window and self._outside_window():
            return f"outside scan window {self.window}"
        return None

    def _pause_point(self) -> None:
        if self.pause_reason() is None:
            return
        with self._cond:
            while self.pause_reason() is not None:
                self._cond.wait(5.0)  # a scan's end or the window's opening is noticed within seconds
        self._working_since, self._done_since = time.monotonic(), self.live.done if self.live else 0

    def _rest(self, seconds: float) -> None:
        self._cancel.wait(seconds)

    # --- running ----------------------------------------------------------------------------------------------
    def _run_claimed(self) -> OcrPassStats:
        started = time.monotonic()
        try:
            while True:
                stats = self.ocr_pass.run(self.live, self._cancel.is_set, self._pause_point, self._rest)
                with self._cond:
                    again, self._again = self._again, False
                if not again or stats.cancelled:
                    break
            log.info("OCR pass finished: %s", stats.summary())
            self._finish(stats.seconds, stats.summary(), stats.cancelled, None)
            return stats
        except Exception as exc:
            log.exception("OCR pass failed")
            self._finish(time.monotonic() - started, f"failed: {type(exc).__name__}: {exc}", False, str(exc))
            raise
        finally:
            with self._lock:
                self.live = None

    def _finish(self, seconds: float, summary: str, cancelled: bool, error: str | None) -> None:
        self.last = {
            "finished_at": dt.datetime.now().replace(microsecond=0).isoformat(),
            "seconds": round(seconds, 2),
            "summary": summary,
            "cancelled": cancelled,
            "error": error,
        }
        try:
            self.meta.set_meta(LAST_PASS_KEY, json.dumps(self.last))
        except Exception:
            # Remembering the last pass across restarts is a nicety; it must not turn a finished pass into a failure.
            log.exception("cannot record the last OCR pass in the database")

    def _load_last(self) -> dict | None:
        raw = self.meta.get_meta(LAST_PASS_KEY)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            log.warning("ignoring an unreadable record of the last OCR pass")
            return None

    # --- reporting --------------------------------------------------------------------------------------------
    def status(self) -> OcrStatus:
        """State of the pass, its progress, the counts and the last finished pass."""
        live = self.live
        reason = self.pause_reason() if live is not None else None
        progress = None
        if live is not None:
            elapsed = time.monotonic() - self._working_since
            rate = (live.done - self._done_since) / elapsed if elapsed >= 1 and not reason else None
            progress = OcrProgress(
                done=live.done,
                total=max(live.total, live.done),
                errors=live.errors,
                current=live.current,
                started_at=self.started_at.isoformat() if self.started_at else None,
                trigger=self.trigger,
                rate=round(rate, 2) if rate is not None else None,
            )
        return OcrStatus(
            enabled=self.enabled,
            state="idle" if live is None else ("paused" if reason else "reading"),
            paused_reason=reason,
            progress=progress,
            counts=self.ocr_pass.store.counts(),
            last=LastOcrPass(**self.last) if self.last else None,
        )

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

``OcrManager`` is the pass as a background job (``jobs.job.BackgroundJob``): at most one at a time, in the background
(or in the caller's thread), paused between batches (by hand, while a scan runs, outside MS_SCAN_WINDOW), resumed,
cancelled, reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field

from materialsearch.catalog.text import OcrCounts, OcrJob, OcrRead, OcrStore
from materialsearch.jobs.job import BackgroundJob
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
    rate: Annotated[float | None, Field(ge=0, description="Photos/s, last minute.")] = None


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


class OcrManager(BackgroundJob):
    """Runs at most one OCR pass at a time (``jobs.job.BackgroundJob``); pauses it while a scan runs, by hand, or
    outside the scan window. The rate counts the photos read or settled."""

    NAME = "OCR pass"
    RUNNING_REFUSAL = "an OCR pass is already running"
    LAST_KEY = LAST_PASS_KEY
    PAUSE_POLL_S = 5.0  # a scan's end is noticed within seconds
    refusal = BackgroundJob.why_not_start  # why a pass cannot start now, or None

    def __init__(
        self, ocr_pass: OcrPass, meta, *, enabled: bool, owner: bool, scans, window=None, clock=dt.datetime.now
    ):
        self.ocr_pass = ocr_pass
        self.enabled = enabled
        self.scans = scans  # the ScanManager: the pass waits while it runs
        # meta: the catalog's Store; get_meta/set_meta keep the last pass across restarts
        not_owner = "this process does not own the data dir and does not read text"
        super().__init__(owner=owner, not_owner=not_owner, meta=meta, window=window, clock=clock)

    @property
    def live(self) -> OcrLive | None:
        """The running pass's live state (None when idle)."""
        return self.progress

    def after_scan(self) -> None:
        """A scan finished: read what it added or changed (now, or once more at the end of the running pass)."""
        self.request("after scan")

    # --- the pass's part of the lifecycle -----------------------------------------------------------------------
    def _new_progress(self) -> OcrLive:
        return OcrLive()

    def _units(self) -> tuple[int, int] | None:
        live = self.progress
        return (live.done, max(live.total, live.done)) if live is not None else None

    def _unavailable(self) -> str | None:
        return None if self.enabled else "OCR is off (MS_OCR=off)"

    def _waits_for(self) -> str | None:
        if self.scans is not None and self.scans.running:
            return "waiting for the scan to finish (photos are searchable by meaning first)"
        return None

    def _work(self, on_progress=None) -> OcrPassStats:
        return self.ocr_pass.run(self.progress, self._cancel.is_set, self._pause_point, self._rest)

    def _error_text(self, exc: Exception) -> str:
        return str(exc)

    # --- reporting ----------------------------------------------------------------------------------------------
    def status(self) -> OcrStatus:
        """State of the pass, its progress, the counts and the last finished pass."""
        now = self.snapshot()
        live: OcrLive | None = now.progress
        progress = None
        if live is not None:
            progress = OcrProgress(
                done=live.done,
                total=max(live.total, live.done),
                errors=live.errors,
                current=live.current,
                started_at=now.started_at,
                trigger=now.trigger,
                rate=now.rate,
            )
        return OcrStatus(
            enabled=self.enabled,
            state="reading" if now.state == "running" else now.state,
            paused_reason=now.paused_reason,
            progress=progress,
            counts=self.ocr_pass.store.counts(),
            last=LastOcrPass(**now.last) if now.last else None,
        )

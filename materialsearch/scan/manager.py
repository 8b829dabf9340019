"""Running scans: the scan as a background job (``jobs.job.BackgroundJob``), with its schedule and its status."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from materialsearch.catalog.core import Catalog
from materialsearch.jobs.job import BackgroundJob, JobRefused
from materialsearch.jobs.schedule import ScanScheduler, ScanWindow
from materialsearch.scan.reports import LastScan, ScanProgress, ScanSchedule, ScanStatus
from materialsearch.scan.scanner import Phase, Progress, Scanner, ScanStats

log = logging.getLogger(__name__)

LAST_SCAN_KEY = "last_scan"


class ScanRefused(JobRefused):
    """A scan cannot start: one is running, or another process scans this data dir."""


class ScanManager(BackgroundJob):
    """Runs at most one scan at a time, in the background or in the caller's thread; pauses, resumes, reports.

    Pausing blocks the scan thread between committed batches (no CPU used) until resumed or cancelled. It is
    paused when someone asks, and (for scheduled and start-up scans) while outside the scan window. The rate
    counts the items embedded.
    """

    NAME = "scan"
    RUNNING_REFUSAL = "a scan is already running"
    REFUSED = ScanRefused
    LAST_KEY = LAST_SCAN_KEY
    RECORD_START = True

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
        self.refusal = refusal  # why this process may not scan (another one holds the data dir)
        self.scheduler: ScanScheduler | None = None  # scans started on MS_SCAN_CRON / MS_SCAN_INTERVAL
        not_owner = refusal or "this process may not scan this data dir"
        super().__init__(owner=owner, not_owner=not_owner, meta=catalog.store, window=window, clock=clock)
        self.after_scan = self.after_run  # called (in the scan's thread) when a scan has ended

    # --- the scan's part of the lifecycle -----------------------------------------------------------------------
    def _new_progress(self) -> Progress:
        return Progress()

    def _units(self) -> tuple[int, int] | None:
        progress = self.progress
        if progress is None or progress.phase != Phase.EMBEDDING:
            return None
        return progress.done, progress.total

    def _before_pause(self) -> None:
        # A pause may last all day: save the index first, so a crash meanwhile does not mean a rebuild.
        self.catalog.checkpoint()

    def _on_stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()  # no scheduled start can arrive after this

    def _work(self, on_progress: Callable[[Progress], None] | None) -> ScanStats:
        def report(progress: Progress) -> None:
            self._sample()
            if on_progress:
                on_progress(progress)

        return self.scanner.scan(self.progress, self._cancel.is_set, report, self._pause_point)

    def _details(self, outcome: ScanStats | None) -> dict:
        return {"stats": dataclasses.asdict(outcome) if outcome is not None else None}  # warnings with their codes

    # --- reporting ----------------------------------------------------------------------------------------------
    def status(self) -> ScanStatus:
        """State of the current scan (idle|scanning|paused), its progress, the last finished one, the schedule."""
        now = self.snapshot()
        progress: Progress | None = now.progress
        current = None
        if progress is not None:
            current = ScanProgress(
                phase=progress.phase,
                done=progress.done,
                total=progress.total,
                found=progress.found,
                rate=now.rate,
                eta_s=now.eta_s,
                current=progress.current,
                errors=progress.errors,
                started_at=now.started_at,
                trigger=now.trigger,
            )
        scheduler = self.scheduler
        next_run = scheduler.next_run() if scheduler is not None else None
        return ScanStatus(
            state="scanning" if now.state == "running" else now.state,
            paused_reason=now.paused_reason,
            waiting=(getattr(self.scanner.encoder, "waiting", None) or self.scanner.waiting)
            if now.state == "running"
            else None,
            progress=current,
            last=LastScan.from_record(now.last) if now.last else None,
            next_run=next_run.isoformat() if next_run else None,
            schedule=ScanSchedule(
                active=bool(scheduler and scheduler.active),
                cron=self.scanner.settings.scan_cron or None,
                interval_s=self.scanner.settings.scan_interval or None,
                window=str(self.window) if self.window else None,
            ),
            ocr_prelook=self.scanner.ocr_prelook,
            can_scan=self.owner,
            refusal=None if self.owner else self.refusal,
        )

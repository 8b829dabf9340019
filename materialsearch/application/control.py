"""Starting and steering the background jobs a person controls: the library scan and the OCR pass. A pause,
resume or cancel answers the job's status, or None when no such job runs."""

from __future__ import annotations

from materialsearch.application.errors import ApiError, BadRequest
from materialsearch.errors import ApiErrorCode
from materialsearch.ocr.job import OcrManager, OcrStatus
from materialsearch.scan.manager import ScanManager
from materialsearch.scan.reports import ScanStatus

CONFLICT = 409  # another job, or another process, holds what was asked for


class JobControl:
    """The scan and OCR-pass control use cases."""

    def __init__(self, settings, scans: ScanManager, ocr: OcrManager):
        self.settings, self.scans, self.ocr = settings, scans, ocr

    # --- the scan -----------------------------------------------------------------------------------------------
    def start_scan(self) -> ScanStatus:
        """Start a background scan of the library; refused while one runs or another process owns the data dir."""
        if not self.settings.library:
            raise BadRequest("no library configured: set MS_LIBRARY to the folder(s) to index", ApiErrorCode.NO_LIBRARY)
        refusal = self.scans.try_start("manual")
        if refusal:
            code = ApiErrorCode.SCAN_RUNNING if self.scans.owner else ApiErrorCode.DATA_DIR_IN_USE
            raise ApiError(CONFLICT, code, refusal)
        return self.scans.status()

    def pause_scan(self) -> ScanStatus | None:
        """Pause the running scan after its current batch (the index is saved first)."""
        return self.scans.status() if self.scans.pause() else None

    def resume_scan(self) -> ScanStatus | None:
        """Resume a paused scan (also outside the scan window)."""
        return self.scans.status() if self.scans.resume() else None

    def cancel_scan(self) -> ScanStatus | None:
        """Stop the running scan after its current batch, keeping what is done."""
        return self.scans.status() if self.scans.cancel() else None

    # --- the OCR pass -------------------------------------------------------------------------------------------
    def start_ocr(self) -> OcrStatus:
        """Start reading the text of the photos still waiting for it."""
        refusal = self.ocr.try_start("manual")
        if refusal:
            raise ApiError(CONFLICT, ApiErrorCode.for_status(CONFLICT), refusal)
        return self.ocr.status()

    def pause_ocr(self) -> OcrStatus | None:
        """Pause the OCR pass after its current batch."""
        return self.ocr.status() if self.ocr.pause() else None

    def resume_ocr(self) -> OcrStatus | None:
        """Resume a paused OCR pass (it still waits for a running scan)."""
        return self.ocr.status() if self.ocr.resume() else None

    def cancel_ocr(self) -> OcrStatus | None:
        """Stop the OCR pass after the photo in hand, keeping the text read so far."""
        return self.ocr.status() if self.ocr.cancel() else None

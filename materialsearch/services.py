"""The app's services, built once per process by the app factory or the CLI (never at import time)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time

from .decode import configure_pillow
from .embed import Encoder, make_encoder
from .index import VectorIndex
from .scan import Progress, Scanner, ScanStats, decode_sizes
from .search import SearchService
from .store import Store
from .thumbnails import Renditions

log = logging.getLogger(__name__)

MODEL_IDENTITY_KEY = "model_identity"


class ScanManager:
    """Runs at most one scan at a time, in the background or in the caller's thread, and reports on it."""

    def __init__(self, scanner: Scanner):
        self.scanner = scanner
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.progress: Progress | None = None
        self.started_at: dt.datetime | None = None
        self.last: dict | None = None

    @property
    def running(self) -> bool:
        """Whether a scan is in progress."""
        return self.progress is not None

    def start(self) -> bool:
        """Start a scan in a background thread; False if one is already running."""
        with self._lock:
            if self.running:
                return False
            self._begin()
            self._thread = threading.Thread(target=self._run_claimed, name="scan", daemon=True)
            self._thread.start()
            return True

    def run(self, on_progress=None) -> ScanStats:
        """Scan in this thread (the CLI); raises RuntimeError if another scan is running."""
        with self._lock:
            if self.running:
                raise RuntimeError("a scan is already running")
            self._begin()
        return self._run_claimed(on_progress)

    def cancel(self) -> bool:
        """Ask a running scan to stop after its current batch."""
        if not self.running:
            return False
        self._cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background scan (if any) finishes."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _begin(self) -> None:
        self._cancel.clear()
        self.progress = Progress()
        self.started_at = dt.datetime.now().replace(microsecond=0)

    def _run_claimed(self, on_progress=None) -> ScanStats:
        started = time.monotonic()
        try:
            stats = self.scanner.scan(self.progress, self._cancel.is_set, on_progress)
            log.info("scan finished: %s", stats.summary())
            self.last = {
                "finished_at": dt.datetime.now().replace(microsecond=0).isoformat(),
                "seconds": round(stats.seconds, 2),
                "summary": stats.summary(),
                "stats": stats.__dict__.copy(),
                "error": None,
            }
            return stats
        except Exception as exc:
            log.exception("scan failed")
            self.last = {
                "finished_at": dt.datetime.now().replace(microsecond=0).isoformat(),
                "seconds": round(time.monotonic() - started, 2),
                "summary": f"failed: {type(exc).__name__}: {exc}",
                "stats": None,
                "error": f"{type(exc).__name__}: {exc}",
            }
            raise
        finally:
            with self._lock:
                self.progress = None

    def status(self) -> dict:
        """State of the current scan and the last finished one."""
        progress = self.progress
        current = None
        if progress is not None:
            current = {
                "phase": progress.phase,
                "done": progress.done,
                "total": progress.total,
                "current": progress.current,
                "errors": progress.errors,
                "started_at": self.started_at.isoformat() if self.started_at else None,
            }
        return {"state": "scanning" if progress is not None else "idle", "progress": current, "last": self.last}


class Services:
    """Everything a request or a command needs, wired together."""

    def __init__(self, settings, encoder: Encoder | None = None):
        self.settings = settings
        configure_pillow()
        os.makedirs(settings.data_dir, exist_ok=True)
        self.store = Store(os.path.join(settings.data_dir, "materialsearch.db"))
        self.encoder = encoder or make_encoder(settings)
        self.encoder.load()
        self.model_change: str | None = None
        self._check_model()
        index_path = os.path.join(settings.data_dir, "index.faiss")
        self.index = VectorIndex(
            index_path,
            self.encoder.dim,
            self.encoder.identity,
            kind=settings.index_kind,
            ann_threshold=settings.ann_threshold,
            nprobe=settings.ivf_nprobe,
            sq8=settings.index_sq8,
        )
        self._open_index()
        self.renditions = Renditions(
            os.path.join(settings.data_dir, "thumbnails"),
            settings.thumbnail_size,
            settings.preview_size,
            settings.max_image_pixels,
        )
        self.search = SearchService(
            self.store, self.index, self.encoder, settings.max_image_pixels, decode_sizes(settings, self.encoder)
        )
        self.scanner = Scanner(settings, self.store, self.index, self.encoder, self.renditions)
        self.scans = ScanManager(self.scanner)

    def _check_model(self) -> None:
        identity = self.encoder.identity
        previous = self.store.get_meta(MODEL_IDENTITY_KEY)
        if previous is not None and previous != identity:
            count = self.store.mark_all_pending()
            self.model_change = (
                f"the model changed ({previous.split('|')[0]} → {identity.split('|')[0]}): "
                f"{count} items will be re-embedded by the next scan"
            )
            log.warning(self.model_change)
        self.store.set_meta(MODEL_IDENTITY_KEY, identity)

    def _open_index(self) -> None:
        expected = self.store.vector_checksum()
        if not self.index.load(expected):
            started = time.monotonic()
            self.index.rebuild(self.store.iter_vectors())
            self.index.save()
            log.info(
                "rebuilt the vector index from the database: %d vectors in %.1fs",
                self.index.ntotal,
                time.monotonic() - started,
            )

    def close(self) -> None:
        """Stop a running scan, save the index and release the database."""
        self.scans.cancel()
        self.scans.wait()
        self.index.save()
        self.store.close()

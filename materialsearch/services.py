"""The app's services, built once per process by the app factory or the CLI (never at import time)."""

from __future__ import annotations

import logging
import os
import threading
import time

from materialsearch.application.browsing import Browsing
from materialsearch.application.control import JobControl
from materialsearch.application.entries import ItemCompanions, ItemLookup
from materialsearch.application.files import ItemFiles
from materialsearch.application.overview import LibraryOverview
from materialsearch.application.people import PeopleDirectory
from materialsearch.application.review import DuplicateReview
from materialsearch.application.searching import Searching
from materialsearch.catalog.core import MODEL_IDENTITY_KEY, Catalog
from materialsearch.encoders import Encoder, make_encoder, make_query_encoders
from materialsearch.jobs.job import BackgroundJob
from materialsearch.jobs.schedule import ScanScheduler, window_of
from materialsearch.media.capture_time import fallback_zone
from materialsearch.media.decode import configure_pillow, decode_sizes, import_before_threads
from materialsearch.media.thumbnails import Renditions
from materialsearch.media.transcode import Transcoder
from materialsearch.ocr.engine import OcrConfig, OcrEngine
from materialsearch.ocr.job import OcrManager, OcrPass
from materialsearch.organise.classify import Classifier
from materialsearch.organise.duplicates import make_finder
from materialsearch.organise.faces import MODEL_VERSION as FACES_MODEL
from materialsearch.organise.people import FacesManager, FacesPass
from materialsearch.organise.places import LocationBackfill
from materialsearch.organise.tags import Tagger, label_set
from materialsearch.scan.manager import ScanManager
from materialsearch.scan.pipeline import bound_malloc
from materialsearch.scan.reports import Reindexing
from materialsearch.scan.scanner import Scanner
from materialsearch.scan.worker import roll_call
from materialsearch.search.fusion import FusedSearch
from materialsearch.search.service import SearchService
from materialsearch.search.understand import SentenceReader

log = logging.getLogger(__name__)

PENDING_CACHE_S = 1.0  # searches report re-indexing progress; counting pending items once a second is plenty


class Services:
    """Everything a request or a command needs, wired together.

    The process that gets the data dir's lock (``claim=True``, the default) owns it: it alone scans, schedules,
    and writes the index file. Any other opening of the same data dir serves searches read-only.
    """

    def __init__(self, settings, encoder: Encoder | None = None, claim: bool = True):
        self.settings = settings
        configure_pillow()
        bound_malloc()  # before any decode thread allocates
        import_before_threads()
        os.makedirs(settings.data_dir, exist_ok=True)
        self.lock = Catalog.ownership(settings.data_dir, settings.database_url)
        self.owner = claim and self.lock.acquire()
        self._closed = False
        self._pending_cache: tuple[float, int, tuple[bool, int]] | None = None
        try:
            self._open(settings, encoder, claim)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, settings, encoder: Encoder | None, claim: bool) -> None:
        if claim and not self.owner:
            refusal = (
                f"{self.lock.holder()} owns {'the PostgreSQL catalog' if settings.database_url else settings.data_dir}"
                " and does its scanning (one scanner per catalog): "
                "scan through its web page or API, or stop it first"
            )
            log.warning("%s; this process only searches", refusal)
        else:
            refusal = None if self.owner else "opened read-only: this process does not scan"
        labels = label_set(settings.tags_file, settings.tags_replace)  # a bad MS_TAGS_FILE fails before opening
        store = Catalog.open_store(settings.data_dir, settings.database_url)
        try:
            # A measured backend keeps the kind of vectors the catalog holds unless another is much faster.
            self.encoder = encoder or make_encoder(settings, catalog_identity=store.get_meta(MODEL_IDENTITY_KEY))
            model = self.encoder.describe()  # loads it: a model that cannot load fails the start here
            index = Catalog.vector_index(settings.data_dir, model.dim, model.identity, settings, store)
            self.catalog = Catalog(store, index, owner=self.owner)
            self.model_change = self.catalog.open()
        except BaseException:
            store.close()
            raise
        # Readers (search, the web layer) use the two directly; writes go through the catalog.
        self.store, self.index = store, index
        self.renditions = Renditions(
            os.path.join(settings.data_dir, "thumbnails"),
            settings.thumbnail_size,
            settings.preview_size,
            settings.max_image_pixels,
        )
        self.duplicates = make_finder(settings, store, self.renditions)
        self.vectors = self.catalog.vectors
        self.search = SearchService(
            self.store,
            self.vectors,
            self.encoder,
            settings.max_image_pixels,
            decode_sizes(settings, self.encoder.describe().input_size),
            settings.stack_cosine,
            make_query_encoders(settings, self.encoder),  # loaded here: the first query does not wait for them
        )
        self.transcoder = Transcoder(
            os.path.join(settings.data_dir, "transcodes"),
            settings.transcode_cache_mb * 1024 * 1024,
            threads=settings.decode_threads,
        )
        # One OCR engine: the scan takes the pre-pass's verdict with it on its own decode, the OCR pass reads text.
        self.ocr_engine = OcrEngine(OcrConfig(threads=settings.ocr_threads))
        self.scanner = Scanner(
            settings, self.catalog, self.encoder, self.renditions, self.ocr_engine if settings.ocr else None
        )
        self.work_queue = self.catalog.work_queue(settings.worker_lease)  # None on SQLite
        self.scans = ScanManager(
            self.scanner, self.catalog, owner=self.owner, refusal=refusal, window=window_of(settings)
        )
        self.scheduler: ScanScheduler | None = None
        self.classifier = Classifier(self.encoder)
        self.tagger = Tagger(self.store, self.encoder, labels, busy=lambda: self.scans.running)
        self.ocr_store = store.text
        self.fused = FusedSearch(self.search, self.ocr_store)  # text= and the text side of q=
        self.ocr = OcrManager(
            OcrPass(settings, self.ocr_store, self.ocr_engine, refresh_tags=self.tagger.refresh),
            store,
            enabled=settings.ocr,
            owner=self.owner,
            scans=self.scans,
            window=window_of(settings),
        )
        # Faces and people: a background pass after each scan (off the scan's pipeline).
        self.faces = FacesManager(
            FacesPass(settings, store.faces),
            store,
            enabled=settings.faces,
            owner=self.owner,
            scans=self.scans,
            window=window_of(settings),
        )
        # Items indexed before places: their locations are read (metadata only) in the background.
        self.backfill = LocationBackfill(self.store, owner=self.owner)
        # Every background job, in the order closing stops them: the scan first (its end would start the others).
        self.jobs: tuple[BackgroundJob, ...] = (self.scans, self.ocr, self.faces, self.tagger, self.backfill)
        self._open_use_cases(settings)

    def _open_use_cases(self, settings) -> None:
        """The application layer (``materialsearch.application``): what the web layer and the CLI call."""
        self.tokens = self.catalog.tokens  # API tokens (the login guard checks them)
        lookup, companions = ItemLookup(self.store, settings), ItemCompanions(self.store, self.tagger)
        reader = SentenceReader(self.tagger.labels, settings.seasons, fallback_zone(settings.timezone))
        threading.Thread(target=reader.warm, name="sentence vocabulary", daemon=True).start()
        self.searching = Searching(
            self.search, self.fused, self.classifier, self.renditions, companions, self.reindexing, reader
        )
        self.browsing = Browsing(lookup, companions, self.search, self.ocr_store)
        self.item_files = ItemFiles(lookup, self.renditions, self.transcoder, settings)
        self.overview = LibraryOverview(
            settings,
            self.store,
            self.index,
            self.encoder,
            self.scans,
            self.ocr,
            self.tagger,
            self.reindexing,
            self.faces,
            lambda: roll_call(self.work_queue),
        )
        self.job_control = JobControl(settings, self.scans, self.ocr)
        covers = os.path.join(settings.data_dir, "covers")
        self.people = PeopleDirectory(self.store.faces, lookup, settings.max_image_pixels, covers)
        self.duplicate_review = DuplicateReview(self.duplicates, self.store, companions)

    # --- running by itself ------------------------------------------------------------------------------------
    def start_background(self) -> None:
        """In the serving process: start the scan schedule, and the start-up scan or model re-embedding."""
        if not self.owner:
            log.warning("not scanning or scheduling: %s", self.scans.refusal)
            return
        # The tags follow each scan, and are computed now when the labels, the model or the vectors changed.
        self.scans.after_scan.append(self.tagger.request)
        self.tagger.try_start("start-up")
        self.backfill.try_start("start-up")
        if not self.settings.library:
            log.warning("MS_LIBRARY is not set: nothing will be indexed until it is")
            return
        if self.scheduler is None:
            self.scheduler = ScanScheduler(self.settings, self.scans.try_start)
            self.scheduler.start()
            self.scans.scheduler = self.scheduler
        if self.pending_count(fresh=True):
            self.scans.try_start("model change")  # re-embed now (keeping to the window), whatever MS_SCAN_ON_START says
        elif self.settings.scan_on_start:
            self.scans.try_start("start-up")
        if self.settings.ocr:  # the text of what is indexed follows each scan; at start-up, what is left of it
            self.scans.after_scan.append(self.ocr.request)
            if self.ocr_store.waiting_count():
                self.ocr.try_start("start-up")
        if self.settings.faces:  # the faces of what is indexed follow each scan; at start-up, what is left of them
            self.scans.after_scan.append(self.faces.request)
            if self.store.faces.waiting_count(FACES_MODEL):
                self.faces.try_start("start-up")

    def pending_count(self, fresh: bool = False) -> int:
        """Items waiting to be (re-)embedded with the current model.

        Only scans change it: the count is re-read when a scan starts or ends, and at most once a second while one
        runs (or always, in a process that does not own the data dir and cannot see the owner's scans).
        """
        cached = self._pending_cache
        now = time.monotonic()
        generation = (self.scans.running, self.scans.finished)
        if (
            fresh
            or cached is None
            or cached[2] != generation
            or ((generation[0] or not self.owner) and now - cached[0] > PENDING_CACHE_S)
        ):
            count = self.store.counts().pending
            cached = (now, count, generation)
            self._pending_cache = cached
        return cached[1]

    def reindexing(self, pending: int | None = None) -> Reindexing | None:
        """While items still wait for the current model (after a model change): how many, and a sentence.

        ``pending`` is the count when the caller has just read it; otherwise a count at most a second old is used.
        """
        pending = self.pending_count() if pending is None else pending
        if not pending:
            return None
        running = self.scans.running
        return Reindexing(
            pending=pending,
            running=running,
            message=(
                f"Re-indexing for the model {os.path.basename(self.settings.model)} "
                f"{'is in progress' if running else 'has not finished'}: {pending} items still to embed; "
                f"results come from the {self.index.ntotal} already embedded with it."
            ),
        )

    def close(self) -> None:
        """Stop every job (a running one after its current unit; the scan's schedule with it), wait for them, save
        the index, release everything."""
        if self._closed:
            return
        self._closed = True
        for job in self.jobs:  # stopped jobs start nothing more: a scan ended by closing starts no OCR pass
            job.stop()
        stop_waiting = getattr(self.encoder, "close", None)  # a scan waiting for an encoder service gives up
        if stop_waiting is not None:
            stop_waiting()
        for job in self.jobs:
            job.wait(job.STOP_WAIT_S)
        self.catalog.close()
        self.lock.release()

"""The library as a whole: its status (counts, scan, OCR pass, model, index), the files it could not index, its
folder trees, its places, its tags, and whether it answers at all."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from materialsearch.catalog.folders import FolderNode, folder_counts, folder_tree, real_roots
from materialsearch.catalog.store import ItemCounts, Store
from materialsearch.catalog.vector_index import VectorIndex
from materialsearch.encoders import Encoder
from materialsearch.errors import ProblemCode, legacy_code
from materialsearch.ocr.job import OcrManager, OcrStatus
from materialsearch.organise.people import FacesManager, FacesStatus
from materialsearch.organise.places import group_places
from materialsearch.organise.tags import TagCount, Tagger
from materialsearch.scan.manager import ScanManager
from materialsearch.scan.reports import (
    BackendDecision,
    LastScan,
    Reindexing,
    ScanStatus,
    ScanWarning,
    ScanWorkerStatus,
)


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """The embedding model: its name, architecture, vector length, where and how it runs, and how that was
    chosen; ``notice`` while re-embedding after a model change."""

    name: str
    arch: str
    dim: int
    device: str
    backend: str
    precision: str
    notice: str | None
    choice: BackendDecision


@dataclasses.dataclass(frozen=True)
class IndexFacts:
    """The vector index: how many vectors, its layout (flat or ivf), and whether an IVF is being built."""

    vectors: int
    layout: str
    building: bool


@dataclasses.dataclass(frozen=True)
class LibraryStatus:
    """Everything the status page shows."""

    counts: ItemCounts
    scan: ScanStatus
    model: ModelFacts
    reindexing: Reindexing | None
    index: IndexFacts
    library: tuple[str, ...]
    ocr: OcrStatus
    faces: FacesStatus
    workers: list[ScanWorkerStatus]


@dataclasses.dataclass(frozen=True)
class ProblemEntry:
    """A file that could not be indexed or was skipped, with its reason and stable code."""

    id: int
    path: str
    kind: str
    status: str
    reason: str | None
    error_code: ProblemCode
    size: int


@dataclasses.dataclass(frozen=True)
class Problems:
    """A page of problem files, how many there are, and what the last scan could not read."""

    files: tuple[ProblemEntry, ...]
    total: int
    unreachable: tuple[ScanWarning, ...]


@dataclasses.dataclass(frozen=True)
class PlaceSummary:
    """Countries with their cities (``organise.places.group_places``), how many items have a place, and the map
    tile URL template (None: the map is off)."""

    countries: tuple[dict[str, object], ...]
    located: int
    map_tiles: str | None


@dataclasses.dataclass(frozen=True)
class TagSummary:
    """The label set's tags with their counts (most first), whether they are current, being computed, and why
    the last computation failed (if it did)."""

    counts: tuple[TagCount, ...]
    current: bool
    computing: bool
    error: str | None


class LibraryOverview:
    """The library-wide use cases."""

    def __init__(
        self,
        settings,
        store: Store,
        index: VectorIndex,
        encoder: Encoder,
        scans: ScanManager,
        ocr: OcrManager,
        tagger: Tagger,
        reindexing: Callable[[int | None], Reindexing | None],
        faces: FacesManager,
        workers: Callable[[], list[ScanWorkerStatus]],
    ):
        self.settings, self.store, self.index, self.encoder = settings, store, index, encoder
        self.scans, self.ocr, self.tagger, self.reindexing = scans, ocr, tagger, reindexing
        self.faces, self.workers = faces, workers

    def status(self) -> LibraryStatus:
        """Counts, scan state and progress, last scan, model and index size, the OCR and faces passes."""
        counts = self.store.counts()
        reindexing = self.reindexing(counts.pending)
        return LibraryStatus(
            counts=counts,
            scan=self.scans.status(),
            model=self._model(reindexing),
            reindexing=reindexing,
            index=IndexFacts(
                vectors=self.index.ntotal,
                layout=self.index.layout["type"],  # flat (exact) or ivf
                building=self.index.building,  # an IVF being (re)built in the background
            ),
            library=tuple(self.settings.library),
            ocr=self.ocr.status(),
            faces=self.faces.status(),
            workers=self.workers(),
        )

    def _model(self, reindexing: Reindexing | None) -> ModelFacts:
        model = self.encoder.describe()
        return ModelFacts(
            name=os.path.basename(self.settings.model),  # a cn_clip name, or a checkpoint's file name
            arch=model.arch,
            dim=model.dim,
            device=model.device,
            backend=model.backend,
            precision=model.precision,
            notice=reindexing.message if reindexing else None,
            choice=BackendDecision.of(model.choice),
        )

    def problems(self, limit: int, offset: int) -> Problems:
        """A page of the files that could not be indexed or were skipped, and what the last scan could not read
        (their indexed items are kept)."""
        rows, total = self.store.problems(limit, offset)
        last = self.scans.last
        unreachable = [w for w in LastScan.from_record(last).warnings if w.path] if last else []
        files = tuple(
            ProblemEntry(
                id=item.id,
                path=item.path,
                kind=item.kind,
                status=item.status,
                reason=item.error,
                error_code=item.error_code or legacy_code(item.error) or ProblemCode.UNKNOWN,
                size=item.size,
            )
            for item in rows
        )
        return Problems(files=files, total=total, unreachable=tuple(unreachable))

    def folders(self) -> list[FolderNode]:
        """The library folders, each a tree of its sub-folders with how many items are indexed in and below each."""
        return folder_tree(folder_counts(self.store), real_roots(self.settings.library))

    def places(self) -> PlaceSummary:
        """Where the items were taken: countries and their cities with item counts (most first)."""
        countries = group_places(self.store.places.place_counts())
        return PlaceSummary(
            countries=tuple(countries),
            located=sum(country["count"] for country in countries),
            map_tiles=self.settings.map_tile_url or None,
        )

    def tags(self) -> TagSummary:
        """The tag set with how many items carry each tag, most frequent first."""
        tagger = self.tagger
        return TagSummary(
            counts=tuple(tagger.counts()),
            current=not tagger.stale(),
            computing=tagger.computing,
            error=tagger.last_error,
        )

    def check_health(self) -> None:
        """Raises when the database does not answer."""
        self.store.vectors_version()

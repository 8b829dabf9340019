"""The REST API's response models for the library as a whole: folders, problem files, status (counts, model,
index, jobs), scans, tags and classification, places, duplicates and hidden items."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from materialsearch.application import (
    CITIES_LISTED,
    BackendDecision,
    FacesStatus,
    KeeperReason,
    OcrStatus,
    Reindexing,
    ScanStatus,
    ScanWarning,
    ScanWorkerStatus,
)
from materialsearch.errors import ProblemCode
from materialsearch.web.item_models import ItemView
from materialsearch.web.models import Body, Count, ItemKind, OptionalName


class Folder(Body):
    """A folder of the library and its indexed items (its own and all below it)."""

    name: Annotated[str, Field(description="The folder's name (a root: its absolute path).")]
    path: Annotated[str, Field(description='Relative to its library root (`""` for the root).')]
    prefix: Annotated[str, Field(description="Its absolute path with a trailing `/`: pass as `path` to filter.")]
    count: Annotated[int, Field(ge=0, description="Indexed photos and videos in it and below it.")]
    children: list[Folder]

    @classmethod
    def of(cls, node) -> Folder:
        """The public view of a ``folders.FolderNode``, sub-folders by name."""
        children = [cls.of(child) for _name, child in sorted(node.children.items())]
        return cls(name=node.name, path=node.path, prefix=node.prefix, count=node.count, children=children)


class FolderTree(Body):
    """The library folders (MS_LIBRARY), each a tree of its indexed sub-folders."""

    roots: list[Folder]


class ProblemFile(Body):
    """A file that could not be indexed, or was skipped."""

    id: int
    path: str
    kind: str
    status: Literal["error", "skipped"]
    reason: str | None
    error_code: Annotated[
        ProblemCode,
        Field(description="Why, as a stable code (for translations and scripts):\n" + ProblemCode.described()),
    ]
    size: Annotated[int, Field(ge=0)]


class ProblemList(Body):
    """A page of problem files, and the folders and files the last scan could not read."""

    errors: list[ProblemFile]
    total: Annotated[int, Field(ge=0)]
    unreachable: Annotated[
        list[ScanWarning],
        Field(
            description="Folders and files the last scan could not list or examine (and missing library folders); "
            "their indexed items are kept until they can be read again."
        ),
    ]


class Counts(Body):
    """Items by what they are."""

    images: Count
    videos: Count
    live_photos: Count
    errors: Count
    skipped: Count
    pending: Count


class ModelInfo(Body):
    """The embedding model."""

    name: str
    arch: str
    dim: Annotated[int, Field(ge=1)]
    device: str
    backend: str
    precision: str
    notice: Annotated[str | None, Field(description="Set after the model changed.")]
    choice: Annotated[BackendDecision, Field(description="How backend and precision were chosen.")]


class IndexInfo(Body):
    """The vector index."""

    vectors: Count
    layout: Annotated[
        str, Field(description="`flat` (exact), `ivf` (FAISS) or `hnsw` (pgvector, with MS_DATABASE_URL).")
    ]
    building: Annotated[bool, Field(description="An IVF being (re)built in the background.")]


class Status(Body):
    """Counts, scan state and progress, model and index size."""

    counts: Counts
    scan: ScanStatus
    model: ModelInfo
    reindexing: Reindexing | None
    index: IndexInfo
    library: list[str]
    ocr: Annotated[OcrStatus, Field(description="The OCR pass (text in photos), which follows each scan.")]
    faces: Annotated[FacesStatus, Field(description="The faces pass (people in photos), which follows each scan.")]
    workers: Annotated[
        list[ScanWorkerStatus],
        Field(
            description="With MS_DATABASE_URL: the processes that embed scans' files (the owner's scan and each "
            "`python -m materialsearch worker`), most recently seen first; empty on the embedded SQLite catalog."
        ),
    ]


class ScanStarted(Body):
    """A scan started."""

    started: Literal[True]
    status: ScanStatus


class Health(Body):
    """Alive."""

    ok: Literal[True]


class LabelScore(Body):
    """One label's result."""

    label: str
    probability: Annotated[float, Field(ge=0, le=1, description="Softmax over the labels of logit_scale × cosine.")]
    score: Annotated[float, Field(ge=-1, le=1, description="Cosine between the image and the label's sentence.")]


class ClassifyResult(Body):
    """The labels, most probable first."""

    results: list[LabelScore]
    took_ms: Annotated[float, Field(ge=0)]


class TagInfo(Body):
    """A tag of the label set and how many items carry it."""

    key: Annotated[str, Field(description="What `tag=` takes.")]
    zh: Annotated[str, Field(description="Chinese name.")]
    en: Annotated[str, Field(description="English name.")]
    count: Count


class TagList(Body):
    """The label set, most frequent tags first."""

    tags: list[TagInfo]
    current: Annotated[
        bool, Field(description="Whether the tags are computed for the current labels, model and vectors.")
    ]
    computing: Annotated[bool, Field(description="The tags are being computed now.")]
    error: Annotated[str | None, Field(description="Why the last computation failed, if it did.")] = None


class PlaceCity(Body):
    """A city (or town) and how many indexed items were taken there."""

    city: str
    city_zh: OptionalName
    region: OptionalName
    count: Count
    latitude: Annotated[float, Field(ge=-90, le=90, description="Mean position of its items.")]
    longitude: Annotated[float, Field(ge=-180, le=180)]


class PlaceCountry(Body):
    """A country, how many indexed items were taken there, and its cities (most items first)."""

    code: Annotated[str, Field(description="ISO 3166-1 alpha-2; also a `place=` value.")]
    name: str
    name_zh: OptionalName
    count: Count
    city_count: Annotated[
        int, Field(ge=0, description=f"How many cities it has; `cities` lists the {CITIES_LISTED} with most items.")
    ]
    cities: list[PlaceCity]


class Places(Body):
    """Where the library's items were taken."""

    countries: list[PlaceCountry]
    located: Annotated[int, Field(ge=0, description="Indexed items with a place.")]
    map_tiles: Annotated[
        str | None, Field(description="The map tile URL template (MS_MAP_TILE_URL); null: the map is off.")
    ]


class DuplicateMember(ItemView):
    """A member of a duplicate group."""

    hidden: Annotated[bool, Field(description="Hidden from search results and the timeline.")]


class DuplicateGroup(Body):
    """Near-identical items, the best keeper first."""

    ids: Annotated[list[int], Field(description="The members' ids, the keeper first, then best to worst.")]
    keeper: Annotated[int, Field(description="The member to keep.")]
    why: Annotated[KeeperReason, Field(description="Why it is the keeper: a stable code a UI can translate.")]
    why_text: Annotated[str, Field(description="The same in English.")]
    kind: ItemKind
    items: Annotated[list[DuplicateMember], Field(description="The members, in the order of `ids`.")]


class DuplicateList(Body):
    """A page of duplicate groups (photos first, then videos; larger groups first)."""

    groups: list[DuplicateGroup]
    total: Annotated[int, Field(ge=0, description="Groups in all (of the asked kind).")]
    others: Annotated[int, Field(ge=0, description="Non-keepers in all those groups.")]
    compared: Annotated[int, Field(ge=0, description="Indexed items compared.")]
    took_ms: Annotated[float, Field(ge=0, description="How long the grouping took when it was computed.")]


class DuplicateOther(Body):
    """One non-keeper copy, for the user's own tools."""

    group: Annotated[int, Field(ge=1, description="Its group's number (1-based, in `/api/duplicates` order).")]
    id: int
    path: str
    size: Annotated[int, Field(ge=0)]
    keeper_id: int
    keeper_path: str
    why: KeeperReason


class DuplicateExport(Body):
    """Every non-keeper's path."""

    others: list[DuplicateOther]


class HiddenList(Body):
    """The items hidden from results."""

    ids: Annotated[list[int], Field(description="Every hidden item's id, ascending.")]
    total: Annotated[int, Field(ge=0)]

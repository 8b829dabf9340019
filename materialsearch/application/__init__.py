"""The product's use cases: the one door the web layer and the CLI call.

One class per area, built once by ``Services``: ``Searching`` (words, pictures, similar items, names;
classification), ``Browsing`` (the timeline, an item's details, its stack), ``ItemFiles`` (originals, thumbnails,
previews, clips, playable videos, motions, zips), ``LibraryOverview`` (status, problems, folders, places, tags),
``JobControl`` (scan and OCR pass) and ``DuplicateReview`` (duplicates, hidden items). Each method takes plain
parameters and answers frozen dataclasses (or the core's own), so a caller assembles nothing and never sees the
catalog. The core's types a caller needs (filters' values, sort orders, errors) are re-exported here.
"""

from __future__ import annotations

from materialsearch.application.browsing import Browsing, ItemDetails, TimelineSlice
from materialsearch.application.control import JobControl
from materialsearch.application.entries import ItemEntry, Scope
from materialsearch.application.errors import ApiError, BadRequest
from materialsearch.application.files import FileToSend, ItemFiles, ZipDownload
from materialsearch.application.overview import (
    IndexFacts,
    LibraryOverview,
    LibraryStatus,
    ModelFacts,
    PlaceSummary,
    ProblemEntry,
    Problems,
    TagSummary,
)
from materialsearch.application.people import CoverCrop, PeopleDirectory
from materialsearch.application.review import DuplicateCopy, DuplicatePage, DuplicateReview, DuplicateSet, GroupMember
from materialsearch.application.searching import Classification, FoundItem, Ordering, SearchAnswer, Searching
from materialsearch.catalog.rows import ItemRow as Item
from materialsearch.catalog.timeline import CursorError, Sort
from materialsearch.ocr.job import OcrStatus
from materialsearch.organise.duplicates import KeeperReason
from materialsearch.organise.people import FacesStatus
from materialsearch.organise.places import CITIES_LISTED
from materialsearch.scan.reports import BackendDecision, Reindexing, ScanStatus, ScanWarning, ScanWorkerStatus
from materialsearch.search.service import Match, NotFound, Page, SearchError

__all__ = [
    "CITIES_LISTED",
    "ApiError",
    "BackendDecision",
    "BadRequest",
    "Browsing",
    "Classification",
    "CoverCrop",
    "CursorError",
    "DuplicateCopy",
    "DuplicatePage",
    "DuplicateReview",
    "DuplicateSet",
    "FacesStatus",
    "FileToSend",
    "FoundItem",
    "GroupMember",
    "IndexFacts",
    "Item",
    "ItemDetails",
    "ItemEntry",
    "ItemFiles",
    "JobControl",
    "KeeperReason",
    "LibraryOverview",
    "LibraryStatus",
    "Match",
    "ModelFacts",
    "NotFound",
    "OcrStatus",
    "Ordering",
    "Page",
    "PeopleDirectory",
    "PlaceSummary",
    "ProblemEntry",
    "Problems",
    "Reindexing",
    "ScanStatus",
    "ScanWarning",
    "ScanWorkerStatus",
    "Scope",
    "SearchAnswer",
    "SearchError",
    "Searching",
    "Sort",
    "TagSummary",
    "TimelineSlice",
    "ZipDownload",
]

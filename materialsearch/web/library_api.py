"""The library routes: status, problem files, folders, places, tags, health, and the control of the scan and
the OCR pass."""

from __future__ import annotations

import dataclasses

from materialsearch.application import OcrStatus, ScanStatus
from materialsearch.errors import ApiErrorCode as Code
from materialsearch.web.api import api, use_cases
from materialsearch.web.library_models import (
    Counts,
    Folder,
    FolderTree,
    Health,
    IndexInfo,
    ModelInfo,
    Places,
    ProblemFile,
    ProblemList,
    ScanStarted,
    Status,
    TagInfo,
    TagList,
)
from materialsearch.web.problems import Error, error_response
from materialsearch.web.request_models import PageParams
from materialsearch.web.spec import TAGS, Responses, api_spec

NO_SCAN = (Error, "No scan is running.")


@api.get("/api/tags")
@api_spec.validate(
    tags=[TAGS["library"]], operation_id="listTags", resp=Responses(HTTP_200=(TagList, "The tags with their counts."))
)
def tags():
    """The tag set with zh/en names and how many items carry each tag, most frequent first

    Tags are computed from the stored vectors in the background (after each scan, and when the labels or the
    model change); `current` is false until that has happened.
    """
    summary = use_cases().overview.tags()
    listed = [TagInfo(key=c.label.key, zh=c.label.zh, en=c.label.en, count=c.count) for c in summary.counts]
    body = TagList(tags=listed, current=summary.current, computing=summary.computing)
    if summary.error:
        body.error = summary.error
    return body


@api.get("/api/errors")
@api_spec.validate(
    tags=[TAGS["library"]],
    operation_id="listProblems",
    resp=Responses(
        HTTP_200=(ProblemList, "A page of problem files."),
        HTTP_400=(Error, "A parameter is missing, malformed or out of range (the message says which)."),
    ),
)
def errors(query: PageParams):
    """Files that could not be indexed or were skipped, each with its reason and code

    `unreachable` lists the folders and files the last scan could not read (their indexed items are kept).
    """
    problems = use_cases().overview.problems(query.limit, query.offset)
    return ProblemList(
        errors=[ProblemFile(**dataclasses.asdict(entry)) for entry in problems.files],
        total=problems.total,
        unreachable=list(problems.unreachable),
    )


@api.get("/api/folders")
@api_spec.validate(
    tags=[TAGS["library"]], operation_id="listFolders", resp=Responses(HTTP_200=(FolderTree, "The folder trees."))
)
def folders():
    """The library folders and their sub-folders, with how many items are indexed in and below each"""
    return FolderTree(roots=[Folder.of(tree) for tree in use_cases().overview.folders()])


@api.get("/api/places")
@api_spec.validate(tags=[TAGS["library"]], operation_id="listPlaces", resp=Responses(HTTP_200=(Places, "The places.")))
def places():
    """Where the items were taken: countries and their cities with item counts (most first)

    Names in English and Chinese (GeoNames and CLDR data, resolved offline); any of them filters a search with
    `place=`.
    """
    places = use_cases().overview.places()
    return Places(countries=list(places.countries), located=places.located, map_tiles=places.map_tiles)


@api.get("/api/status")
@api_spec.validate(tags=[TAGS["library"]], operation_id="getStatus", resp=Responses(HTTP_200=(Status, "The status.")))
def status():
    """Counts, scan state and progress, last scan, model and index size"""
    status = use_cases().overview.status()
    return Status(
        counts=Counts(**dataclasses.asdict(status.counts)),
        scan=status.scan,
        model=ModelInfo(**dataclasses.asdict(status.model)),
        reindexing=status.reindexing,
        index=IndexInfo(**dataclasses.asdict(status.index)),
        library=list(status.library),
        ocr=status.ocr,
        faces=status.faces,
        workers=status.workers,
    )


def _scan_control(operation_id: str, done: tuple, code: str = "HTTP_200", **responses):
    """The declaration of a scan-control route: its answer, or 409 when no scan runs."""
    return api_spec.validate(
        tags=[TAGS["library"]],
        operation_id=operation_id,
        resp=Responses(**{code: done, "HTTP_409": NO_SCAN, **responses}),
    )


@api.post("/api/scan")
@_scan_control(
    "startScan",
    (ScanStarted, "The scan started."),
    "HTTP_202",
    HTTP_400=(Error, "No library is configured (MS_LIBRARY is empty)."),
    HTTP_409=(Error, "A scan is already running, or another process owns the data dir."),
)
def start_scan():
    """Start a background scan of the library

    202, or 409 while one runs (or while another process owns the data dir).
    """
    return ScanStarted(started=True, status=use_cases().job_control.start_scan()), 202


def _scan_changed(status: ScanStatus | None):
    return status if status is not None else error_response(409, "no scan is running", code=Code.NO_SCAN_RUNNING)


@api.post("/api/scan/pause")
@_scan_control("pauseScan", (ScanStatus, "The scan status, now paused."))
def pause_scan():
    """Pause the running scan after its current batch (the index is saved first)"""
    return _scan_changed(use_cases().job_control.pause_scan())


@api.post("/api/scan/resume")
@_scan_control("resumeScan", (ScanStatus, "The scan status, now scanning."))
def resume_scan():
    """Resume a paused scan (also outside the scan window)"""
    return _scan_changed(use_cases().job_control.resume_scan())


@api.post("/api/scan/cancel")
@_scan_control("cancelScan", (ScanStatus, "The scan is stopping."), "HTTP_202")
def cancel_scan():
    """Stop the running scan after its current batch, keeping what is done"""
    status = use_cases().job_control.cancel_scan()
    return (status, 202) if status is not None else _scan_changed(None)


NO_OCR_PASS = (Error, "No OCR pass is running.")


def _ocr_control(operation_id: str, done: tuple, code: str = "HTTP_200", **responses):
    """The declaration of an OCR-pass control route: its answer, or 409 when no pass runs."""
    return api_spec.validate(
        tags=[TAGS["library"]],
        operation_id=operation_id,
        resp=Responses(**{code: done, "HTTP_409": NO_OCR_PASS, **responses}),
    )


@api.post("/api/ocr")
@_ocr_control(
    "startOcr",
    (OcrStatus, "The OCR pass started."),
    "HTTP_202",
    HTTP_409=(Error, "A pass is running, OCR is off (MS_OCR), or another process owns the data dir."),
)
def start_ocr():
    """Start reading the text of the photos still waiting for it (it also follows every scan by itself)"""
    return use_cases().job_control.start_ocr(), 202


def _ocr_changed(status: OcrStatus | None):
    return status if status is not None else error_response(409, "no OCR pass is running")


@api.post("/api/ocr/pause")
@_ocr_control("pauseOcr", (OcrStatus, "The OCR pass's status, now paused."))
def pause_ocr():
    """Pause the OCR pass after its current batch"""
    return _ocr_changed(use_cases().job_control.pause_ocr())


@api.post("/api/ocr/resume")
@_ocr_control("resumeOcr", (OcrStatus, "The OCR pass's status, now reading (unless a scan runs)."))
def resume_ocr():
    """Resume a paused OCR pass (also outside the scan window; it still waits for a running scan)"""
    return _ocr_changed(use_cases().job_control.resume_ocr())


@api.post("/api/ocr/cancel")
@_ocr_control("cancelOcr", (OcrStatus, "The OCR pass is stopping."))
def cancel_ocr():
    """Stop the OCR pass after the photo in hand, keeping the text read so far"""
    return _ocr_changed(use_cases().job_control.cancel_ocr())


@api.get("/healthz")
@api_spec.validate(
    tags=[TAGS["meta"]],
    operation_id="health",
    security={},
    resp=Responses(auth=False, HTTP_200=(Health, "Alive.")),
)
def healthz():
    """Liveness: 200 when the app and its database answer (no login needed; reveals nothing)"""
    use_cases().overview.check_health()
    return Health(ok=True)

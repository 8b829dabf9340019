"""REST API blueprint: each route declares its models (``models.py``) with ``api_spec.validate``, then calls the
services. No parsing by hand and no business logic here."""

from __future__ import annotations

import dataclasses
import mimetypes
import os

from flask import Blueprint, Response, abort, current_app, send_file

from ..decode import DecodeError
from ..records import Kind
from ..records import Status as ItemStatus
from ..reports import BackendDecision, ScanStatus
from ..search import NotFound, Page, SearchError
from ..store import Filters, Item
from ..thumbnails import rendition_key
from ..transcode import TranscodeError
from ..video import VideoError
from ..walk import servable_path
from .models import (
    MAX_INT,
    ClipQuery,
    Counts,
    Error,
    FilterParams,
    Health,
    ImageSearch,
    IndexInfo,
    ItemView,
    ModelInfo,
    PageParams,
    ProblemFile,
    ProblemList,
    RenditionPending,
    ScanStarted,
    SearchHit,
    SearchResult,
    Status,
    TextSearch,
    ThumbnailQuery,
    Version,
    error_response,
)
from .spec import TAGS, BadRequest, Responses, api_spec

api = Blueprint("api", __name__)

ITEM = f"<int(min=1, max={MAX_INT}):item_id>"  # ids beyond SQLite's integer range name nothing: 404
ITEM_ID = {"item_id": "An item id from a search result."}
NOT_FOUND = (Error, "No such indexed item (or its original is gone / no longer inside the library).")
NOT_MODIFIED = "Not modified (conditional request)."
RANGES = {  # what a video answers besides itself: it is sent with conditional and Range support
    "HTTP_206": ("video/mp4", "The requested byte range."),
    "HTTP_304": (None, NOT_MODIFIED),
    "HTTP_416": (None, "The requested range is not satisfiable."),
}
NO_SCAN = (Error, "No scan is running.")


def _services():
    return current_app.extensions["materialsearch"]


@api.errorhandler(BadRequest)
@api.errorhandler(SearchError)
def bad_request(exc):
    return error_response(400, str(exc))


@api.errorhandler(NotFound)
def not_found(exc):
    return error_response(404, str(exc))


def _filters(params: FilterParams) -> Filters:
    kind = None if params.kind == "all" else params.kind
    return Filters(path_contains=params.path, date_from=params.date_from, date_to=params.date_to, kind=kind)


def _page(params: FilterParams) -> Page:
    return Page(limit=params.limit, offset=params.offset, min_score=params.min_score)


def _result(result) -> SearchResult:
    services = _services()
    motions = services.store.motions_for([hit.item.path for hit in result.hits if hit.item.kind == Kind.IMAGE])
    body = SearchResult(
        results=[SearchHit.of_hit(hit, motions.get(hit.item.path)) for hit in result.hits],
        total=result.total,
        took_ms=result.took_ms,
    )
    reindexing = services.reindexing()
    if reindexing:  # after a model change: say that results come only from what is re-embedded so far
        body.reindexing = reindexing
    return body


# --- search -----------------------------------------------------------------------------------------------------
@api.get("/api/search")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="searchByText",
    resp=Responses(
        HTTP_200=(SearchResult, "Ranked results, best first."),
        HTTP_400=(Error, "A parameter is missing, malformed or out of range (the message says which)."),
        HTTP_404=(Error, "`like` names an item that does not exist or is not indexed."),
    ),
)
def search_get(query: TextSearch):
    """Search by text, or for items similar to an indexed item

    Give exactly one of `q` (a sentence, Chinese or English) and `like` (an item id; the item itself is left out
    of the results).
    """
    filters, page = _filters(query), _page(query)
    search = _services().search
    if query.like is not None:
        vector = search.item_vector(query.like, query.t)
        return _result(search.search(vector, filters, page, exclude=frozenset({query.like})))
    return _result(search.search(search.text_vector(query.q), filters, page))


@api.post("/api/search")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="searchByImage",
    resp=Responses(
        HTTP_200=(SearchResult, "Ranked results, best first."),
        HTTP_400=(Error, "No `image` field, an unreadable picture, or a bad option."),
        HTTP_413=(Error, "The request is larger than MS_MAX_UPLOAD_BYTES."),
    ),
)
def search_post(form: ImageSearch):
    """Search with an example picture (optionally refined with words)

    Multipart form: the picture in `image`; the same options as the GET search as form fields. The picture is
    decoded in memory (its type is sniffed from its content, decompression bombs are refused) and never stored.
    """
    if form is None:  # not a form at all (spectree validates only form bodies)
        raise BadRequest("send the query picture as a multipart form field named 'image'")
    search = _services().search
    try:
        vector = search.image_vector(form.image.read())
    except DecodeError as exc:
        raise BadRequest(f"the uploaded file is not a usable image: {exc}") from None
    text = (form.q or "").strip()
    if text:
        vector = search.combine(vector, search.text_vector(text))
    return _result(search.search(vector, _filters(form), _page(form)))


# --- items ------------------------------------------------------------------------------------------------------
def _indexed_item(item_id: int) -> Item:
    item = _services().store.get_item(item_id)
    if item is None or item.status != ItemStatus.OK:
        raise NotFound(f"item {item_id} does not exist or is not indexed")
    return item


def _video_item(item_id: int) -> Item:
    item = _indexed_item(item_id)
    if item.kind != Kind.VIDEO:
        raise BadRequest(f"item {item_id} is not a video")
    return item


def _source_path(item: Item) -> str:
    """The real path of an item's file; 404 when it now resolves outside the library (a re-pointed symlink)."""
    settings = _services().settings
    path = servable_path(item.path, settings.library, settings.follow_symlinks, exclude=[settings.data_dir])
    if path is None:
        abort(404, description=f"the original of item {item.id} is not inside the library any more")
    return path


def _item_route(operation_id: str, tag: str, query=None, **responses):
    """The declaration of a route under /api/items/{item_id} (which may always answer 404)."""
    return api_spec.validate(
        query=query,
        tags=[TAGS[tag]],
        operation_id=operation_id,
        path_parameter_descriptions=ITEM_ID,
        resp=Responses(**{"HTTP_404": NOT_FOUND, **responses}),
    )


@api.get(f"/api/items/{ITEM}")
@_item_route("getItem", "items", HTTP_200=(ItemView, "The item."))
def item_detail(item_id: int):
    """One indexed item"""
    item = _indexed_item(item_id)
    motion = _services().store.motions_for([item.path]).get(item.path) if item.kind == Kind.IMAGE else None
    return ItemView.of(item, motion)


@api.get(f"/api/items/{ITEM}/thumbnail")
@_item_route(
    "getThumbnail",
    "items",
    query=ThumbnailQuery,
    HTTP_200=("image/jpeg", "JPEG image."),
    HTTP_304=(None, NOT_MODIFIED),
    HTTP_400=(Error, "`t` is not a whole number of milliseconds."),
)
def item_thumbnail(item_id: int, query: ThumbnailQuery):
    """The item's thumbnail (JPEG, upright, long side MS_THUMBNAIL_SIZE)

    Cached; for a video, `t` (ms) picks one of its indexed frames.
    """
    item = _indexed_item(item_id)
    services = _services()
    key = item.thumbnail or rendition_key(item.path, item.size, item.mtime_ns)
    source = _source_path(item)
    try:
        if item.kind == Kind.VIDEO:
            if query.t is not None and services.store.frame_vector(item_id, query.t) is None:
                raise NotFound(f"item {item_id} has no indexed frame at {query.t} ms")
            path = services.renditions.video_thumbnail(key, source, query.t)
        else:
            path = services.renditions.thumbnail(key, source)
    except (OSError, DecodeError, VideoError) as exc:
        abort(404, description=f"the original of item {item_id} cannot be read any more: {exc}")
    return _cached_file(path, "image/jpeg")


@api.get(f"/api/items/{ITEM}/clip")
@_item_route(
    "getClip",
    "videos",
    query=ClipQuery,
    HTTP_200=("video/mp4", "The clip."),
    **RANGES,
    HTTP_400=(Error, "Not a video, or `start`/`end` missing, malformed, reversed or too far apart."),
    HTTP_422=(Error, "ffmpeg could not cut this video."),
)
def item_clip(item_id: int, query: ClipQuery):
    """An MP4 (H.264/AAC) of exactly [start, end) seconds of a video

    Re-encoded so it starts on the first frame at or after `start` (a keyframe copy would start early or black);
    cached under the data dir; at most MS_MAX_CLIP_SECONDS. `end` past the end of the video is cut to it.
    """
    item = _video_item(item_id)
    settings = _services().settings
    start, end = query.start, query.end
    duration = (item.duration_ms or 0) / 1000
    if duration and start >= duration:
        raise BadRequest(f"start ({start:g} s) is past the end of the video ({duration:g} s)")
    end = min(end, duration) if duration else end
    if end <= start:
        raise BadRequest("end must be after start")
    if end - start > settings.max_clip_seconds:
        raise BadRequest(f"a clip may last at most {settings.max_clip_seconds} s (MS_MAX_CLIP_SECONDS)")
    start_ms, end_ms = round(start * 1000), round(end * 1000)
    try:
        path = _services().transcoder.clip(_source_path(item), item.size, item.mtime_ns, start_ms, end_ms)
    except TranscodeError as exc:
        abort(422, description=f"cannot cut this video: {exc}")
    stem = os.path.splitext(os.path.basename(item.path))[0]
    name = f"{stem}_{start_ms / 1000:g}-{end_ms / 1000:g}s.mp4"
    return send_file(path, mimetype="video/mp4", conditional=True, max_age=86400, download_name=name)


@api.get(f"/api/items/{ITEM}/stream")
@_item_route(
    "getPlayableVideo",
    "videos",
    query=Version,
    HTTP_200=("video/*", "The video."),
    HTTP_202=(RenditionPending, "A browser-playable version is being made; ask again after `Retry-After` seconds."),
    **RANGES,
    HTTP_400=(Error, "The item is not a video."),
    HTTP_422=(Error, "ffmpeg could not convert this video."),
)
def item_stream(item_id: int, query: Version):
    """The video in a form browsers play (the original, or an H.264 rendition made on demand)

    For HEVC, MPEG-4, MKV…: `202` with `Retry-After` while the rendition is being made, then the MP4 (cached).
    """
    item = _video_item(item_id)
    if item.playable:
        return _original(item)
    state, detail = _services().transcoder.start_rendition(_source_path(item), item.size, item.mtime_ns)
    if state == "ready":
        return _cached_file(detail, "video/mp4")
    if state == "failed":
        abort(422, description=f"cannot convert this video: {detail}")
    working = RenditionPending(state="working", message="a browser-playable version is being made; try again shortly")
    return working, 202, {"Retry-After": "2"}


@api.get(f"/api/items/{ITEM}/motion")
@_item_route(
    "getMotion",
    "videos",
    query=Version,
    HTTP_200=("video/mp4", "The motion."),
    **RANGES,
    HTTP_404=(Error, "No such indexed item, or it has no motion."),
    HTTP_422=(Error, "ffmpeg could not convert the motion."),
)
def item_motion(item_id: int, query: Version):
    """The motion of a Live Photo or Android motion photo, as a video browsers play"""
    item = _indexed_item(item_id)
    services = _services()
    movie = services.store.motions_for([item.path]).get(item.path) if item.kind == Kind.IMAGE else None
    try:
        if movie is not None:
            source = _source_path(movie)
            if not os.path.isfile(source):
                abort(404, description=f"the motion of item {item_id} is gone from the library")
            if movie.playable:
                return send_file(source, mimetype=_media_type(movie), conditional=True, max_age=86400)
            path = services.transcoder.rendition(source, movie.size, movie.mtime_ns)
        elif item.motion_offset is not None:
            path = services.transcoder.rendition(_source_path(item), item.size, item.mtime_ns, item.motion_offset)
        else:
            raise NotFound(f"item {item_id} has no motion (not a Live Photo or motion photo)")
    except TranscodeError as exc:
        abort(422, description=f"cannot play this motion: {exc}")
    return _cached_file(path, "video/mp4")


@api.get(f"/api/items/{ITEM}/preview")
@_item_route(
    "getPreview",
    "items",
    query=Version,
    HTTP_200=("image/jpeg", "JPEG image."),
    HTTP_304=(None, NOT_MODIFIED),
)
def item_preview(item_id: int, query: Version):
    """A large JPEG rendition (for HEIC/TIFF, which browsers cannot show)"""
    item = _indexed_item(item_id)
    key = rendition_key(item.path, item.size, item.mtime_ns)
    source = _source_path(item)
    try:
        path = _services().renditions.preview(key, source)
    except (OSError, DecodeError) as exc:
        abort(404, description=f"the original of item {item_id} cannot be read any more: {exc}")
    return _cached_file(path, "image/jpeg")


@api.get(f"/api/items/{ITEM}/file")
@_item_route(
    "getFile",
    "items",
    HTTP_200=("*/*", "The file, with its own media type."),
    HTTP_206=("*/*", "The requested byte range."),
    HTTP_304=(None, NOT_MODIFIED),
    HTTP_416=(None, "The requested range is not satisfiable."),
)
def item_file(item_id: int):
    """The original file (only for indexed items; never by path)

    Supports conditional requests and HTTP Range (`206`).
    """
    return _original(_indexed_item(item_id))


def _original(item: Item) -> Response:
    source = _source_path(item)
    if not os.path.isfile(source):
        abort(404, description=f"the original of item {item.id} is gone from the library")
    return send_file(source, mimetype=_media_type(item), conditional=True, download_name=os.path.basename(item.path))


def _media_type(item: Item) -> str:
    """The file's media type; a browser-playable QuickTime movie as video/mp4 (the same ISO media format, and the
    only type under which browsers play it)."""
    mimetype = mimetypes.guess_type(item.path)[0] or "application/octet-stream"
    return "video/mp4" if mimetype == "video/quicktime" and item.playable else mimetype


def _cached_file(path: str, mimetype: str) -> Response:
    return send_file(path, mimetype=mimetype, conditional=True, max_age=86400)


# --- library ----------------------------------------------------------------------------------------------------
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
    """Files that could not be indexed or were skipped, each with its reason"""
    rows, total = _services().store.problems(query.limit, query.offset)
    return ProblemList(errors=[ProblemFile.of(row) for row in rows], total=total)


def _counts(services) -> Counts:
    return Counts(**dataclasses.asdict(services.store.counts()))


@api.get("/api/status")
@api_spec.validate(tags=[TAGS["library"]], operation_id="getStatus", resp=Responses(HTTP_200=(Status, "The status.")))
def status():
    """Counts, scan state and progress, last scan, model and index size"""
    services = _services()
    counts = _counts(services)
    encoder = services.encoder
    reindexing = services.reindexing(counts.pending)
    return Status(
        counts=counts,
        scan=services.scans.status(),
        model=ModelInfo(
            name=os.path.basename(services.settings.model),  # a cn_clip name, or a checkpoint's file name
            arch=encoder.spec.arch,
            dim=encoder.dim,
            device=encoder.device,
            backend=encoder.backend,
            precision=encoder.precision,
            notice=reindexing.message if reindexing else None,
            choice=BackendDecision.of(encoder.choice),
        ),
        reindexing=reindexing,
        index=IndexInfo(
            vectors=services.index.ntotal,
            layout=services.index.layout["type"],  # flat (exact) or ivf
            building=services.index.building,  # an IVF being (re)built in the background
        ),
        library=list(services.settings.library),
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
    services = _services()
    if not services.settings.library:
        raise BadRequest("no library configured: set MS_LIBRARY to the folder(s) to index")
    refusal = services.scans.try_start("manual")
    if refusal:
        return error_response(409, refusal)
    return ScanStarted(started=True, status=services.scans.status()), 202


@api.post("/api/scan/pause")
@_scan_control("pauseScan", (ScanStatus, "The scan status, now paused."))
def pause_scan():
    """Pause the running scan after its current batch (the index is saved first)"""
    scans = _services().scans
    if not scans.pause():
        return error_response(409, "no scan is running")
    return scans.status()


@api.post("/api/scan/resume")
@_scan_control("resumeScan", (ScanStatus, "The scan status, now scanning."))
def resume_scan():
    """Resume a paused scan (also outside the scan window)"""
    scans = _services().scans
    if not scans.resume():
        return error_response(409, "no scan is running")
    return scans.status()


@api.post("/api/scan/cancel")
@_scan_control("cancelScan", (ScanStatus, "The scan is stopping."), "HTTP_202")
def cancel_scan():
    """Stop the running scan after its current batch, keeping what is done"""
    scans = _services().scans
    if not scans.cancel():
        return error_response(409, "no scan is running")
    return scans.status(), 202


@api.get("/healthz")
@api_spec.validate(
    tags=[TAGS["meta"]],
    operation_id="health",
    security={},
    resp=Responses(auth=False, HTTP_200=(Health, "Alive.")),
)
def healthz():
    """Liveness: 200 when the app and its database answer (no login needed; reveals nothing)"""
    _services().store.vector_checksum()
    return Health(ok=True)

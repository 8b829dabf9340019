"""REST API blueprint: each route declares its models (``models.py``) with ``api_spec.validate``, then calls the
services. No parsing by hand and no business logic here."""

from __future__ import annotations

import dataclasses
import mimetypes
import os
import time

from flask import Blueprint, Response, current_app, send_file, stream_with_context

from materialsearch.catalog.folders import folder_counts, folder_tree, real_roots
from materialsearch.catalog.records import Kind
from materialsearch.catalog.records import Status as ItemStatus
from materialsearch.catalog.store import Filters, Item
from materialsearch.catalog.timeline import CursorError, Sort, timeline_page
from materialsearch.download import Member, unique_names, zip_stream
from materialsearch.errors import ApiErrorCode as Code
from materialsearch.media.decode import DecodeError
from materialsearch.media.exif_info import media_info
from materialsearch.media.thumbnails import rendition_key
from materialsearch.media.transcode import TranscodeError
from materialsearch.media.video import VideoError
from materialsearch.ocr.job import OcrStatus
from materialsearch.organise.places import group_places
from materialsearch.scan.reports import BackendDecision, LastScan, ScanStatus
from materialsearch.scan.walk import servable_path
from materialsearch.search.relevance import QueryKind
from materialsearch.search.service import Match, Narrowing, NotFound, Page, SearchError
from materialsearch.web.models import (
    MAX_INT,
    ClassifyItem,
    ClassifyResult,
    ClassifyUpload,
    ClipQuery,
    Counts,
    DownloadRequest,
    Error,
    FilterParams,
    Folder,
    FolderTree,
    Health,
    ImageSearch,
    ImageUpload,
    IndexInfo,
    ItemDetail,
    ItemList,
    ItemsQuery,
    ItemText,
    ItemView,
    LabelScore,
    LibraryFilters,
    MediaInfo,
    ModelInfo,
    NarrowParams,
    PageParams,
    Places,
    ProblemFile,
    ProblemList,
    RenditionPending,
    ScanStarted,
    SearchHit,
    SearchResult,
    Status,
    TagInfo,
    TagList,
    TextSearch,
    ThumbnailQuery,
    Version,
    error_response,
)
from materialsearch.web.spec import TAGS, ApiError, BadRequest, Responses, api_spec

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
@api.errorhandler(CursorError)
def bad_request(exc):
    return error_response(400, str(exc), code=getattr(exc, "code", Code.BAD_REQUEST))


@api.errorhandler(NotFound)
def not_found(exc):
    return error_response(404, str(exc), code=Code.NOT_FOUND)


@api.errorhandler(ApiError)
def api_error(exc: ApiError):
    return error_response(exc.status, str(exc), code=exc.code)


def _filters(params: LibraryFilters) -> Filters:
    kind = None if params.kind == "all" else params.kind
    shown = getattr(params, "include_hidden", False)  # a text search may ask for hidden items too
    hide = None if shown or not _services().store.duplicates.has_hidden() else True
    return Filters(
        path_contains=params.path,
        name_contains=params.name,
        date_from=params.date_from,
        date_to=params.date_to,
        kind=kind,
        tags=_tag_keys(params.tag),
        exclude_hidden=hide,
        place=params.place,
    )


def _tag_keys(keys: list[str] | None) -> tuple[str, ...] | None:
    """The ``tag=`` keys, each checked against the label set in use (400 naming the unknown ones)."""
    if not keys:
        return None
    keys = list(dict.fromkeys(key.strip() for key in keys))
    unknown = _services().tagger.unknown(keys)
    if unknown:
        raise BadRequest(f"unknown tag {', '.join(map(repr, unknown))}: GET /api/tags lists the tags")
    return tuple(keys)


def _with_tags(views: list) -> list:
    """``views`` (ItemView or SearchHit) with their items' tags filled in (one query for all)."""
    found = _services().tagger.tags_of({view.id for view in views})
    for view in views:
        view.tags = found.get(view.id, [])
    return views


def _page(params: FilterParams) -> Page:
    return Page(limit=params.limit, offset=params.offset, min_score=params.min_score)


def _result(result) -> SearchResult:
    services = _services()
    photos = [hit.item.path for hit in result.hits if hit.item.kind == Kind.IMAGE]
    motions, raws = services.store.motions_for(photos), services.store.raws_for(photos)
    body = SearchResult(
        results=_with_tags(
            [SearchHit.of_hit(hit, motions.get(hit.item.path), raws.get(hit.item.path)) for hit in result.hits]
        ),
        total=result.total,
        took_ms=result.took_ms,
    )
    if result.more is not None:
        body.more = result.more
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
    """Search by text, by similarity to an indexed item, or by file name / folder

    Give `q` (a sentence, Chinese or English), `text` (words read in photos) or both, or `like` (an item id; the
    item itself is left out of the results). A `q` also looks in the photos' text: a photo whose text contains it
    ranks at or near the top (reciprocal-rank fusion; results found by text carry the line as `snippet`). With
    none of them, `name` and/or `path` alone are a keyword search over file names / paths, ranked by match quality
    (exact name, then prefix, then word start, then anywhere; ties newest first); with them, they only filter.
    `sort`, `match`, `exclude` and `stack` narrow and order any of these.
    """
    filters, page = _filters(query), _page(query)
    search = _services().search
    if query.like is not None:
        vector = search.item_vector(query.like, query.t)
        narrowing = _narrowing(query, QueryKind.IMAGE)
        return _result(search.search(vector, filters, page, exclude=frozenset({query.like}), narrowing=narrowing))
    fused = _services().fused
    if query.text is not None:
        return _result(fused.search_text(query.text, filters, page, q=query.q))
    if query.q is None:
        return _result(search.search_names(filters, page, _narrowing(query, QueryKind.TEXT)))
    return _result(fused.search_fused(query.q, filters, page, _narrowing(query)))


def _narrowing(params: NarrowParams, kind: QueryKind = QueryKind.TEXT) -> Narrowing:
    search = _services().search
    return Narrowing(
        sort=params.sort,
        match=Match(params.match) if params.match else None,
        excluded_texts=tuple(search.text_vector(text) for text in params.exclude or ()),
        stack=params.stack,
        kind=kind,
    )


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
        raise BadRequest("send the query picture as a multipart form field named 'image'", Code.MISSING_IMAGE)
    search = _services().search
    try:
        vector = search.image_vector(form.image.read())
    except DecodeError as exc:
        raise BadRequest(f"the uploaded file is not a usable image: {exc}", Code.UNUSABLE_IMAGE) from None
    text = (form.q or "").strip()
    kind = QueryKind.IMAGE
    if text:
        vector, kind = search.combine(vector, search.text_vector(text)), QueryKind.COMBINED
    return _result(search.search(vector, _filters(form), _page(form), narrowing=_narrowing(form, kind)))


@api.post("/api/query-preview")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="previewQueryImage",
    resp=Responses(
        HTTP_200=("image/jpeg", "A thumbnail-sized JPEG of the picture."),
        HTTP_400=(Error, "No `image` field, or an unreadable picture."),
        HTTP_413=(Error, "The request is larger than MS_MAX_UPLOAD_BYTES."),
    ),
)
def query_preview(form: ImageUpload):
    """A JPEG of a query picture the browser cannot show itself (HEIC, TIFF)

    Multipart form with the picture in `image`; decoded in memory like a search picture, never stored.
    """
    if form is None or form.image is None:
        raise BadRequest("send the picture as a multipart form field named 'image'", Code.MISSING_IMAGE)
    try:
        jpeg = _services().renditions.thumbnail_of_upload(form.image.read())
    except DecodeError as exc:
        raise BadRequest(f"the uploaded file is not a usable image: {exc}", Code.UNUSABLE_IMAGE) from None
    return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


# --- classification and tags -----------------------------------------------------------------------------------
@api.post("/api/classify")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="classify",
    resp=Responses(
        HTTP_200=(ClassifyResult, "Each label's probability and cosine, most probable first."),
        HTTP_400=(Error, "No or too many labels, a template without `{}`, an unreadable picture, or a bad option."),
        HTTP_404=(Error, "`item_id` names no indexed item, or the video has no indexed frame at `t`."),
        HTTP_413=(Error, "The request is larger than MS_MAX_UPLOAD_BYTES."),
    ),
)
def classify(json: ClassifyItem, form: ClassifyUpload):
    """Zero-shot classification of an indexed item or an uploaded picture

    JSON `{labels, item_id, t?, template?}`, or a multipart form with `image`, `labels` and `template`. The
    probability is cn_clip's own: the softmax over the labels of `exp(logit_scale) × cosine`, as its
    `model(image, text)` gives `logits_per_image`. A video without `t` is classified by its mean frame vector.
    """
    started = time.perf_counter()
    services = _services()
    if form is not None:
        try:
            vector = services.search.image_vector(form.image.read())
        except DecodeError as exc:
            raise BadRequest(f"the uploaded file is not a usable image: {exc}") from None
        request = form
    elif json is not None:
        vector = services.search.item_vector(json.item_id, json.t)
        request = json
    else:
        raise BadRequest("send JSON {labels, item_id} or a multipart form with image and labels")
    scored = services.classifier.classify(vector, request.labels, request.template)
    return ClassifyResult(
        results=[LabelScore(**dataclasses.asdict(s)) for s in scored],
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )


@api.get("/api/tags")
@api_spec.validate(
    tags=[TAGS["library"]], operation_id="listTags", resp=Responses(HTTP_200=(TagList, "The tags with their counts."))
)
def tags():
    """The tag set with zh/en names and how many items carry each tag, most frequent first

    Tags are computed from the stored vectors in the background (after each scan, and when the labels or the
    model change); `current` is false until that has happened.
    """
    tagger = _services().tagger
    listed = [TagInfo(key=c.label.key, zh=c.label.zh, en=c.label.en, count=c.count) for c in tagger.counts()]
    body = TagList(tags=listed, current=not tagger.stale(), computing=tagger.computing)
    if tagger.last_error:
        body.error = tagger.last_error
    return body


# --- items ------------------------------------------------------------------------------------------------------
@api.get("/api/items")
@api_spec.validate(
    tags=[TAGS["items"]],
    operation_id="listItems",
    resp=Responses(
        HTTP_200=(ItemList, "A page of items in capture-time order."),
        HTTP_400=(Error, "A parameter is malformed or out of range, or the cursor is not one this API gave."),
    ),
)
def list_items(query: ItemsQuery):
    """The timeline: every indexed photo and video by capture time, a page at a time

    Newest first (`sort=date_desc`) or oldest first; the same filters as a search. Pages follow by keyset: pass
    `next_cursor` back as `cursor` (stable while a scan adds items). Undated items (only from databases of old
    releases: a scan dates a file without a capture time by its modification time) come after every dated one
    newest first, before them oldest first. Results are not stacked (every copy of a photo is its own item).
    """
    services = _services()
    page = timeline_page(services.store, _filters(query), Sort(query.sort), query.limit, query.cursor)
    photos = [item.path for item in page.items if item.kind == Kind.IMAGE]
    motions, raws = services.store.motions_for(photos), services.store.raws_for(photos)
    views = [ItemView.of(item, motions.get(item.path), raws.get(item.path)) for item in page.items]
    return ItemList(results=_with_tags(views), next_cursor=page.next_cursor)


def _indexed_item(item_id: int) -> Item:
    item = _services().store.get_item(item_id)
    if item is None or item.status != ItemStatus.OK:
        raise NotFound(f"item {item_id} does not exist or is not indexed")
    return item


def _video_item(item_id: int) -> Item:
    item = _indexed_item(item_id)
    if item.kind != Kind.VIDEO:
        raise BadRequest(f"item {item_id} is not a video", Code.NOT_A_VIDEO)
    return item


def _source_path(item: Item) -> str:
    """The real path of an item's file; 404 when it now resolves outside the library (a re-pointed symlink)."""
    settings = _services().settings
    path = servable_path(item.path, settings.library, settings.follow_symlinks, exclude=[settings.data_dir])
    if path is None:
        raise ApiError(404, Code.ORIGINAL_GONE, f"the original of item {item.id} is not inside the library any more")
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
@_item_route("getItem", "items", HTTP_200=(ItemDetail, "The item, with the text read in it and its file's facts."))
def item_detail(item_id: int):
    """One indexed item

    With the lines of text read in it (boxes, confidence), and `info`, read from the file on each request (never
    written): camera, lens, exposure, GPS as decimal degrees, upright size and file size for photos (EXIF); size,
    duration, codec and location for videos.
    """
    item = _indexed_item(item_id)
    services = _services()
    store, settings = services.store, services.settings
    motion = raw = None
    if item.kind == Kind.IMAGE:
        motion, raw = store.motions_for([item.path]).get(item.path), store.raws_for([item.path]).get(item.path)
    text = ItemText.of(services.ocr_store.text_of(item.id))
    source = servable_path(item.path, settings.library, settings.follow_symlinks, exclude=[settings.data_dir])
    facts = media_info(source, item.kind).given() if source else {"error": "the original is outside the library"}
    detail = ItemDetail(**ItemView.fields_of(item, motion, raw), text=text, info=MediaInfo(**facts))
    return _with_tags([detail])[0]


@api.get(f"/api/items/{ITEM}/stack")
@_item_route(
    "getItemStack",
    "items",
    query=LibraryFilters,
    HTTP_200=(ItemList, "The item, then its near-identical items, most similar first (`next_cursor` is null)."),
    HTTP_400=(Error, "A filter is malformed (the message says which)."),
)
def item_stack(item_id: int, query: LibraryFilters):
    """Every indexed item near-identical to this one (its stack)

    Near-identical: cosine at least MS_STACK_COSINE between stored vectors, as search results are stacked;
    a search result's stack members are all among these (this list may hold more: items the search left out).
    """
    _indexed_item(item_id)
    services = _services()
    members = services.search.stack_of(item_id, _filters(query))
    motions = services.store.motions_for([item.path for item in members if item.kind == Kind.IMAGE])
    views = _with_tags([ItemView.of(item, motions.get(item.path)) for item in members])
    return ItemList(results=views, next_cursor=None)


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
        raise ApiError(
            404, Code.ORIGINAL_GONE, f"the original of item {item_id} cannot be read any more: {exc}"
        ) from None
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
        raise BadRequest(f"start ({start:g} s) is past the end of the video ({duration:g} s)", Code.CLIP_OUT_OF_RANGE)
    end = min(end, duration) if duration else end
    if end <= start:
        raise BadRequest("end must be after start", Code.CLIP_OUT_OF_RANGE)
    if end - start > settings.max_clip_seconds:
        raise BadRequest(
            f"a clip may last at most {settings.max_clip_seconds} s (MS_MAX_CLIP_SECONDS)", Code.CLIP_TOO_LONG
        )
    start_ms, end_ms = round(start * 1000), round(end * 1000)
    try:
        path = _services().transcoder.clip(_source_path(item), item.size, item.mtime_ns, start_ms, end_ms)
    except TranscodeError as exc:
        raise ApiError(422, Code.TRANSCODE_FAILED, f"cannot cut this video: {exc}") from None
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
        raise ApiError(422, Code.TRANSCODE_FAILED, f"cannot convert this video: {detail}")
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
                raise ApiError(404, Code.ORIGINAL_GONE, f"the motion of item {item_id} is gone from the library")
            if movie.playable:
                return send_file(source, mimetype=_media_type(movie), conditional=True, max_age=86400)
            path = services.transcoder.rendition(source, movie.size, movie.mtime_ns)
        elif item.motion_offset is not None:
            path = services.transcoder.rendition(_source_path(item), item.size, item.mtime_ns, item.motion_offset)
        else:
            raise ApiError(404, Code.NO_MOTION, f"item {item_id} has no motion (not a Live Photo or motion photo)")
    except TranscodeError as exc:
        raise ApiError(422, Code.TRANSCODE_FAILED, f"cannot play this motion: {exc}") from None
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
        raise ApiError(
            404, Code.ORIGINAL_GONE, f"the original of item {item_id} cannot be read any more: {exc}"
        ) from None
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

    Supports conditional requests and HTTP Range (`206`). Also the camera RAW of a RAW + JPEG pair (`raw_url`).
    """
    item = _services().store.get_item(item_id)
    return _original(item if item is not None and item.status == ItemStatus.RAW else _indexed_item(item_id))


@api.post("/api/download")
@api_spec.validate(
    json=DownloadRequest,
    tags=[TAGS["items"]],
    operation_id="downloadItems",
    resp=Responses(
        HTTP_200=("application/zip", "A zip of the originals (stored, streamed as it is written)."),
        HTTP_400=(Error, "No ids, malformed ids, or more than MS_MAX_DOWNLOAD_ITEMS."),
        HTTP_404=(Error, "Some ids name no indexed item, or an original is gone (the message lists them)."),
    ),
)
def download(json: DownloadRequest):
    """A zip of the originals of the given items

    By id only, never by path. Each file keeps its name (repeats get ` (2)`…) and modification time. A Live
    Photo brings its movie along (the pair is one photo to its owner); an Android motion photo is one file.
    """
    services = _services()
    ids = list(dict.fromkeys(json.ids))
    most = services.settings.max_download_items
    if len(ids) > most:
        raise BadRequest(f"ids: at most {most} items per download (MS_MAX_DOWNLOAD_ITEMS), got {len(ids)}")
    found = services.store.get_items(ids)
    missing = [i for i in ids if i not in found or found[i].status != ItemStatus.OK]
    if missing:
        raise NotFound(f"no indexed item with id {', '.join(map(str, missing))}")
    items = [found[i] for i in ids]
    motions = services.store.motions_for([item.path for item in items if item.kind == Kind.IMAGE])
    files = []
    for item in items:
        files += [item] + ([motions[item.path]] if item.path in motions else [])
    paths = [_source_path(item) for item in files]
    gone = [item.id for item, path in zip(files, paths, strict=True) if not os.path.isfile(path)]
    if gone:
        raise NotFound(f"the original of item {', '.join(map(str, gone))} is gone from the library")
    names = unique_names([os.path.basename(item.path) for item in files])
    members = [Member(path, name) for path, name in zip(paths, names, strict=True)]
    filename = f"materialsearch-{len(items)}-items.zip"
    return Response(
        stream_with_context(zip_stream(members)),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _original(item: Item) -> Response:
    source = _source_path(item)
    if not os.path.isfile(source):
        raise ApiError(404, Code.ORIGINAL_GONE, f"the original of item {item.id} is gone from the library")
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
    """Files that could not be indexed or were skipped, each with its reason and code

    `unreachable` lists the folders and files the last scan could not read (their indexed items are kept).
    """
    services = _services()
    rows, total = services.store.problems(query.limit, query.offset)
    last = services.scans.last
    unreachable = [w for w in LastScan.from_record(last).warnings if w.path] if last else []
    return ProblemList(errors=[ProblemFile.of(row) for row in rows], total=total, unreachable=unreachable)


@api.get("/api/folders")
@api_spec.validate(
    tags=[TAGS["library"]], operation_id="listFolders", resp=Responses(HTTP_200=(FolderTree, "The folder trees."))
)
def folders():
    """The library folders and their sub-folders, with how many items are indexed in and below each"""
    services = _services()
    trees = folder_tree(folder_counts(services.store), real_roots(services.settings.library))
    return FolderTree(roots=[Folder.of(tree) for tree in trees])


@api.get("/api/places")
@api_spec.validate(tags=[TAGS["library"]], operation_id="listPlaces", resp=Responses(HTTP_200=(Places, "The places.")))
def places():
    """Where the items were taken: countries and their cities with item counts (most first)

    Names in English and Chinese (GeoNames and CLDR data, resolved offline); any of them filters a search with
    `place=`.
    """
    services = _services()
    countries = group_places(services.store.places.place_counts())
    return Places(
        countries=countries,
        located=sum(country["count"] for country in countries),
        map_tiles=services.settings.map_tile_url or None,
    )


def _counts(services) -> Counts:
    return Counts(**dataclasses.asdict(services.store.counts()))


@api.get("/api/status")
@api_spec.validate(tags=[TAGS["library"]], operation_id="getStatus", resp=Responses(HTTP_200=(Status, "The status.")))
def status():
    """Counts, scan state and progress, last scan, model and index size"""
    services = _services()
    counts = _counts(services)
    model = services.encoder.describe()
    reindexing = services.reindexing(counts.pending)
    return Status(
        counts=counts,
        scan=services.scans.status(),
        model=ModelInfo(
            name=os.path.basename(services.settings.model),  # a cn_clip name, or a checkpoint's file name
            arch=model.arch,
            dim=model.dim,
            device=model.device,
            backend=model.backend,
            precision=model.precision,
            notice=reindexing.message if reindexing else None,
            choice=BackendDecision.of(model.choice),
        ),
        reindexing=reindexing,
        index=IndexInfo(
            vectors=services.index.ntotal,
            layout=services.index.layout["type"],  # flat (exact) or ivf
            building=services.index.building,  # an IVF being (re)built in the background
        ),
        library=list(services.settings.library),
        ocr=services.ocr.status(),
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
        raise BadRequest("no library configured: set MS_LIBRARY to the folder(s) to index", Code.NO_LIBRARY)
    refusal = services.scans.try_start("manual")
    if refusal:
        return error_response(409, refusal, code=Code.SCAN_RUNNING if services.scans.owner else Code.DATA_DIR_IN_USE)
    return ScanStarted(started=True, status=services.scans.status()), 202


@api.post("/api/scan/pause")
@_scan_control("pauseScan", (ScanStatus, "The scan status, now paused."))
def pause_scan():
    """Pause the running scan after its current batch (the index is saved first)"""
    scans = _services().scans
    if not scans.pause():
        return error_response(409, "no scan is running", code=Code.NO_SCAN_RUNNING)
    return scans.status()


@api.post("/api/scan/resume")
@_scan_control("resumeScan", (ScanStatus, "The scan status, now scanning."))
def resume_scan():
    """Resume a paused scan (also outside the scan window)"""
    scans = _services().scans
    if not scans.resume():
        return error_response(409, "no scan is running", code=Code.NO_SCAN_RUNNING)
    return scans.status()


@api.post("/api/scan/cancel")
@_scan_control("cancelScan", (ScanStatus, "The scan is stopping."), "HTTP_202")
def cancel_scan():
    """Stop the running scan after its current batch, keeping what is done"""
    scans = _services().scans
    if not scans.cancel():
        return error_response(409, "no scan is running", code=Code.NO_SCAN_RUNNING)
    return scans.status(), 202


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
    ocr = _services().ocr
    refusal = ocr.try_start("manual")
    if refusal:
        return error_response(409, refusal)
    return ocr.status(), 202


def _ocr_changed(done: bool):
    return _services().ocr.status() if done else error_response(409, "no OCR pass is running")


@api.post("/api/ocr/pause")
@_ocr_control("pauseOcr", (OcrStatus, "The OCR pass's status, now paused."))
def pause_ocr():
    """Pause the OCR pass after its current batch"""
    return _ocr_changed(_services().ocr.pause())


@api.post("/api/ocr/resume")
@_ocr_control("resumeOcr", (OcrStatus, "The OCR pass's status, now reading (unless a scan runs)."))
def resume_ocr():
    """Resume a paused OCR pass (also outside the scan window; it still waits for a running scan)"""
    return _ocr_changed(_services().ocr.resume())


@api.post("/api/ocr/cancel")
@_ocr_control("cancelOcr", (OcrStatus, "The OCR pass is stopping."))
def cancel_ocr():
    """Stop the OCR pass after the photo in hand, keeping the text read so far"""
    return _ocr_changed(_services().ocr.cancel())


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

"""The item routes: the timeline, one item's details and stack, its files (original, thumbnail, preview, clip,
playable video, motion) and a zip of several originals."""

from __future__ import annotations

from flask import Response, redirect, stream_with_context, url_for

from materialsearch.application import ApiError, BadRequest, NotFound
from materialsearch.web.api import ITEM, NOT_MODIFIED, RANGES, api, item_route, scope_of, send, use_cases
from materialsearch.web.item_models import ItemDetail, ItemList, ItemText, ItemView, MediaInfo, RenditionPending
from materialsearch.web.people_models import FaceView
from materialsearch.web.problems import Error
from materialsearch.web.request_models import (
    ClipQuery,
    DownloadForm,
    DownloadRequest,
    ItemsQuery,
    LibraryFilters,
    ThumbnailQuery,
    Version,
)
from materialsearch.web.spec import TAGS, Responses, api_spec


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
    page = use_cases().browsing.timeline(scope_of(query), query.sort, query.limit, query.cursor)
    return ItemList(results=[ItemView.of(entry) for entry in page.entries], next_cursor=page.next_cursor)


@api.get(f"/api/items/{ITEM}")
@item_route("getItem", "items", HTTP_200=(ItemDetail, "The item, with the text read in it and its file's facts."))
def item_detail(item_id: int):
    """One indexed item

    With the lines of text read in it (boxes, confidence), and `info`, read from the file on each request (never
    written): camera, lens, exposure, GPS as decimal degrees, upright size and file size for photos (EXIF); size,
    duration, codec and location for videos.
    """
    details = use_cases().browsing.details(item_id)
    return ItemDetail(
        **ItemView.fields_of(details.entry),
        text=ItemText.of(details.text),
        info=MediaInfo(**details.info),
        faces=[FaceView.of(face) for face in details.faces],
    )


@api.get(f"/api/items/{ITEM}/stack")
@item_route(
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
    members = use_cases().browsing.stack(item_id, scope_of(query))
    return ItemList(results=[ItemView.of(entry) for entry in members], next_cursor=None)


@api.get(f"/api/items/{ITEM}/thumbnail")
@item_route(
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
    return send(use_cases().item_files.thumbnail(item_id, query.t))


@api.get(f"/api/items/{ITEM}/clip")
@item_route(
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
    return send(use_cases().item_files.clip(item_id, query.start, query.end))


@api.get(f"/api/items/{ITEM}/stream")
@item_route(
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
    playable = use_cases().item_files.playable(item_id)
    if playable is not None:
        return send(playable)
    working = RenditionPending(state="working", message="a browser-playable version is being made; try again shortly")
    return working, 202, {"Retry-After": "2"}


@api.get(f"/api/items/{ITEM}/motion")
@item_route(
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
    return send(use_cases().item_files.motion(item_id))


@api.get(f"/api/items/{ITEM}/preview")
@item_route(
    "getPreview",
    "items",
    query=Version,
    HTTP_200=("image/jpeg", "JPEG image."),
    HTTP_304=(None, NOT_MODIFIED),
)
def item_preview(item_id: int, query: Version):
    """A screen-sized JPEG rendition (long side MS_PREVIEW_SIZE): what the viewer shows of photos larger than
    that and of HEIC/TIFF, which browsers cannot show

    Made on first request and cached under the data dir, shared by copies of the same file."""
    return send(use_cases().item_files.preview(item_id))


@api.get(f"/api/items/{ITEM}/file")
@item_route(
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
    return send(use_cases().item_files.original(item_id))


@api.post("/api/download")
@api_spec.validate(
    json=DownloadRequest,
    form=DownloadForm,
    tags=[TAGS["items"]],
    operation_id="downloadItems",
    resp=Responses(
        HTTP_200=("application/zip", "A zip of the originals (stored, streamed as it is written)."),
        HTTP_303=(None, "A refused form (what a 400 or 404 answers JSON): back to the page, `/?download=refused`."),
        HTTP_400=(Error, "No ids, malformed ids, or more than MS_MAX_DOWNLOAD_ITEMS."),
        HTTP_404=(Error, "Some ids name no indexed item, or an original is gone (the message lists them)."),
    ),
)
def download(json: DownloadRequest, form: DownloadForm):
    """A zip of the originals of the given items

    By id only, never by path. Each file keeps its name (repeats get ` (2)`…) and modification time. A Live
    Photo brings its movie along (the pair is one photo to its owner); an Android motion photo is one file.
    JSON `{ids}`, or a form with `ids` separated by commas: the page submits a form so that the browser saves the
    stream itself (its own download, with progress, never held in the page's memory); a refused form is sent
    back to the page (303 to `/?download=refused`), which says so, instead of a JSON error.
    """
    if form is not None:
        try:
            zipped = use_cases().item_files.download(form.ids)
        except (ApiError, BadRequest, NotFound):
            # A navigation, not a script: back to the page, which says so (an original gone since it was shown,
            # or too many items); the JSON request names which.
            return redirect(url_for("pages.index", download="refused"), code=303)
    elif json is not None:
        zipped = use_cases().item_files.download(json.ids)
    else:
        raise BadRequest("send JSON {ids} or a form with ids")
    return Response(
        stream_with_context(zipped.chunks),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{zipped.filename}"'},
    )

"""REST API blueprint: parses requests, calls the services, shapes JSON. No business logic here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import mimetypes
import os

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file, url_for

from ..decode import DecodeError
from ..records import Status
from ..search import NotFound, Page, SearchError
from ..store import Filters, Item
from ..thumbnails import rendition_key
from ..transcode import TranscodeError
from ..video import VideoError
from ..walk import servable_path

api = Blueprint("api", __name__)

# Formats a browser shows directly; others (HEIC, TIFF) get a JPEG rendition for the large view.
BROWSER_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "avif"}
KINDS = {"image", "video", "all"}
# Ids and offsets beyond SQLite's integer range cannot name anything: refuse them as bad input, not a 500.
MAX_INT = 2**63 - 1


def _services():
    return current_app.extensions["materialsearch"]


class BadRequest(ValueError):
    """A parameter is missing or malformed."""


@api.errorhandler(BadRequest)
@api.errorhandler(SearchError)
def bad_request(exc):
    return jsonify(error="Bad Request", message=str(exc), status=400), 400


@api.errorhandler(NotFound)
def not_found(exc):
    return jsonify(error="Not Found", message=str(exc), status=404), 404


# --- parameter parsing ------------------------------------------------------------------------------------------
def _int_param(source, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = source.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise BadRequest(f"{name} must be between {minimum}{upper}, got {value}")
    return value


def _date_param(source, name: str, end_of_day: bool) -> dt.datetime | None:
    raw = (source.get(name) or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            return dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or date-time (ISO 8601), got {raw!r}") from None
    # Capture times are camera-local; compare wall-clock to wall-clock.
    return value.replace(tzinfo=None)


def _filters(source) -> Filters:
    kind = (source.get("kind") or "all").strip().lower()
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(sorted(KINDS))}, got {kind!r}")
    date_from = _date_param(source, "date_from", end_of_day=False)
    date_to = _date_param(source, "date_to", end_of_day=True)
    if date_from and date_to and date_from > date_to:
        raise BadRequest("date_from is after date_to")
    path = (source.get("path") or "").strip() or None
    return Filters(path_contains=path, date_from=date_from, date_to=date_to, kind=None if kind == "all" else kind)


def _page(source) -> Page:
    settings = _services().settings
    limit = _int_param(source, "limit", settings.page_size, 1, settings.max_page_size)
    offset = _int_param(source, "offset", 0, 0, MAX_INT)
    raw = (source.get("min_score") or "").strip()
    min_score = None
    if raw:
        try:
            min_score = float(raw)
        except ValueError:
            raise BadRequest(f"min_score must be a number between -1 and 1, got {raw!r}") from None
        if not -1.0 <= min_score <= 1.0:
            raise BadRequest(f"min_score must be between -1 and 1, got {min_score}")
    return Page(limit=limit, offset=offset, min_score=min_score)


# --- shaping ----------------------------------------------------------------------------------------------------
def _version(item: Item) -> str:
    # Renditions are cached by browsers for a day; the version changes when the file does.
    return rendition_key(item.path, item.size, item.mtime_ns)[:12]


def item_json(item: Item, motion: Item | None = None) -> dict:
    """The public view of an item (``motion``: its Live Photo movie, if it has one)."""
    ext = os.path.splitext(item.path)[1].lower().lstrip(".")
    file_url = url_for("api.item_file", item_id=item.id)
    version = _version(item)
    extra: dict = {}
    if item.kind == "video":
        extra = {
            "duration": item.duration_ms / 1000 if item.duration_ms is not None else None,
            "playable": bool(item.playable),
            "play_url": file_url if item.playable else url_for("api.item_stream", item_id=item.id, v=version),
        }
    else:
        has_motion = motion is not None or item.motion_offset is not None
        extra = {
            "live": motion is not None,
            "motion_photo": item.motion_offset is not None,
            "motion_url": url_for("api.item_motion", item_id=item.id, v=version) if has_motion else None,
        }
    return {
        "id": item.id,
        "path": item.path,
        "name": os.path.basename(item.path),
        "kind": item.kind,
        "taken_at": item.taken_at.isoformat() if item.taken_at else None,
        "width": item.width,
        "height": item.height,
        "size": item.size,
        "thumbnail_url": url_for("api.item_thumbnail", item_id=item.id, v=version),
        "file_url": file_url,
        "view_url": file_url
        if ext in BROWSER_IMAGE_EXTENSIONS or item.kind == "video"
        else url_for("api.item_preview", item_id=item.id, v=version),
        **extra,
    }


def hit_json(hit, motion: Item | None = None) -> dict:
    """A search result: the item, its score and, for a video, the moment that matched."""
    data = {**item_json(hit.item, motion), "score": round(hit.score, 6)}
    moment = hit.moment
    if moment is not None:
        item = hit.item
        data.update(
            start=moment.start_ms / 1000,
            end=moment.end_ms / 1000,
            time=moment.time_ms / 1000,
            thumbnail_url=url_for("api.item_thumbnail", item_id=item.id, t=moment.time_ms, v=_version(item)),
            clip_url=url_for(
                "api.item_clip", item_id=item.id, start=f"{moment.start_ms / 1000:g}", end=f"{moment.end_ms / 1000:g}"
            ),
        )
    return data


def _result_json(result) -> Response:
    services = _services()
    motions = services.store.motions_for([hit.item.path for hit in result.hits if hit.item.kind == "image"])
    body = {
        "results": [hit_json(hit, motions.get(hit.item.path)) for hit in result.hits],
        "total": result.total,
        "took_ms": result.took_ms,
    }
    reindexing = services.reindexing()
    if reindexing:  # after a model change: say that results come only from what is re-embedded so far
        body["reindexing"] = reindexing
    return jsonify(body)


# --- search -----------------------------------------------------------------------------------------------------
@api.get("/api/search")
def search_get():
    """Text query (``q``) or items similar to an indexed item (``like``)."""
    args = request.args
    text = args.get("q")
    like = args.get("like")
    if (text is None or not text.strip()) and not like:
        raise BadRequest("give a query: q=TEXT, or like=ITEM_ID (or POST an image)")
    if text and like:
        raise BadRequest("give either q or like, not both")
    filters, page = _filters(args), _page(args)
    search = _services().search
    if like:
        item_id = _int_param(args, "like", 0, 1, MAX_INT)
        time_ms = _time_ms_param(args, "t")
        vector = search.item_vector(item_id, time_ms)
        return _result_json(search.search(vector, filters, page, exclude=frozenset({item_id})))
    return _result_json(search.search(search.text_vector(text), filters, page))


@api.post("/api/search")
def search_post():
    """Image query (multipart field ``image``), optionally refined with words (``q``)."""
    upload = request.files.get("image")
    if upload is None:
        raise BadRequest("send the query picture as a multipart form field named 'image'")
    data = upload.read()
    source = request.values
    filters, page = _filters(source), _page(source)
    search = _services().search
    try:
        vector = search.image_vector(data)
    except DecodeError as exc:
        raise BadRequest(f"the uploaded file is not a usable image: {exc}") from None
    text = (source.get("q") or "").strip()
    if text:
        vector = search.combine(vector, search.text_vector(text))
    return _result_json(search.search(vector, filters, page))


# --- items ------------------------------------------------------------------------------------------------------
def _indexed_item(item_id: int) -> Item:
    item = _services().store.get_item(item_id) if item_id <= MAX_INT else None
    if item is None or item.status != Status.OK:
        raise NotFound(f"item {item_id} does not exist or is not indexed")
    return item


def _time_ms_param(source, name: str) -> int | None:
    """A time in milliseconds (an integer ≥ 0), or None when absent."""
    raw = source.get(name)
    if raw is None or raw == "":
        return None
    return _int_param(source, name, 0, 0, MAX_INT)


def _seconds_param(source, name: str) -> float:
    raw = (source.get(name) or "").strip()
    if not raw:
        raise BadRequest(f"{name} is required (seconds from the start of the video)")
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise BadRequest(f"{name} must be 0 or more seconds, got {raw!r}")
    return value


def _video_item(item_id: int) -> Item:
    item = _indexed_item(item_id)
    if item.kind != "video":
        raise BadRequest(f"item {item_id} is not a video")
    return item


def _source_path(item: Item) -> str:
    """The real path of an item's file; 404 when it now resolves outside the library (a re-pointed symlink)."""
    settings = _services().settings
    path = servable_path(item.path, settings.library, settings.follow_symlinks, exclude=[settings.data_dir])
    if path is None:
        abort(404, description=f"the original of item {item.id} is not inside the library any more")
    return path


@api.get("/api/items/<int:item_id>")
def item_detail(item_id: int):
    """One indexed item."""
    item = _indexed_item(item_id)
    motion = _services().store.motions_for([item.path]).get(item.path) if item.kind == "image" else None
    return jsonify(item_json(item, motion))


@api.get("/api/items/<int:item_id>/thumbnail")
def item_thumbnail(item_id: int):
    """A small upright JPEG of the item (cached); for a video, ``t`` (ms) picks one of its indexed frames."""
    item = _indexed_item(item_id)
    services = _services()
    key = item.thumbnail or rendition_key(item.path, item.size, item.mtime_ns)
    time_ms = _time_ms_param(request.args, "t")
    source = _source_path(item)
    try:
        if item.kind == "video":
            if time_ms is not None and services.store.frame_vector(item_id, time_ms) is None:
                raise NotFound(f"item {item_id} has no indexed frame at {time_ms} ms")
            path = services.renditions.video_thumbnail(key, source, time_ms)
        else:
            path = services.renditions.thumbnail(key, source)
    except (OSError, DecodeError, VideoError) as exc:
        abort(404, description=f"the original of item {item_id} cannot be read any more: {exc}")
    return _cached_file(path, "image/jpeg")


@api.get("/api/items/<int:item_id>/clip")
def item_clip(item_id: int):
    """An H.264/AAC MP4 of exactly [start, end) seconds of a video (re-encoded, frame-accurate, cached)."""
    item = _video_item(item_id)
    settings = _services().settings
    start, end = _seconds_param(request.args, "start"), _seconds_param(request.args, "end")
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


@api.get("/api/items/<int:item_id>/stream")
def item_stream(item_id: int):
    """The video in a form browsers play: the original when they can, else an H.264 rendition.

    Making a rendition takes a while: until it is ready the answer is 202 (with Retry-After); then the MP4.
    """
    item = _video_item(item_id)
    if item.playable:
        return item_file(item_id)
    state, detail = _services().transcoder.start_rendition(_source_path(item), item.size, item.mtime_ns)
    if state == "ready":
        return _cached_file(detail, "video/mp4")
    if state == "failed":
        abort(422, description=f"cannot convert this video: {detail}")
    response = jsonify(state="working", message="a browser-playable version is being made; try again shortly")
    response.status_code = 202
    response.headers["Retry-After"] = "2"
    return response


@api.get("/api/items/<int:item_id>/motion")
def item_motion(item_id: int):
    """The motion of a Live Photo or Android motion photo, as a video browsers play."""
    item = _indexed_item(item_id)
    services = _services()
    movie = services.store.motions_for([item.path]).get(item.path) if item.kind == "image" else None
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


@api.get("/api/items/<int:item_id>/preview")
def item_preview(item_id: int):
    """A large upright JPEG rendition (for formats browsers cannot display)."""
    item = _indexed_item(item_id)
    key = rendition_key(item.path, item.size, item.mtime_ns)
    source = _source_path(item)
    try:
        path = _services().renditions.preview(key, source)
    except (OSError, DecodeError) as exc:
        abort(404, description=f"the original of item {item_id} cannot be read any more: {exc}")
    return _cached_file(path, "image/jpeg")


@api.get("/api/items/<int:item_id>/file")
def item_file(item_id: int):
    """The original file, only for indexed items (supports HTTP Range)."""
    item = _indexed_item(item_id)
    source = _source_path(item)
    if not os.path.isfile(source):
        abort(404, description=f"the original of item {item_id} is gone from the library")
    return send_file(source, mimetype=_media_type(item), conditional=True, download_name=os.path.basename(item.path))


def _media_type(item: Item) -> str:
    """The file's media type; a browser-playable QuickTime movie as video/mp4 (the same ISO media format, and the
    only type under which browsers play it)."""
    mimetype = mimetypes.guess_type(item.path)[0] or "application/octet-stream"
    return "video/mp4" if mimetype == "video/quicktime" and item.playable else mimetype


def _cached_file(path: str, mimetype: str) -> Response:
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=86400)
    return response


@api.get("/api/errors")
def errors():
    """Files that could not be indexed (or were skipped), each with its reason."""
    settings = _services().settings
    limit = _int_param(request.args, "limit", settings.page_size, 1, settings.max_page_size)
    offset = _int_param(request.args, "offset", 0, 0, MAX_INT)
    rows, total = _services().store.problems(limit, offset)
    return jsonify(
        errors=[
            {"id": r.id, "path": r.path, "kind": r.kind, "status": r.status, "reason": r.error, "size": r.size}
            for r in rows
        ],
        total=total,
    )


# --- status and control -----------------------------------------------------------------------------------------
@api.get("/api/status")
def status():
    """Counts, scan state and progress, last and next scan, model and index size."""
    services = _services()
    counts = services.store.counts()
    encoder = services.encoder
    reindexing = services.reindexing(counts.pending)
    return jsonify(
        counts=dataclasses.asdict(counts),
        scan=services.scans.status(),
        model={
            "name": os.path.basename(services.settings.model),  # a cn_clip name, or a checkpoint's file name
            "arch": encoder.spec.arch,
            "dim": encoder.dim,
            "device": encoder.device,
            "backend": getattr(encoder, "backend", "torch"),
            "precision": getattr(encoder, "precision", "fp32"),
            "notice": reindexing["message"] if reindexing else None,
        },
        reindexing=reindexing,
        index={
            "vectors": services.index.ntotal,
            "layout": services.index.layout["type"],  # flat (exact) or ivf
            "building": services.index.building,  # an IVF being (re)built in the background
        },
        library=list(services.settings.library),
    )


def _conflict(message: str):
    return jsonify(error="Conflict", message=message, status=409), 409


@api.post("/api/scan")
def start_scan():
    """Start a background scan: 202, or 409 while one runs (or while another process owns the data dir)."""
    services = _services()
    if not services.settings.library:
        raise BadRequest("no library configured: set MS_LIBRARY to the folder(s) to index")
    refusal = services.scans.try_start("manual")
    if refusal:
        return _conflict(refusal)
    return jsonify(started=True, status=services.scans.status()), 202


@api.post("/api/scan/pause")
def pause_scan():
    """Pause the running scan after its current batch: 200, or 409 when none runs."""
    scans = _services().scans
    if not scans.pause():
        return _conflict("no scan is running")
    return jsonify(scans.status())


@api.post("/api/scan/resume")
def resume_scan():
    """Resume a paused scan (even outside the scan window): 200, or 409 when none runs."""
    scans = _services().scans
    if not scans.resume():
        return _conflict("no scan is running")
    return jsonify(scans.status())


@api.post("/api/scan/cancel")
def cancel_scan():
    """Stop the running scan after its current batch (work done so far is kept): 202, or 409 when none runs."""
    scans = _services().scans
    if not scans.cancel():
        return _conflict("no scan is running")
    return jsonify(scans.status()), 202


@api.get("/healthz")
def healthz():
    """Liveness: the app answers and its database is readable."""
    _services().store.vector_checksum()
    return jsonify(ok=True)

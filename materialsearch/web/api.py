"""REST API blueprint: parses requests, calls the services, shapes JSON. No business logic here."""

from __future__ import annotations

import datetime as dt
import mimetypes
import os

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file, url_for

from ..decode import DecodeError
from ..search import NotFound, Page, SearchError
from ..store import STATUS_OK, Filters, Item
from ..thumbnails import rendition_key

api = Blueprint("api", __name__)

# Formats a browser shows directly; others (HEIC, TIFF) get a JPEG rendition for the large view.
BROWSER_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "avif"}
KINDS = {"image", "video", "all"}


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
    offset = _int_param(source, "offset", 0, 0)
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
def item_json(item: Item) -> dict:
    """The public view of an item."""
    ext = os.path.splitext(item.path)[1].lower().lstrip(".")
    file_url = url_for("api.item_file", item_id=item.id)
    # Renditions are cached by browsers for a day; the version changes when the file does.
    version = rendition_key(item.path, item.size, item.mtime_ns)[:12]
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
        if ext in BROWSER_IMAGE_EXTENSIONS
        else url_for("api.item_preview", item_id=item.id, v=version),
    }


def _result_json(result) -> Response:
    return jsonify(
        results=[{**item_json(hit.item), "score": round(hit.score, 6)} for hit in result.hits],
        total=result.total,
        took_ms=result.took_ms,
    )


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
        item_id = _int_param(args, "like", 0, 1)
        vector = search.item_vector(item_id)
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
    item = _services().store.get_item(item_id)
    if item is None or item.status != STATUS_OK:
        raise NotFound(f"item {item_id} does not exist or is not indexed")
    return item


@api.get("/api/items/<int:item_id>")
def item_detail(item_id: int):
    """One indexed item."""
    return jsonify(item_json(_indexed_item(item_id)))


@api.get("/api/items/<int:item_id>/thumbnail")
def item_thumbnail(item_id: int):
    """A small upright JPEG of the item (cached)."""
    item = _indexed_item(item_id)
    services = _services()
    key = item.thumbnail or rendition_key(item.path, item.size, item.mtime_ns)
    try:
        path = services.renditions.thumbnail(key, item.path)
    except (OSError, DecodeError) as exc:
        abort(404, description=f"the original of item {item_id} cannot be read any more: {exc}")
    return _cached_file(path, "image/jpeg")


@api.get("/api/items/<int:item_id>/preview")
def item_preview(item_id: int):
    """A large upright JPEG rendition (for formats browsers cannot display)."""
    item = _indexed_item(item_id)
    key = rendition_key(item.path, item.size, item.mtime_ns)
    try:
        path = _services().renditions.preview(key, item.path)
    except (OSError, DecodeError) as exc:
        abort(404, description=f"the original of item {item_id} cannot be read any more: {exc}")
    return _cached_file(path, "image/jpeg")


@api.get("/api/items/<int:item_id>/file")
def item_file(item_id: int):
    """The original file, only for indexed items (supports HTTP Range)."""
    item = _indexed_item(item_id)
    if not os.path.isfile(item.path):
        abort(404, description=f"the original of item {item_id} is gone from the library")
    mimetype = mimetypes.guess_type(item.path)[0] or "application/octet-stream"
    return send_file(item.path, mimetype=mimetype, conditional=True, download_name=os.path.basename(item.path))


def _cached_file(path: str, mimetype: str) -> Response:
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=86400)
    return response


@api.get("/api/errors")
def errors():
    """Files that could not be indexed (or were skipped), each with its reason."""
    settings = _services().settings
    limit = _int_param(request.args, "limit", settings.page_size, 1, settings.max_page_size)
    offset = _int_param(request.args, "offset", 0, 0)
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
    """Counts, scan state, model and index size."""
    services = _services()
    counts = services.store.counts()
    images = counts.get("image:ok", 0)
    errors_count = sum(v for k, v in counts.items() if k.endswith(":error"))
    skipped = sum(v for k, v in counts.items() if k.endswith(":skipped"))
    pending = sum(v for k, v in counts.items() if k.endswith(":pending"))
    encoder = services.encoder
    return jsonify(
        counts={"images": images, "errors": errors_count, "skipped": skipped, "pending": pending},
        scan=services.scans.status(),
        model={
            "name": os.path.basename(services.settings.model),  # a cn_clip name, or a checkpoint's file name
            "arch": encoder.spec.arch,
            "dim": encoder.dim,
            "device": encoder.device,
            "backend": getattr(encoder, "backend", "torch"),
            "precision": getattr(encoder, "precision", "fp32"),
            "notice": services.model_change,
        },
        index={
            "vectors": services.index.ntotal,
            "layout": services.index.layout["type"],  # flat (exact) or ivf
            "building": services.index.building,  # an IVF being (re)built in the background
        },
        library=list(services.settings.library),
    )


@api.post("/api/scan")
def start_scan():
    """Start a background scan: 202, or 409 while one runs."""
    services = _services()
    if not services.settings.library:
        raise BadRequest("no library configured: set MS_LIBRARY to the folder(s) to index")
    if not services.scans.start():
        return jsonify(error="Conflict", message="a scan is already running", status=409), 409
    return jsonify(started=True, status=services.scans.status()), 202


@api.get("/healthz")
def healthz():
    """Liveness: the app answers and its database is readable."""
    _services().store.vector_checksum()
    return jsonify(ok=True)

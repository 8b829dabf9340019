"""The REST API's request and response models: the one declaration of what each route takes and gives.

Requests are validated against these (by spectree, see ``spec.py``), responses are built from them, and
``/api/openapi.json`` is generated from them. A bound that is a setting (the page size) names the setting with
``FromSetting``: it is checked against the running app's settings, and the document shows that app's values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from http import HTTPStatus
from typing import Annotated, Any, Literal

from flask import Response as FlaskResponse
from flask import current_app, url_for
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    RootModel,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from spectree.model_adapter.pydantic_adapter import BaseFile

from ..reports import BackendDecision, Reindexing, ScanStatus
from ..store import Item
from ..thumbnails import rendition_key

# Ids, offsets and times beyond SQLite's integer range cannot name anything: refused as bad input.
MAX_INT = 2**63 - 1
# Formats a browser shows directly; others (HEIC, TIFF) get a JPEG rendition for the large view.
BROWSER_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "avif"}
SETTINGS_KEY = "x-from-settings"  # in a generated schema: {"maximum": "max_page_size", …}, filled in per app

ItemId = Annotated[int, Field(ge=1, le=MAX_INT)]
TimeMs = Annotated[int, Field(ge=0, le=MAX_INT)]
ItemKind = Literal["image", "video"]


def current_settings():
    """The settings of the app serving this request."""
    return current_app.extensions["materialsearch"].settings


@dataclasses.dataclass(frozen=True)
class FromSetting:
    """A field's default and/or maximum is a setting (by its ``Settings`` attribute name)."""

    maximum: str | None = None
    default: str | None = None

    def __get_pydantic_json_schema__(self, core_schema, handler) -> dict:
        schema = handler(core_schema)
        schema[SETTINGS_KEY] = {k: v for k, v in dataclasses.asdict(self).items() if v}
        return schema

    def apply(self, name: str, value: Any, settings) -> Any:
        """``value``, or the default setting when it is None; ValueError when above the maximum setting."""
        if value is None and self.default:
            value = getattr(settings, self.default)
        if self.maximum and value is not None and value > getattr(settings, self.maximum):
            limit = getattr(settings, self.maximum)
            raise ValueError(f"{name} must be at most {limit} (MS_{self.maximum.upper()}), got {value}")
        return value


def fill_settings(node: Any, settings) -> Any:
    """A generated schema with every ``FromSetting`` marker replaced by the values of ``settings``."""
    if isinstance(node, list):
        return [fill_settings(v, settings) for v in node]
    if not isinstance(node, dict):
        return node
    filled = {k: fill_settings(v, settings) for k, v in node.items() if k != SETTINGS_KEY}
    for key, setting in node.get(SETTINGS_KEY, {}).items():
        filled[key] = getattr(settings, setting)
    return filled


# --- requests ---------------------------------------------------------------------------------------------------
def _absent_is_not_null(schema: dict) -> None:
    # A parameter left out is None here, but a client cannot send null: the document shows no null default.
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]


class Params(BaseModel):
    """Query or form parameters: a blank value counts as absent (None), and ``FromSetting`` bounds are applied."""

    model_config = ConfigDict(json_schema_extra=_absent_is_not_null)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @model_validator(mode="after")
    def _settings_bounds(self):
        settings = current_settings()
        for name, field in type(self).model_fields.items():
            for bound in field.metadata:
                if isinstance(bound, FromSetting):
                    setattr(self, name, bound.apply(name, getattr(self, name), settings))
        return self


def _datetime(end_of_day: bool):
    def parse(raw: Any) -> dt.datetime:
        text = str(raw).strip()
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                return dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"must be a date (YYYY-MM-DD) or date-time (ISO 8601), got {text!r}") from None
        return value.replace(tzinfo=None)  # capture times are camera-local: compare wall-clock to wall-clock

    return [PlainValidator(parse), WithJsonSchema({"type": "string"})]


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class PageParams(Params):
    """A page of results."""

    limit: Annotated[
        int,
        Field(ge=1, description="Results per page (default MS_PAGE_SIZE, at most MS_MAX_PAGE_SIZE)."),
        FromSetting(maximum="max_page_size", default="page_size"),
    ] = None
    offset: Annotated[int, Field(ge=0, le=MAX_INT, description="How many results to skip.")] = 0


class FilterParams(PageParams):
    """The options every search takes."""

    path: Annotated[str, Field(description="Only items whose path contains this text.")] = None
    date_from: Annotated[
        dt.datetime,
        *_datetime(end_of_day=False),
        Field(description="Taken on or after: `YYYY-MM-DD` or an ISO 8601 date-time (camera-local time)."),
    ] = None
    date_to: Annotated[
        dt.datetime,
        *_datetime(end_of_day=True),
        Field(description="Taken on or before (a bare date includes that whole day)."),
    ] = None
    kind: Annotated[
        Literal["all", "image", "video"],
        BeforeValidator(_lower),
        Field(description="Which items: `all` (default), `image` or `video`."),
    ] = "all"
    min_score: Annotated[
        float,
        Field(
            ge=-1,
            le=1,
            allow_inf_nan=False,
            description="Only results at least this similar (cosine); `total` then counts only those.",
        ),
    ] = None

    @model_validator(mode="after")
    def _dates_in_order(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


class TextSearch(FilterParams):
    """``GET /api/search``: words, or an item to find similar ones to."""

    q: Annotated[str, Field(description="What to look for (a sentence, Chinese or English).")] = None
    like: Annotated[ItemId, Field(description="Find items similar to this indexed item (a video: its mean frame).")] = (
        None
    )
    t: Annotated[TimeMs, Field(description="With `like` on a video: similar to its frame at `t` ms.")] = None

    @model_validator(mode="after")
    def _one_query(self):
        if self.q is None and self.like is None:
            raise ValueError("give a query: q=TEXT, or like=ITEM_ID (or POST an image)")
        if self.q is not None and self.like is not None:
            raise ValueError("give either q or like, not both")
        return self


class ImageSearch(FilterParams):
    """``POST /api/search``: a picture (multipart), optionally refined with words."""

    image: Annotated[BaseFile, Field(description="The picture.")]
    q: Annotated[str, Field(description="Words that refine the picture.")] = None


class Version(Params):
    """Renditions: the version in their URLs."""

    v: Annotated[
        str, Field(description="Cache-busting version from `thumbnail_url` / `view_url` (ignored by the server).")
    ] = None


class ThumbnailQuery(Version):
    """``GET /api/items/{item_id}/thumbnail``."""

    t: Annotated[
        TimeMs,
        Field(
            description="Videos: the time of one of the video's indexed frames, in milliseconds "
            "(a moment's `time` × 1000)."
        ),
    ] = None


VideoTime = Annotated[float, Field(ge=0, allow_inf_nan=False, description="Seconds from the start of the video.")]


class ClipQuery(Params):
    """``GET /api/items/{item_id}/clip``: [start, end) in seconds, at most MS_MAX_CLIP_SECONDS apart (checked once
    ``end`` is cut to the video's length)."""

    start: VideoTime
    end: VideoTime


# --- responses --------------------------------------------------------------------------------------------------
class Body(BaseModel):
    """A JSON response: fields it was not given are left out (a photo has no ``duration``, a video no ``live``)."""

    @model_serializer(mode="wrap")
    def _given_fields_only(self, handler: SerializerFunctionWrapHandler):  # no return type: keeps the schema
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class Error(Body):
    """Every error: ``{error, message, status}`` with the HTTP status."""

    error: Annotated[str, Field(description="HTTP reason phrase, e.g. `Bad Request`.")]
    message: Annotated[str, Field(description="What was wrong, for people.")]
    status: Annotated[int, Field(ge=400, le=599)]


def error_response(status: int, message: str, name: str | None = None) -> FlaskResponse:
    """The JSON answer to a failed request (``name``: the reason phrase, by default the standard one)."""
    body = Error(error=name or HTTPStatus(status).phrase, message=message, status=status)
    return current_app.response_class(body.model_dump_json(), status=status, mimetype="application/json")


def _version(item: Item) -> str:
    # Renditions are cached by browsers for a day; the version changes when the file does.
    return rendition_key(item.path, item.size, item.mtime_ns)[:12]


class ItemView(Body):
    """An indexed item."""

    id: Annotated[int, Field(ge=1)]
    path: Annotated[str, Field(description="Absolute path of the file on the server.")]
    name: Annotated[str, Field(description="File name.")]
    kind: ItemKind
    taken_at: Annotated[str | None, Field(description="Capture time, ISO 8601 camera-local time (no offset).")]
    width: Annotated[int | None, Field(ge=0)]
    height: Annotated[int | None, Field(ge=0)]
    size: Annotated[int, Field(ge=0, description="File size in bytes.")]
    thumbnail_url: Annotated[str, Field(description="JPEG thumbnail (cacheable; versioned by `v`).")]
    file_url: Annotated[str, Field(description="The original file.")]
    view_url: Annotated[
        str, Field(description="What a browser should show large: the original, or a JPEG preview for HEIC/TIFF.")
    ]
    duration: Annotated[float | None, Field(ge=0, description="Videos: length in seconds.")] = None
    playable: Annotated[bool, Field(description="Videos: whether browsers play the original as is.")] = None
    play_url: Annotated[
        str,
        Field(description="Videos: what a `<video>` should play — the original, or `/stream` (an H.264 version)."),
    ] = None
    live: Annotated[bool, Field(description="Photos: an iPhone Live Photo (its movie is `motion_url`).")] = None
    motion_photo: Annotated[bool, Field(description="Photos: an Android motion photo with a video inside.")] = None
    motion_url: Annotated[
        str | None, Field(description="Photos: the Live Photo movie or motion photo video, as MP4.")
    ] = None

    @classmethod
    def fields_of(cls, item: Item, motion: Item | None = None) -> dict[str, Any]:
        """The public view of ``item`` (``motion``: its Live Photo movie, if it has one), as field values."""
        ext = os.path.splitext(item.path)[1].lower().lstrip(".")
        file_url = url_for("api.item_file", item_id=item.id)
        version = _version(item)
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
        shown = ext in BROWSER_IMAGE_EXTENSIONS or item.kind == "video"
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
            "view_url": file_url if shown else url_for("api.item_preview", item_id=item.id, v=version),
            **extra,
        }

    @classmethod
    def of(cls, item: Item, motion: Item | None = None) -> ItemView:
        """The public view of ``item``."""
        return cls(**cls.fields_of(item, motion))


class SearchHit(ItemView):
    """A search result: the item, its score and, for a video, the moment that matched."""

    score: Annotated[
        float,
        Field(
            ge=-1,
            le=1,
            description="Cosine similarity between the query and the item (a video: the moment's best frame).",
        ),
    ]
    start: Annotated[float, Field(ge=0, description="Video moments: start, in seconds.")] = None
    end: Annotated[float, Field(ge=0, description="Video moments: end, in seconds.")] = None
    time: Annotated[
        float,
        Field(ge=0, description="Video moments: the best frame's time, in seconds (its picture is `thumbnail_url`)."),
    ] = None
    clip_url: Annotated[str, Field(description="Video moments: the moment as an MP4 clip.")] = None

    @classmethod
    def of_hit(cls, hit, motion: Item | None = None) -> SearchHit:
        """The result for one hit of a search."""
        fields = {**ItemView.fields_of(hit.item, motion), "score": round(hit.score, 6)}
        moment = hit.moment
        if moment is not None:
            item = hit.item
            fields.update(
                start=moment.start_ms / 1000,
                end=moment.end_ms / 1000,
                time=moment.time_ms / 1000,
                thumbnail_url=url_for("api.item_thumbnail", item_id=item.id, t=moment.time_ms, v=_version(item)),
                clip_url=url_for(
                    "api.item_clip",
                    item_id=item.id,
                    start=f"{moment.start_ms / 1000:g}",
                    end=f"{moment.end_ms / 1000:g}",
                ),
            )
        return cls(**fields)


class SearchResult(Body):
    """Ranked results, best first."""

    results: list[SearchHit]
    total: Annotated[
        int,
        Field(
            ge=0,
            description="How many hits (photos and video moments) match in all; while only part of the ranking was "
            "needed, the number of matching items (a lower bound).",
        ),
    ]
    took_ms: Annotated[float, Field(ge=0)]
    reindexing: Annotated[Reindexing, Field(description="Present while re-indexing after a model change.")] = None


class ProblemFile(Body):
    """A file that could not be indexed, or was skipped."""

    id: int
    path: str
    kind: str
    status: Literal["error", "skipped"]
    reason: str | None
    size: Annotated[int, Field(ge=0)]

    @classmethod
    def of(cls, item: Item) -> ProblemFile:
        """The problem recorded for ``item``."""
        return cls(id=item.id, path=item.path, kind=item.kind, status=item.status, reason=item.error, size=item.size)


class ProblemList(Body):
    """A page of problem files."""

    errors: list[ProblemFile]
    total: Annotated[int, Field(ge=0)]


Count = Annotated[int, Field(ge=0)]


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
    layout: Annotated[str, Field(description="`flat` (exact) or `ivf`.")]
    building: Annotated[bool, Field(description="An IVF being (re)built in the background.")]


class Status(Body):
    """Counts, scan state and progress, model and index size."""

    counts: Counts
    scan: ScanStatus
    model: ModelInfo
    reindexing: Reindexing | None
    index: IndexInfo
    library: list[str]


class ScanStarted(Body):
    """A scan started."""

    started: Literal[True]
    status: ScanStatus


class RenditionPending(Body):
    """A browser-playable version is being made."""

    state: Literal["working"]
    message: str


class Health(Body):
    """Alive."""

    ok: Literal[True]


class Document(RootModel[dict[str, Any]]):
    """An OpenAPI document."""

"""The REST API's request and response models: the one declaration of what each route takes and gives.

Requests are validated against these (by spectree, see ``spec.py``), responses are built from them, and
``/api/openapi.json`` is generated from them. A bound that is a setting (the page size) names the setting with
``FromSetting``: it is checked against the running app's settings, and the document shows that app's values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
from http import HTTPStatus
from typing import Annotated, Any, Literal

from flask import Response as FlaskResponse
from flask import current_app, url_for
from pydantic import (
    AfterValidator,
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

from materialsearch.catalog.store import Item
from materialsearch.catalog.timeline import Sort
from materialsearch.errors import ApiErrorCode, ProblemCode, legacy_code
from materialsearch.media.thumbnails import rendition_key
from materialsearch.ocr.job import OcrStatus
from materialsearch.organise.duplicates import KeeperReason
from materialsearch.organise.places import CITIES_LISTED, location_of
from materialsearch.scan.reports import BackendDecision, Reindexing, ScanStatus, ScanWarning
from materialsearch.search.service import Match

# Ids, offsets and times beyond SQLite's integer range cannot name anything: refused as bad input.
MAX_INT = 2**63 - 1
# Formats a browser shows directly; others (HEIC, TIFF) get a JPEG rendition for the large view.
BROWSER_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "avif"}
MAX_EXCLUSIONS = 10  # `exclude` texts per search: each costs one text encoding and a pass over the results
SETTINGS_KEY = "x-from-settings"  # in a generated schema: {"maximum": "max_page_size", …}, filled in per app

ItemId = Annotated[int, Field(ge=1, le=MAX_INT)]
TimeMs = Annotated[int, Field(ge=0, le=MAX_INT)]
ItemKind = Literal["image", "video"]
MAX_TAG_FILTERS = 16  # tag= parameters one search takes (each is one more SQL condition)
MAX_CLASSIFY_LABELS = 200  # labels one classify request takes (each is a sentence through the text tower)
MAX_LABEL_LENGTH = 200  # characters per label (cn_clip's context is 52 tokens anyway)


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
class CodedValueError(ValueError):
    """A validator's refusal with a more precise code than ``invalid_parameter`` (spec.validation_code reads it)."""

    def __init__(self, message: str, code: ApiErrorCode):
        super().__init__(message)
        self.code = code


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


def _as_list(value: Any) -> Any:
    # A form field arrives as one string; a repeated query parameter as a list.
    return [value] if isinstance(value, str) else value


class PageParams(Params):
    """A page of results."""

    limit: Annotated[
        int,
        Field(ge=1, description="Results per page (default MS_PAGE_SIZE, at most MS_MAX_PAGE_SIZE)."),
        FromSetting(maximum="max_page_size", default="page_size"),
    ] = None
    offset: Annotated[int, Field(ge=0, le=MAX_INT, description="How many results to skip.")] = 0


class LibraryFilters(Params):
    """Which items: the filters every search and the timeline take."""

    path: Annotated[str, Field(description="Only items whose path contains this text.")] = None
    name: Annotated[
        str,
        Field(
            description="Only items whose file name contains this text (case-insensitive for ASCII); without "
            "`q`, `like` or a picture, a search by name ranked by match quality."
        ),
    ] = None
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
    place: Annotated[
        str,
        Field(
            max_length=200,
            description="Only items taken in this city, region or country: its English or Chinese name (any case) "
            "or ISO country code, as `/api/places` lists them.",
        ),
    ] = None
    tag: Annotated[
        list[str],
        BeforeValidator(_as_list),
        Field(
            max_length=MAX_TAG_FILTERS,
            description="Only items with this tag (a key from `/api/tags`); repeat it for items with all of them.",
        ),
    ] = None

    @model_validator(mode="after")
    def _dates_in_order(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


class FilterParams(PageParams, LibraryFilters):
    """The options every search takes."""

    min_score: Annotated[
        float,
        Field(
            ge=-1,
            le=1,
            allow_inf_nan=False,
            description="Only results at least this similar (cosine); `total` then counts only those.",
        ),
    ] = None


class ItemsQuery(LibraryFilters):
    """``GET /api/items``: the timeline, a page at a time."""

    sort: Annotated[
        Literal[Sort.DATE_DESC, Sort.DATE_ASC],
        Field(description="`date_desc` (newest first, default) or `date_asc`, by capture time."),
    ] = Sort.DATE_DESC
    limit: Annotated[
        int,
        Field(ge=1, description="Items per page (default MS_PAGE_SIZE, at most MS_MAX_PAGE_SIZE)."),
        FromSetting(maximum="max_page_size", default="page_size"),
    ] = None
    cursor: Annotated[
        str, Field(max_length=512, description="`next_cursor` of the previous page (absent: the first page).")
    ] = None


def _text_list(value: Any) -> Any:
    # One value arrives as a string, several as a list (query string or form): a list without blank entries.
    values = [value] if isinstance(value, str) else value
    return [v for v in values if not (isinstance(v, str) and not v.strip())] if isinstance(values, list) else value


class NarrowParams(Params):
    """How a search narrows and orders its results."""

    sort: Annotated[
        Sort,
        Field(
            description="`score` (best first, default), or by capture time: `date_desc` (newest first) or "
            "`date_asc`; a date order keeps only the good matches unless `match=all`."
        ),
    ] = Sort.SCORE
    match: Annotated[
        Match,
        Field(
            description="`good`: only results that stand out from this query's own scores over the library (a "
            "z-score rule, see the README); `all`: every result. Default: `all` with `sort=score` (as scripts "
            "always got), `good` with a date order. With `good` the answer says how many `more` `all` gives."
        ),
    ] = None
    exclude: Annotated[
        list[Annotated[str, Field(max_length=500)]],
        BeforeValidator(_text_list),
        Field(
            max_length=MAX_EXCLUSIONS,
            description="Leave out results that look like this text (high relative to the text's own scores over "
            "the library); repeat for several.",
        ),
    ] = None
    stack: Annotated[
        bool,
        Field(
            description="Collapse near-identical results (copies, bursts, edits) into one with `stack_size` "
            "(default true; `false`: every result on its own)."
        ),
    ] = True


class TextSearch(FilterParams, NarrowParams):
    """``GET /api/search``: words, or an item to find similar ones to, or a file name / folder keyword."""

    q: Annotated[str, Field(description="What to look for (a sentence, Chinese or English).")] = None
    like: Annotated[ItemId, Field(description="Find items similar to this indexed item (a video: its mean frame).")] = (
        None
    )
    t: Annotated[TimeMs, Field(description="With `like` on a video: similar to its frame at `t` ms.")] = None
    text: Annotated[
        str,
        Field(
            description="Photos whose recognised text (OCR) contains all these words (Chinese substrings, English "
            "words; case, width, punctuation and traditional/simplified folded); with `q`, ordered by `q`."
        ),
    ] = None
    include_hidden: Annotated[
        bool, Field(description="Also find the items hidden from results (see `/api/hidden`; left out by default).")
    ] = False

    @model_validator(mode="after")
    def _one_query(self):
        if self.q is None and self.like is None and self.text is None and self.name is None and self.path is None:
            raise CodedValueError(
                "give a query: q=TEXT, text=WORDS, like=ITEM_ID, name=FILE_NAME or path=FOLDER (or POST an image)",
                ApiErrorCode.MISSING_QUERY,
            )
        if self.like is not None and self.text is not None:
            raise CodedValueError("give either text or like, not both", ApiErrorCode.CONFLICTING_QUERY)
        if self.q is not None and self.like is not None:
            raise CodedValueError("give either q or like, not both", ApiErrorCode.CONFLICTING_QUERY)
        return self


class ImageSearch(FilterParams, NarrowParams):
    """``POST /api/search``: a picture (multipart), optionally refined with words."""

    image: Annotated[BaseFile, Field(description="The picture.")]
    q: Annotated[str, Field(description="Words that refine the picture.")] = None


def _label_list(value: Any) -> Any:
    # Form fields are text: a JSON array, or labels separated by new lines or commas.
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"labels is not a JSON array of strings: {exc}") from None
    return [part for part in re.split(r"[\n,，]", text) if part.strip()]


def _unique_labels(labels: list[str]) -> list[str]:
    stripped = [label.strip() for label in labels]
    if not all(stripped):
        raise ValueError("a label is blank")
    repeated = sorted({label for label in stripped if stripped.count(label) > 1})
    if repeated:
        raise ValueError(f"labels repeat: {', '.join(repeated)}")
    return stripped


Labels = Annotated[
    list[Annotated[str, Field(max_length=MAX_LABEL_LENGTH)]],
    BeforeValidator(_label_list),
    AfterValidator(_unique_labels),
    Field(
        min_length=1,
        max_length=MAX_CLASSIFY_LABELS,
        description="The candidate labels, Chinese or English (a form: a JSON array, or one per line).",
    ),
]


def _template(value: str) -> str:
    if "{}" not in value:
        raise ValueError(f"the template must contain {{}} where the label goes, got {value!r}")
    return value


Template = Annotated[
    str,
    AfterValidator(_template),
    Field(
        max_length=MAX_LABEL_LENGTH,
        description="The sentence each label is put into at `{}`, e.g. `一张{}的照片` or `a photo of {}`; "
        "`{}` (the default) uses the labels as given.",
    ),
]


class ClassifyItem(BaseModel):
    """``POST /api/classify`` (JSON): labels for an indexed item (a video: its mean frame, or its frame at ``t``)."""

    labels: Labels
    item_id: Annotated[ItemId, Field(description="The indexed item to classify.")]
    t: Annotated[TimeMs, Field(description="Videos: classify the indexed frame at `t` ms.")] = None
    template: Template = "{}"


class ClassifyUpload(Params):
    """``POST /api/classify`` (multipart): labels for an uploaded picture."""

    image: Annotated[BaseFile, Field(description="The picture.")]
    labels: Labels
    template: Template = "{}"


class ImageUpload(Params):
    """``POST /api/query-preview``: a picture (multipart) to be shown as the query image."""

    # Not required in the schema: its absence is answered by the route (400, missing_image), the same as no form.
    image: Annotated[BaseFile, Field(description="The picture (required).")] = None


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
    """Every error: ``{error, code, message, status}`` with the HTTP status."""

    error: Annotated[str, Field(description="HTTP reason phrase, e.g. `Bad Request`.")]
    code: Annotated[
        ApiErrorCode,
        Field(
            description="What went wrong, as a stable code (for translations and scripts):\n" + ApiErrorCode.described()
        ),
    ]
    message: Annotated[str, Field(description="What was wrong, for people.")]
    status: Annotated[int, Field(ge=400, le=599)]


def error_response(
    status: int, message: str, name: str | None = None, code: ApiErrorCode | None = None
) -> FlaskResponse:
    """The JSON answer to a failed request (``name``: the reason phrase, by default the standard one; ``code``:
    by default the status's general code)."""
    body = Error(
        error=name or HTTPStatus(status).phrase,
        code=code or ApiErrorCode.for_status(status),
        message=message,
        status=status,
    )
    return current_app.response_class(body.model_dump_json(), status=status, mimetype="application/json")


def _version(item: Item) -> str:
    # Renditions are cached by browsers for a day; the version changes when the file does.
    return rendition_key(item.path, item.size, item.mtime_ns)[:12]


OptionalName = Annotated[str | None, Field(description="Absent (null) where the data has no such name.")]


class Location(Body):
    """Where an item was taken: its GPS position and the place it resolves to (offline, GeoNames data)."""

    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    city: OptionalName
    city_zh: OptionalName
    region: OptionalName
    country_code: Annotated[str | None, Field(description="ISO 3166-1 alpha-2.")]
    country: OptionalName
    country_zh: OptionalName


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
    raw_url: Annotated[
        str,
        Field(description="Photos shot as RAW + JPEG/HEIC: the camera RAW original (this item shows the JPEG/HEIC)."),
    ] = None
    tags: Annotated[
        list[str], Field(description="The item's zero-shot tags (keys of `/api/tags`), most standing-out first.")
    ] = None
    location: Annotated[
        Location | None, Field(description="Where it was taken (absent when the file has no usable GPS).")
    ] = None

    @classmethod
    def fields_of(cls, item: Item, motion: Item | None = None, raw: Item | None = None) -> dict[str, Any]:
        """The public view of ``item`` (``motion``: its Live Photo movie, ``raw``: its camera RAW original, if it
        has them), as field values."""
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
            if raw is not None:
                extra["raw_url"] = url_for("api.item_file", item_id=raw.id)
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
            **({"location": location} if (location := location_of(item)) else {}),
        }

    @classmethod
    def of(cls, item: Item, motion: Item | None = None, raw: Item | None = None) -> ItemView:
        """The public view of ``item``."""
        return cls(**cls.fields_of(item, motion, raw))


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
    snippet: Annotated[str, Field(description="Photos whose text matched: the best-matching line, as read.")] = None
    stack_size: Annotated[
        int, Field(ge=1, description="How many near-identical results this one stands for (1 when alone).")
    ]
    stack_url: Annotated[
        str,
        Field(
            description="When `stack_size` > 1: every indexed item near-identical to this one (`GET "
            "/api/items/{item_id}/stack`), which holds the stack's members."
        ),
    ] = None

    @classmethod
    def of_hit(cls, hit, motion: Item | None = None, raw: Item | None = None) -> SearchHit:
        """The result for one hit of a search."""
        fields = {
            **ItemView.fields_of(hit.item, motion, raw),
            "score": round(hit.score, 6),
            "stack_size": hit.stack_size,
        }
        if hit.stack_size > 1:
            fields["stack_url"] = url_for("api.item_stack", item_id=hit.item.id)
        if getattr(hit, "snippet", None) is not None:  # fusion.TextMatchHit
            fields["snippet"] = hit.snippet
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


class TextLine(Body):
    """A line of text read in a photo."""

    text: str
    box: Annotated[
        list[Annotated[float, Field(ge=0, le=1)]],
        Field(
            min_length=4,
            max_length=4,
            description="[left, top, right, bottom] in the upright photo, as fractions of its width and height.",
        ),
    ]
    confidence: Annotated[float, Field(ge=0, le=1, description="The recogniser's confidence.")]


class ItemText(Body):
    """What OCR read in the photo."""

    status: Annotated[
        Literal["done", "error", "waiting"], Field(description="`waiting`: not read yet (or not a photo).")
    ]
    lines: list[TextLine]
    error: Annotated[str | None, Field(description="Why OCR could not read it.")] = None

    @classmethod
    def of(cls, stored) -> ItemText:
        """From ``ocrstore.ItemText``."""
        lines = [TextLine(text=line.text, box=list(line.box), confidence=line.confidence) for line in stored.lines]
        error = {"error": stored.error} if stored.error is not None else {}
        return cls(status=stored.status or "waiting", lines=lines, **error)


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
    more: Annotated[
        int,
        Field(
            ge=0,
            description="With good matches only: about how many more items `match=all` would give (items, "
            "whether stacked or not; an estimate like `total`).",
        ),
    ] = None
    reindexing: Annotated[Reindexing, Field(description="Present while re-indexing after a model change.")] = None


class ItemList(Body):
    """A page of the timeline."""

    results: list[ItemView]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page; null at the end.")]


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


class DownloadRequest(BaseModel):
    """``POST /api/download``: which originals to zip."""

    ids: Annotated[
        list[ItemId],
        Field(
            min_length=1,
            description="Item ids from results (never paths); at most MS_MAX_DOWNLOAD_ITEMS, repeats count once.",
        ),
    ]


class MediaInfo(Body):
    """What the file itself says (read on demand; a fact it does not carry is left out)."""

    file_size: Annotated[int, Field(ge=0, description="Bytes, now.")] = None
    width: Annotated[int, Field(ge=0, description="Upright pixel width.")] = None
    height: Annotated[int, Field(ge=0)] = None
    camera_make: str = None
    camera_model: str = None
    lens: str = None
    exposure_time: Annotated[float, Field(ge=0, description="Shutter time in seconds (1/250 s: 0.004).")] = None
    f_number: Annotated[float, Field(ge=0, description="Aperture, e.g. 1.8 for f/1.8.")] = None
    iso: Annotated[int, Field(ge=0)] = None
    focal_length: Annotated[float, Field(ge=0, description="In mm.")] = None
    focal_length_35mm: Annotated[int, Field(ge=0, description="35 mm-equivalent focal length, in mm.")] = None
    latitude: Annotated[float, Field(ge=-90, le=90, description="GPS, decimal degrees north.")] = None
    longitude: Annotated[float, Field(ge=-180, le=180, description="GPS, decimal degrees east.")] = None
    altitude: Annotated[float, Field(description="GPS, metres above sea level.")] = None
    duration: Annotated[float, Field(ge=0, description="Videos: seconds.")] = None
    codec: Annotated[str, Field(description="Videos: the video codec.")] = None
    container: Annotated[str, Field(description="Videos: the container format.")] = None
    has_audio: Annotated[bool, Field(description="Videos: whether there is a sound track.")] = None
    error: Annotated[str, Field(description="Why the file could not be read (then little else is given).")] = None


class ItemDetail(ItemView):
    """An indexed item, with the text read in it and what its file says (for an info panel)."""

    text: ItemText
    info: MediaInfo


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

    @classmethod
    def of(cls, item: Item) -> ProblemFile:
        """The problem recorded for ``item``."""
        return cls(
            id=item.id,
            path=item.path,
            kind=item.kind,
            status=item.status,
            reason=item.error,
            error_code=item.error_code or legacy_code(item.error) or ProblemCode.UNKNOWN,
            size=item.size,
        )


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
    ocr: Annotated[OcrStatus, Field(description="The OCR pass (text in photos), which follows each scan.")]


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


class Document(RootModel[dict[str, Any]]):
    """An OpenAPI document."""


# --- duplicates -------------------------------------------------------------------------------------------------
MAX_IDS = 10000  # ids per hide/restore request


class DuplicatesQuery(PageParams):
    """``GET /api/duplicates``: a page of groups, of photos, videos or both."""

    kind: Annotated[
        Literal["all", "image", "video"],
        BeforeValidator(_lower),
        Field(description="Which groups: `all` (default), `image` or `video`."),
    ] = "all"


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


class ItemIds(BaseModel):
    """A JSON body naming items."""

    ids: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_IDS, description="Item ids.")]


class HiddenList(Body):
    """The items hidden from results."""

    ids: Annotated[list[int], Field(description="Every hidden item's id, ascending.")]
    total: Annotated[int, Field(ge=0)]

"""The REST API's request models: the query, form and JSON parameters each route takes, validated by spectree
before the route runs (a refusal is a 400 naming the parameter)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PlainValidator, WithJsonSchema, model_validator
from spectree.model_adapter.pydantic_adapter import BaseFile

from materialsearch.application import Match, Sort
from materialsearch.errors import ApiErrorCode
from materialsearch.web.models import (
    MAX_CLASSIFY_LABELS,
    MAX_EXCLUSIONS,
    MAX_IDS,
    MAX_INT,
    MAX_LABEL_LENGTH,
    MAX_TAG_FILTERS,
    CodedValueError,
    FromSetting,
    ItemId,
    Params,
    TimeMs,
)


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


# ``parse`` on both searches (GET with words, POST with a picture and words): declared once.
ParseSentence = Annotated[
    bool,
    Field(
        description="Read `q` as a sentence first (default true): its dates, place, quoted words (→ `text`), "
        "exclusions, kind, `#tags` and file names become filters and the answer's `understood` says so; the "
        "parameters given here win over what it read. `false`: `q` goes to the model as it is."
    ),
]


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

    person: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_INT)]],
        BeforeValidator(_as_list),
        Field(
            max_length=MAX_TAG_FILTERS,
            description="Only photos this person (an id from `/api/people`) is in; repeat it for photos with all "
            "of them.",
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
    parse: ParseSentence = True

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
    parse: ParseSentence = True


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


class DownloadRequest(BaseModel):
    """``POST /api/download``: which originals to zip."""

    ids: Annotated[
        list[ItemId],
        Field(
            min_length=1,
            description="Item ids from results (never paths); at most MS_MAX_DOWNLOAD_ITEMS, repeats count once.",
        ),
    ]


def _id_list(value: Any) -> Any:
    # A form field is text: ids separated by commas (or spaces).
    return [part for part in re.split(r"[,\s]+", value) if part] if isinstance(value, str) else value


class DownloadForm(Params):
    """``POST /api/download`` as a form (what the page submits, so that the browser saves the stream itself)."""

    ids: Annotated[
        list[ItemId],
        BeforeValidator(_id_list),
        Field(min_length=1, description="Item ids separated by commas; the rest as in the JSON body."),
    ]


class DuplicatesQuery(PageParams):
    """``GET /api/duplicates``: a page of groups, of photos, videos or both."""

    kind: Annotated[
        Literal["all", "image", "video"],
        BeforeValidator(_lower),
        Field(description="Which groups: `all` (default), `image` or `video`."),
    ] = "all"


class ItemIds(BaseModel):
    """A JSON body naming items."""

    ids: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_IDS, description="Item ids.")]

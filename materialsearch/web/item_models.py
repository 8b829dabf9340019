"""The REST API's response models for items: an item's public view (with the URLs of its files), search results,
the timeline's pages and an item's details."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import urllib.parse
from typing import Annotated, Any, Literal

from flask import current_app, g, url_for
from pydantic import BaseModel, Field

from materialsearch.application import FoundItem, ItemEntry, Reindexing
from materialsearch.web.models import BROWSER_IMAGE_EXTENSIONS, Body, ItemKind, OptionalName
from materialsearch.web.people_models import FaceView

ANIMATABLE_EXTENSIONS = {"gif", "webp"}  # the viewer shows these as they are (a rendition would stop them)
# An item id no library reaches, put in a route's URL once per request and replaced by each item's (``item_url``).
_ANY_ITEM = 987654321987654321


def item_url(endpoint: str, item_id: int, **query: object) -> str:
    """What ``url_for(endpoint, item_id=item_id, **query)`` gives, built from the route's URL made once per request.

    A page of results names 3–5 URLs per item; ``url_for`` took 45 µs each (AMD EPYC, 2 cores, loaded), ~3 ms of a
    20-result search (a text search's budget is 15 ms) and more on a timeline page. The query arguments are
    encoded as ``url_for`` encodes them, in the order given."""
    templates = g.setdefault("item_url_templates", {})
    template = templates.get(endpoint)
    if template is None:
        template = templates[endpoint] = url_for(endpoint, item_id=_ANY_ITEM).split(str(_ANY_ITEM))
    url = str(item_id).join(template)
    return f"{url}?{urllib.parse.urlencode(query)}" if query else url


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
        str,
        Field(
            description="What a browser should show large: a screen-sized JPEG rendition (long side "
            "MS_PREVIEW_SIZE, cached like thumbnails) for photos larger than that and for HEIC/TIFF, else the "
            "original (a GIF or WebP always: it may move)."
        ),
    ]
    zoom_url: Annotated[
        str,
        Field(
            description="What to load once the picture is zoomed in: the original when browsers show it, else "
            "`view_url`."
        ),
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
    def fields_of(cls, entry: ItemEntry) -> dict[str, Any]:
        """The public view of an entry's item (with its Live Photo movie, its camera RAW original and its tags
        when the entry has them), as field values."""
        item, version = entry.item, entry.version
        ext = os.path.splitext(item.path)[1].lower().lstrip(".")
        file_url = item_url("api.item_file", item.id)
        if item.kind == "video":
            extra = {
                "duration": item.duration_ms / 1000 if item.duration_ms is not None else None,
                "playable": bool(item.playable),
                "play_url": file_url if item.playable else item_url("api.item_stream", item.id, v=version),
            }
        else:
            has_motion = entry.motion is not None or item.motion_offset is not None
            extra = {
                "live": entry.motion is not None,
                "motion_photo": item.motion_offset is not None,
                "motion_url": item_url("api.item_motion", item.id, v=version) if has_motion else None,
            }
            if entry.raw is not None:
                extra["raw_url"] = item_url("api.item_file", entry.raw.id)
        shown = ext in BROWSER_IMAGE_EXTENSIONS or item.kind == "video"
        preview_url = item_url("api.item_preview", item.id, v=version)
        view_url = file_url if shown and not _larger_than_a_screen(item, ext) else preview_url
        return {
            "id": item.id,
            "path": item.path,
            "name": os.path.basename(item.path),
            "kind": item.kind,
            "taken_at": item.taken_at.isoformat() if item.taken_at else None,
            "width": item.width,
            "height": item.height,
            "size": item.size,
            "thumbnail_url": item_url("api.item_thumbnail", item.id, v=version),
            "file_url": file_url,
            "view_url": view_url,
            "zoom_url": file_url if shown else preview_url,
            **extra,
            **({"tags": list(entry.tags)} if entry.tags is not None else {}),
            **({"location": entry.location} if entry.location else {}),
        }

    @classmethod
    def of(cls, entry: ItemEntry) -> ItemView:
        """The public view of an entry's item."""
        return cls(**cls.fields_of(entry))


def _larger_than_a_screen(item, ext: str) -> bool:
    """A still photo whose long side exceeds MS_PREVIEW_SIZE: the viewer shows its rendition (a 12 MP JPEG is
    ~3 MB, a 200 MP one takes seconds to decode), the original only on zoom. GIF and WebP may move: never."""
    if item.kind == "video" or ext in ANIMATABLE_EXTENSIONS:
        return False
    preview_size = current_app.extensions["materialsearch"].settings.preview_size
    return max(item.width or 0, item.height or 0) > preview_size


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
    def of_found(cls, found: FoundItem) -> SearchHit:
        """The result for one hit of a search."""
        item = found.entry.item
        fields = {**ItemView.fields_of(found.entry), "score": round(found.score, 6), "stack_size": found.stack_size}
        if found.stack_size > 1:
            fields["stack_url"] = item_url("api.item_stack", item.id)
        if found.snippet is not None:
            fields["snippet"] = found.snippet
        moment = found.moment
        if moment is not None:
            fields.update(
                start=moment.start_ms / 1000,
                end=moment.end_ms / 1000,
                time=moment.time_ms / 1000,
                thumbnail_url=item_url("api.item_thumbnail", item.id, t=moment.time_ms, v=found.entry.version),
                clip_url=item_url(
                    "api.item_clip",
                    item.id,
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
        """From the catalog's stored text of an item (``ItemDetails.text``)."""
        lines = [TextLine(text=line.text, box=list(line.box), confidence=line.confidence) for line in stored.lines]
        error = {"error": stored.error} if stored.error is not None else {}
        return cls(status=stored.status or "waiting", lines=lines, **error)


class UnderstoodPart(BaseModel):
    """One piece of the sentence that became a filter (or is offered as one)."""

    field: Annotated[
        Literal["date", "place", "text", "exclude", "kind", "tag", "name", "person"],
        Field(
            description="The filter it sets: `date` (date_from/date_to), `place`, `text`, `exclude`, `kind`, "
            "`tag`, `name`, `person` (a named person's name: `people` holds their ids)."
        ),
    ]
    value: Annotated[
        str,
        Field(
            description="Its value: a date range as `YYYY-MM-DD/YYYY-MM-DD` (an open end empty), a place name, the "
            "quoted words, the excluded word, `image`/`video`/`live photo`, a tag key, a file name."
        ),
    ]
    start: Annotated[int, Field(ge=0, description="Where it starts in `q` (characters).")]
    end: Annotated[int, Field(ge=0, description="Where it ends in `q` (exclusive).")]


class UnderstoodQuery(BaseModel):
    """What a search sentence was read as: the words left for the model and the filters it named."""

    q: Annotated[str, Field(description="The words left for the model (empty: the filters alone answered).")]
    date_from: Annotated[dt.date | None, Field(description="Taken on or after (inclusive).")] = None
    date_to: Annotated[dt.date | None, Field(description="Taken on or before (inclusive).")] = None
    place: Annotated[str | None, Field(description="A city, region or country, as `place=` takes it.")] = None
    text: Annotated[str | None, Field(description="Quoted words: looked for in the photos' text (`text=`).")] = None
    exclude: Annotated[list[str], Field(description="Words whose look-alikes are left out (`exclude=`).")] = []
    kind: Annotated[Literal["image", "video"] | None, Field(description="`image` or `video`.")] = None
    tag: Annotated[list[str], Field(description="Tag keys (`tag=`).")] = []
    name: Annotated[str | None, Field(description="A file name (`name=`).")] = None
    people: Annotated[list[int], Field(description="People named in the sentence (`person=`).")] = []
    parts: Annotated[list[UnderstoodPart], Field(description="The pieces applied, in sentence order.")] = []
    offered: Annotated[
        list[UnderstoodPart], Field(description="Uncertain pieces, not applied (a client may offer them).")
    ] = []

    @classmethod
    def of(cls, understood) -> UnderstoodQuery:
        """The model of ``search.understand.Understood``."""
        return cls(
            **{
                field: getattr(understood, field)
                for field in ("q", "date_from", "date_to", "place", "text", "kind", "name")
            },
            exclude=list(understood.exclude),
            tag=list(understood.tag),
            people=list(understood.people),
            parts=[UnderstoodPart(**dataclasses.asdict(part)) for part in understood.parts],
            offered=[UnderstoodPart(**dataclasses.asdict(part)) for part in understood.offered],
        )


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
    understood: Annotated[
        UnderstoodQuery, Field(description="What `q` was read as (present when `q` was given and `parse` is on).")
    ] = None
    scores: Annotated[
        Literal["similarity", "name", "none"],
        Field(
            description="What each result's `score` is: `similarity` (the cosine between the query and the item, "
            "−1 to 1), `name` (how well the file name matches: 1 exact, 0.75 prefix, 0.5 a word, 0.25 inside) or "
            "`none` (the filters alone answered, newest first: the score means nothing)."
        ),
    ] = "similarity"


class ItemList(Body):
    """A page of the timeline."""

    results: list[ItemView]
    next_cursor: Annotated[str | None, Field(description="Pass as `cursor` for the next page; null at the end.")]


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
    faces: Annotated[
        list[FaceView],
        Field(
            description="The faces found in it, left to right; in a video, each person once, at the sampled frame "
            "where their face was found best (`time_ms`)."
        ),
    ]


class RenditionPending(Body):
    """A browser-playable version is being made."""

    state: Literal["working"]
    message: str

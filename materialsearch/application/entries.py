"""What every item-listing use case shares: the caller's ``Scope`` turned into the catalog's filters, items paired
with their Live Photo movies, RAW originals, tags and place (``ItemEntry``), and an item's file found in the
library."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from materialsearch.application.errors import ApiError, BadRequest
from materialsearch.catalog.filters import Filters
from materialsearch.catalog.records import ItemStatus, Kind
from materialsearch.catalog.rows import ItemRow as Item
from materialsearch.catalog.store import Store
from materialsearch.errors import ApiErrorCode
from materialsearch.media.thumbnails import rendition_key
from materialsearch.organise.places import location_of
from materialsearch.organise.tags import Tagger
from materialsearch.scan.walk import servable_path
from materialsearch.search.service import NotFound


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which items a search or the timeline looks at, as a caller names them (``kind``: all, image or video;
    ``tags``: tag keys as given, checked against the label set)."""

    path: str | None = None
    name: str | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    kind: str = "all"
    place: str | None = None
    tags: tuple[str, ...] | None = None
    people: tuple[int, ...] | None = None  # person ids who must all be in the photo
    include_hidden: bool = False


@dataclasses.dataclass(frozen=True)
class ItemEntry:
    """An item with what goes with it: its Live Photo movie (``motion``), its camera RAW original (``raw``), its
    tags (None: not asked for), where it was taken (``location``) and its renditions' version."""

    item: Item
    version: str
    motion: Item | None = None
    raw: Item | None = None
    tags: tuple[str, ...] | None = None
    location: dict[str, object] | None = None


def version_of(item: Item) -> str:
    """The version of an item's renditions: browsers cache them for a day, and it changes when the file does."""
    return rendition_key(item.path, item.size, item.mtime_ns)[:12]


class ItemCompanions:
    """Turns a ``Scope`` into the catalog's ``Filters``, and items into ``ItemEntry``s (one query per kind of
    companion for a whole page)."""

    def __init__(self, store: Store, tagger: Tagger):
        self.store, self.tagger = store, tagger

    def filters(self, scope: Scope) -> Filters:
        """The catalog's filters for ``scope``; BadRequest naming unknown tag keys."""
        kind = None if scope.kind == "all" else scope.kind
        hide = None if scope.include_hidden or not self.store.duplicates.has_hidden() else True
        return Filters(
            path_contains=scope.path,
            name_contains=scope.name,
            date_from=scope.date_from,
            date_to=scope.date_to,
            kind=kind,
            tags=self._tag_keys(scope.tags),
            exclude_hidden=hide,
            place=scope.place,
            people=self._people(scope.people),
        )

    def _people(self, ids: Sequence[int] | None) -> tuple[int, ...] | None:
        """The ``person=`` ids, each checked to exist (400 naming the unknown ones)."""
        if not ids:
            return None
        ids = tuple(dict.fromkeys(ids))
        unknown = [person for person in ids if self.store.faces.person(person) is None]
        if unknown:
            raise BadRequest(f"unknown person {', '.join(map(str, unknown))}: GET /api/people lists the people")
        return ids

    def _tag_keys(self, keys: Sequence[str] | None) -> tuple[str, ...] | None:
        """The ``tag=`` keys, each checked against the label set in use (400 naming the unknown ones)."""
        if not keys:
            return None
        keys = list(dict.fromkeys(key.strip() for key in keys))
        unknown = self.tagger.unknown(keys)
        if unknown:
            raise BadRequest(f"unknown tag {', '.join(map(repr, unknown))}: GET /api/tags lists the tags")
        return tuple(keys)

    def entries(self, items: Sequence[Item], raws: bool = True, tags: bool = True) -> list[ItemEntry]:
        """``items`` as entries: photos with their movies (and RAW originals unless ``raws`` is false), and
        everything with its tags when ``tags``."""
        photos = [item.path for item in items if item.kind == Kind.IMAGE]
        motions = self.store.motions_for(photos)
        originals = self.store.raws_for(photos) if raws else {}
        tagged = self.tagger.tags_of({item.id for item in items}) if tags else None
        return [
            ItemEntry(
                item=item,
                version=version_of(item),
                motion=motions.get(item.path),
                raw=originals.get(item.path),
                tags=tuple(tagged.get(item.id, [])) if tagged is not None else None,
                location=location_of(item),
            )
            for item in items
        ]


class ItemLookup:
    """Indexed items by id, and where their files are now."""

    def __init__(self, store: Store, settings):
        self.store, self.settings = store, settings

    def indexed(self, item_id: int) -> Item:
        """The indexed item ``item_id``; NotFound otherwise."""
        item = self.store.get_item(item_id)
        if item is None or item.status != ItemStatus.OK:
            raise NotFound(f"item {item_id} does not exist or is not indexed")
        return item

    def video(self, item_id: int) -> Item:
        """The indexed video ``item_id``; BadRequest when it is a photo."""
        item = self.indexed(item_id)
        if item.kind != Kind.VIDEO:
            raise BadRequest(f"item {item_id} is not a video", ApiErrorCode.NOT_A_VIDEO)
        return item

    def servable(self, path: str) -> str | None:
        """The real path of a library file; None when it now resolves outside the library."""
        settings = self.settings
        return servable_path(path, settings.library, settings.follow_symlinks, exclude=[settings.data_dir])

    def source(self, item: Item) -> str:
        """The real path of an item's file; 404 when it now resolves outside the library (a re-pointed symlink)."""
        path = self.servable(item.path)
        if path is None:
            code = ApiErrorCode.ORIGINAL_GONE
            raise ApiError(404, code, f"the original of item {item.id} is not inside the library any more")
        return path

"""Browsing the library item by item: the timeline, one item's details (its text, its file's facts), and an item's
stack of near-identical items."""

from __future__ import annotations

import dataclasses

from materialsearch.application.entries import ItemCompanions, ItemEntry, ItemLookup, Scope
from materialsearch.catalog.faces import StoredFace
from materialsearch.catalog.records import Kind
from materialsearch.catalog.text import OcrStore, StoredText
from materialsearch.catalog.timeline import Sort, timeline_page
from materialsearch.media.exif_info import media_info
from materialsearch.search.service import SearchService


@dataclasses.dataclass(frozen=True)
class TimelineSlice:
    """A page of the timeline and the cursor of the next one (None at the end)."""

    entries: tuple[ItemEntry, ...]
    next_cursor: str | None


@dataclasses.dataclass(frozen=True)
class ItemDetails:
    """One indexed item with its companions, the text read in it and what its file says now (``info``: the facts
    it carries, or ``error``)."""

    entry: ItemEntry
    text: StoredText
    info: dict[str, object]
    faces: tuple[StoredFace, ...] = ()


class Browsing:
    """The timeline, item details and stacks."""

    def __init__(self, lookup: ItemLookup, companions: ItemCompanions, search: SearchService, ocr_store: OcrStore):
        self.lookup, self.companions, self.search, self.ocr_store = lookup, companions, search, ocr_store

    def timeline(self, scope: Scope, sort: str, limit: int, cursor: str | None) -> TimelineSlice:
        """Every indexed item in ``scope`` by capture time (``sort``: date_desc or date_asc), a page at a time:
        pages follow by keyset (``cursor``: the previous page's ``next_cursor``)."""
        page = timeline_page(self.lookup.store, self.companions.filters(scope), Sort(sort), limit, cursor)
        return TimelineSlice(entries=tuple(self.companions.entries(page.items)), next_cursor=page.next_cursor)

    def details(self, item_id: int) -> ItemDetails:
        """The indexed item ``item_id``, its text and its file's facts (read now, never written)."""
        item = self.lookup.indexed(item_id)
        text = self.ocr_store.text_of(item.id)
        source = self.lookup.servable(item.path)
        facts = media_info(source, item.kind).given() if source else {"error": "the original is outside the library"}
        faces = tuple(self.lookup.store.faces.faces_of(item.id))
        if item.kind == Kind.VIDEO:
            faces = _each_person_once(faces)
        return ItemDetails(entry=self.companions.entries([item])[0], text=text, info=facts, faces=faces)

    def stack(self, item_id: int, scope: Scope) -> tuple[ItemEntry, ...]:
        """The item, then every indexed item in ``scope`` near-identical to it, most similar first."""
        self.lookup.indexed(item_id)
        members = self.search.stack_of(item_id, self.companions.filters(scope))
        return tuple(self.companions.entries(members, raws=False))


def _each_person_once(faces):
    """A video's faces as its details list them: each person once, at the frame where the detector was surest of
    their face (a video holds a face per sampled frame: an hour at 2 s is 1 800 frames), in time order."""
    best = {}
    for face in faces:
        if face.person_id is not None and (face.person_id not in best or face.score > best[face.person_id].score):
            best[face.person_id] = face
    return tuple(sorted(best.values(), key=lambda face: (face.time_ms or 0, face.box[0])))

"""Searching: by words, by an example picture, by similarity to an item, by file name; zero-shot classification;
the query picture's preview. Each answer comes with its items' companions (``ItemEntry``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence

from materialsearch.application.entries import ItemCompanions, ItemEntry, Scope
from materialsearch.application.errors import BadRequest
from materialsearch.catalog.timeline import Sort
from materialsearch.errors import ApiErrorCode
from materialsearch.media.decode import DecodeError
from materialsearch.media.thumbnails import Renditions
from materialsearch.organise.classify import Classifier, Scored
from materialsearch.scan.reports import Reindexing
from materialsearch.search.fusion import FusedSearch
from materialsearch.search.relevance import QueryKind
from materialsearch.search.service import Match, Moment, Narrowing, Page, RankedResults, SearchService
from materialsearch.search.understand import SentenceReader, Understood

# What a search's scores are: a cosine similarity, a file-name match quality, or nothing (the filters answered).
SIMILARITY, NAME, NONE = "similarity", "name", "none"


@dataclasses.dataclass(frozen=True)
class Ordering:
    """How a search narrows and orders its results: ``sort``, ``match`` (None: the sort's default), texts whose
    look-alikes are left out (``exclude``), and whether near-identical results are stacked."""

    sort: Sort = Sort.SCORE
    match: Match | None = None
    exclude: tuple[str, ...] = ()
    stack: bool = True


@dataclasses.dataclass(frozen=True)
class FoundItem:
    """One search result: the item with its companions, its score, how many results it stands for, and for a
    video the moment that matched; ``snippet``: the line of its text that matched (text search)."""

    entry: ItemEntry
    score: float
    stack_size: int
    moment: Moment | None = None
    snippet: str | None = None


@dataclasses.dataclass(frozen=True)
class SearchAnswer:
    """A page of results, how many match in all, how long it took; ``more``: with good matches only, about how
    many more items every match gives; ``reindexing``: while the model change is being re-embedded;
    ``understood``: what the sentence ``q`` was read as (None when it was not read); ``scores``: what the results'
    scores are (``SIMILARITY``, ``NAME`` or ``NONE``: the filters alone answered and the score means nothing)."""

    results: tuple[FoundItem, ...]
    total: int
    took_ms: float
    more: int | None = None
    reindexing: Reindexing | None = None
    understood: Understood | None = None
    scores: str = SIMILARITY


@dataclasses.dataclass(frozen=True)
class Classification:
    """Each label's probability and cosine, most probable first, and how long it took."""

    scores: tuple[Scored, ...]
    took_ms: float


class Searching:
    """The search use cases."""

    def __init__(
        self,
        search: SearchService,
        fused: FusedSearch,
        classifier: Classifier,
        renditions: Renditions,
        companions: ItemCompanions,
        reindexing: Callable[[], Reindexing | None],
        reader: SentenceReader,
    ):
        self.search, self.fused, self.classifier = search, fused, classifier
        self.renditions, self.companions, self.reindexing = renditions, companions, reindexing
        self.reader = reader

    def find(
        self,
        scope: Scope,
        page: Page,
        ordering: Ordering,
        q: str | None = None,
        text: str | None = None,
        like: int | None = None,
        t: int | None = None,
        parse: bool = True,
    ) -> SearchAnswer:
        """By similarity to item ``like`` (at its frame ``t``), by the words read in photos (``text``, ordered by
        ``q`` when given), by a sentence (``q``), or with none of them by file name / folder.

        With ``parse``, the sentence is read first (``search.understand``): its dates, place, quoted words,
        exclusions, kind, tags and file names become filters (the caller's own filters win over them), and the
        words left are the sentence for the model; with none left the filters alone answer, newest first."""
        understood = None
        if parse and q is not None and like is None:
            understood, scope, ordering, text, q = self._read(q, scope, ordering, text)
            if not q and text is None:
                narrowing = self._narrowing(_newest_first(ordering), QueryKind.TEXT)
                answer = self.search.search_names(self.companions.filters(scope), page, narrowing)
                return self._answer(answer, understood, scores=NONE)
        filters = self.companions.filters(scope)
        if like is not None:
            vector = self.search.item_vector(like, t)
            narrowing = self._narrowing(ordering, QueryKind.IMAGE)
            return self._answer(
                self.search.search(vector, filters, page, exclude=frozenset({like}), narrowing=narrowing)
            )
        if text is not None:
            answer = self.fused.search_text(text, filters, page, q=q or None)
            return self._answer(answer, understood, scores=SIMILARITY if q else NONE)
        if q is None:
            named = filters.name_contains or filters.path_contains
            answer = self.search.search_names(filters, page, self._narrowing(ordering, QueryKind.TEXT))
            return self._answer(answer, scores=NAME if named else NONE)
        return self._answer(self.fused.search_fused(q, filters, page, self._narrowing(ordering)), understood)

    def find_like_picture(
        self, picture: bytes, words: str | None, scope: Scope, page: Page, ordering: Ordering, parse: bool = True
    ) -> SearchAnswer:
        """By an example picture (decoded in memory, never stored), refined by ``words`` when given (read as a
        sentence with ``parse``: its filters apply, the words left refine the picture)."""
        vector = self._picture_vector(picture, ApiErrorCode.UNUSABLE_IMAGE)
        understood = None
        if parse and words and words.strip():
            # A picture search has no text-in-photos filter: quoted words stay words that refine the picture.
            understood, scope, ordering, _text, words = self._read(words, scope, ordering, None, quotes_as_words=True)
        text = (words or "").strip()
        kind = QueryKind.IMAGE
        if text:
            vector, kind = self.search.combine(vector, self.search.text_vector(text)), QueryKind.COMBINED
        filters = self.companions.filters(scope)
        narrowing = self._narrowing(ordering, kind)
        return self._answer(self.search.search(vector, filters, page, narrowing=narrowing), understood)

    def _read(self, sentence: str, scope: Scope, ordering: Ordering, text: str | None, quotes_as_words: bool = False):
        """The sentence read, and the scope, ordering, text and words it leaves: what it understood applies
        where the caller gave nothing of its own (the caller's filters win; exclusions add up). With
        ``quotes_as_words`` quoted words are not a filter but stay among the words."""
        read = self.reader.read(sentence, self.companions.store.faces.named())
        if not read.anything:
            return read, scope, ordering, text, sentence
        given = {
            "date": scope.date_from is not None or scope.date_to is not None,
            "place": scope.place is not None,
            "kind": scope.kind != "all",
            "tag": bool(scope.tags),
            "person": bool(scope.people),
            "name": scope.name is not None,
            "text": text is not None or quotes_as_words,
        }
        parts = tuple(part for part in read.parts if not given.get(part.field, False))
        fields = {part.field for part in parts}
        kept = dataclasses.replace(
            read,
            parts=parts,
            date_from=read.date_from if "date" in fields else None,
            date_to=read.date_to if "date" in fields else None,
            place=read.place if "place" in fields else None,
            kind=read.kind if "kind" in fields else None,
            tag=read.tag if "tag" in fields else (),
            name=read.name if "name" in fields else None,
            people=read.people if "person" in fields else (),
            text=read.text if "text" in fields else None,
        )
        scope = dataclasses.replace(
            scope,
            date_from=_start_of(kept.date_from) if "date" in fields else scope.date_from,
            date_to=_end_of(kept.date_to) if "date" in fields else scope.date_to,
            place=kept.place or scope.place,
            kind=kept.kind or scope.kind,
            tags=kept.tag or scope.tags,
            name=kept.name or scope.name,
            people=kept.people or scope.people,
        )
        if kept.exclude:
            ordering = dataclasses.replace(ordering, exclude=tuple(dict.fromkeys((*ordering.exclude, *kept.exclude))))
        words = kept.q
        if quotes_as_words and read.text:
            words = f"{words} {read.text}".strip()
            kept = dataclasses.replace(kept, q=words)
        return kept, scope, ordering, kept.text or text, words or None

    def preview_picture(self, picture: bytes) -> bytes:
        """A thumbnail-sized JPEG of a query picture (for the formats browsers cannot show)."""
        try:
            return self.renditions.thumbnail_of_upload(picture)
        except DecodeError as exc:
            raise BadRequest(f"the uploaded file is not a usable image: {exc}", ApiErrorCode.UNUSABLE_IMAGE) from None

    def classify_picture(self, picture: bytes, labels: Sequence[str], template: str) -> Classification:
        """Zero-shot classification of an uploaded picture."""
        started = time.perf_counter()
        vector = self._picture_vector(picture)
        return self._classified(vector, labels, template, started)

    def classify_item(self, item_id: int, t: int | None, labels: Sequence[str], template: str) -> Classification:
        """Zero-shot classification of an indexed item (a video: its mean frame, or its frame at ``t`` ms)."""
        started = time.perf_counter()
        vector = self.search.item_vector(item_id, t)
        return self._classified(vector, labels, template, started)

    def _classified(self, vector, labels: Sequence[str], template: str, started: float) -> Classification:
        scored = self.classifier.classify(vector, labels, template)
        return Classification(scores=tuple(scored), took_ms=round((time.perf_counter() - started) * 1000, 2))

    def _picture_vector(self, picture: bytes, code: ApiErrorCode = ApiErrorCode.BAD_REQUEST):
        try:
            return self.search.image_vector(picture)
        except DecodeError as exc:
            raise BadRequest(f"the uploaded file is not a usable image: {exc}", code) from None

    def _narrowing(self, ordering: Ordering, kind: QueryKind = QueryKind.TEXT) -> Narrowing:
        return Narrowing(
            sort=ordering.sort,
            match=Match(ordering.match) if ordering.match else None,
            excluded_texts=tuple(self.search.text_vector(text) for text in ordering.exclude),
            stack=ordering.stack,
            kind=kind,
        )

    def _answer(
        self, result: RankedResults, understood: Understood | None = None, scores: str = SIMILARITY
    ) -> SearchAnswer:
        entries = self.companions.entries([hit.item for hit in result.hits])
        found = tuple(
            FoundItem(
                entry=entry,
                score=hit.score,
                stack_size=hit.stack_size,
                moment=hit.moment,
                snippet=getattr(hit, "snippet", None),  # fusion.TextMatchHit
            )
            for hit, entry in zip(result.hits, entries, strict=True)
        )
        return SearchAnswer(
            results=found,
            total=result.total,
            took_ms=result.took_ms,
            more=result.more,
            reindexing=self.reindexing() or None,  # after a model change: results come only from what is re-embedded
            understood=understood,
            scores=scores,
        )


def _newest_first(ordering: Ordering) -> Ordering:
    """A sentence that was all filters is answered by them alone: newest first unless a date order was asked."""
    return ordering if ordering.sort.by_date else dataclasses.replace(ordering, sort=Sort.DATE_DESC)


def _start_of(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time.min) if day else None


def _end_of(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time.max) if day else None

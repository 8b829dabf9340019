"""Searching the text in photos, alone (``text=``) and fused with meaning (a plain ``q=``).

The fusion rule (weighted reciprocal-rank fusion, Cormack et al. 2009): an item's fused score is the sum, over the
rankings it appears in, of ``weight / (RRF_K + rank)`` with ranks counted from 1 — the semantic ranking (CLIP,
weight 1) and the text ranking (lines containing every word of the query, by bm25; weight ``TEXT_WEIGHT`` = 2).
Counting text double puts the text ranking's first hit (2/61) ahead of anything found by meaning alone (at most
1/61), and keeps text hit n ahead of meaning-only hit m while n < 60 + 2m: a photo whose text contains the query
ranks at or near the top even when CLIP does not see it, and photos that only look right follow in their own
order. Equal scores keep the semantic order. Text matches are kept whatever ``min_score`` says (they match by
their words, not by similarity).

``score`` stays what the API documents: the cosine similarity between the query and the item, also for items
found only by their text (computed from the item's stored vector).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from materialsearch.catalog.filters import Filters
from materialsearch.catalog.records import ItemStatus, Kind
from materialsearch.catalog.rows import ItemRow
from materialsearch.catalog.text import OcrStore
from materialsearch.catalog.timeline import Sort
from materialsearch.search.service import Hit, Narrowing, Page, RankedResults, SearchService, newest_first_key

RRF_K = 60  # the usual constant: ranks far down a list still count, but little
TEXT_WEIGHT = 2.0  # a text ranking's rank counts double: matching words is stronger evidence than a similarity rank
SEMANTIC_WEIGHT = 1.0
TEXT_READ_GROWTH = 4  # with filters, text hits are read in growing rounds until a page is full


@dataclasses.dataclass
class TextMatchHit(Hit):
    """A hit whose recognised text contains the words: ``snippet`` is the best-matching line, as read."""

    snippet: str | None = None


def fuse(rankings: list[tuple[float, list]]) -> list:
    """Keys in fused order: ``rankings`` are (weight, keys best first); score = Σ weight / (RRF_K + rank)."""
    scores: dict = {}
    for weight, keys in rankings:
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (RRF_K + rank)
    first_seen = {key: order for order, key in enumerate(scores)}  # ties keep the order of the first ranking
    return sorted(scores, key=lambda key: (-scores[key], first_seen[key]))


def _searchable(item: ItemRow) -> bool:
    """Whether an item found by its text is an indexed photo (its text is read; a video's is not)."""
    return item.status == ItemStatus.OK and item.kind == Kind.IMAGE


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class FusedSearch:
    """``text=`` and the text side of ``q=``, on top of the semantic search."""

    def __init__(self, search: SearchService, ocr: OcrStore):
        self.search = search
        self.ocr = ocr

    def search_text(self, words: str, filters: Filters, page: Page, q: str | None = None) -> RankedResults:
        """Photos whose text contains every word, best text match first (or, with ``q``, most similar first)."""
        started = time.perf_counter()
        vector = self.search.text_vector(q or words)
        hits, complete = self._text_hits(words, filters, page.offset + page.limit)
        for hit in hits:
            hit.score = self._cosine(hit.item.id, vector)
        if q:
            hits.sort(key=lambda hit: -hit.score)
        total = len(hits) if complete else len(hits) + 1  # a lower bound while more may match
        window = hits[page.offset : page.offset + page.limit]
        return RankedResults(window, total, _ms(started))

    def search_fused(self, q: str, filters: Filters, page: Page, narrowing: Narrowing | None = None) -> RankedResults:
        """The semantic ranking of ``q`` (narrowed by ``narrowing``) fused with the photos whose text contains it
        (the rule: module doc); a date order puts the fused results in date order."""
        started = time.perf_counter()
        narrowing = narrowing or Narrowing()
        wanted = page.offset + page.limit
        vector = self.search.text_vector(q)
        semantic_page = Page(limit=wanted, offset=0, min_score=page.min_score)
        semantic = self.search.search(vector, filters, semantic_page, narrowing=narrowing)
        text_hits, _complete = self._text_hits(q, filters, wanted)
        if not text_hits:  # nothing in the text: the semantic page as it is
            window = semantic.hits[page.offset : page.offset + page.limit]
            return RankedResults(window, semantic.total, _ms(started), semantic.more)
        by_key: dict = {}
        for hit in semantic.hits:
            by_key.setdefault(_key(hit), hit)
        snippets = {hit.item.id: hit.snippet for hit in text_hits}
        for hit in text_hits:
            if _key(hit) not in by_key:
                hit.score = self._cosine(hit.item.id, vector)
                by_key[_key(hit)] = hit
        order = fuse(
            [(SEMANTIC_WEIGHT, [_key(hit) for hit in semantic.hits]), (TEXT_WEIGHT, [_key(h) for h in text_hits])]
        )
        fused = []
        for key in order:
            hit = by_key[key]
            if key[1] is None and hit.item.id in snippets and not isinstance(hit, TextMatchHit):
                hit = TextMatchHit(hit.item, hit.score, hit.moment, hit.stack, snippet=snippets[hit.item.id])
            fused.append(hit)
        if narrowing.sort.by_date:
            fused.sort(key=lambda hit: newest_first_key(hit.item.taken_at, hit.item.id))
            if narrowing.sort is not Sort.DATE_DESC:
                fused.reverse()
        total = max(semantic.total, len(fused))
        window = fused[page.offset : page.offset + page.limit]
        return RankedResults(window, total, _ms(started), semantic.more)

    def _text_hits(self, words: str, filters: Filters, wanted: int) -> tuple[list[TextMatchHit], bool]:
        """Up to ``wanted`` searchable photos matching ``words`` that pass ``filters``, and whether that is all."""
        limit = wanted + 1
        while True:
            found = self.ocr.search(words, limit)
            items = self.search.store.get_items([hit.item_id for hit in found])
            passing = self.search.store.passing_filters([i for i, item in items.items() if _searchable(item)], filters)
            hits = [
                TextMatchHit(items[hit.item_id], 0.0, snippet=hit.snippet) for hit in found if hit.item_id in passing
            ]
            exhausted = len(found) < limit
            if len(hits) > wanted or exhausted:
                return hits[:wanted], exhausted and len(hits) <= wanted
            limit *= TEXT_READ_GROWTH

    def _cosine(self, item_id: int, vector: np.ndarray) -> float:
        vectors = self.search.store.item_vectors(item_id)
        if vectors.size == 0:
            return 0.0
        mean = vectors.mean(axis=0)
        norm = float(np.linalg.norm(mean)) or 1.0
        return float(min(max(float(mean @ vector) / norm, -1.0), 1.0))


def _key(hit: Hit) -> tuple[int, int | None]:
    return hit.item.id, hit.moment.time_ms if hit.moment is not None else None

"""The timeline: every indexed photo and video in capture-time order, a page at a time by an opaque keyset cursor.

A cursor is the position of the last item of a page (its capture time and id) and the order it was read in,
base64url-encoded JSON. The next page is the items after that position (``Store.timeline``), never an OFFSET: as
fast at item 900 000 as at item 0, and stable while a scan adds items (a new item lands before or after the
position; nothing already shown repeats and nothing after it is skipped).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import json

from sqlalchemy import and_, select, tuple_

from materialsearch.catalog.filters import apply_filters
from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.rows import ItemRow, item_rows, select_item_rows
from materialsearch.catalog.store import Filters, Item, Store

CURSOR_VERSION = 1  # bumped if the cursor's content changes: an old cursor is then refused, not misread
# A keyset position in the timeline: (capture time or None for an undated item, item id) of the last row shown.
TimelinePosition = tuple[dt.datetime | None, int]


class Sort(enum.StrEnum):
    """Orders of results: by similarity (searches only) or by capture time."""

    SCORE = "score"
    DATE_DESC = "date_desc"
    DATE_ASC = "date_asc"

    @property
    def by_date(self) -> bool:
        """Whether this is a capture-time order."""
        return self is not Sort.SCORE


class CursorError(ValueError):
    """A cursor this API did not give (or gave for another order)."""


@dataclasses.dataclass
class TimelinePage:
    """A page of the timeline and the cursor of the next one (None at the end)."""

    items: list[ItemRow]
    next_cursor: str | None


def encode_cursor(sort: Sort, position: TimelinePosition) -> str:
    """The opaque cursor after ``position`` in ``sort`` order."""
    taken_at, item_id = position
    payload = [CURSOR_VERSION, str(sort), taken_at.isoformat() if taken_at else None, item_id]
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(sort: Sort, cursor: str) -> TimelinePosition:
    """The position a cursor stands for; CursorError when it is not one of ours or belongs to another order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, order, taken_at, item_id = json.loads(raw)
        position = (dt.datetime.fromisoformat(taken_at) if taken_at is not None else None, int(item_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise CursorError("cursor: not a cursor this API gave (pass next_cursor back unchanged)") from None
    if version != CURSOR_VERSION or order != sort:
        raise CursorError(f"cursor: it was given for sort={order}, not sort={sort}")
    return position


def timeline_page(store: Store, filters: Filters, sort: Sort, limit: int, cursor: str | None) -> TimelinePage:
    """One page of indexed items in ``sort`` (a date order) passing ``filters``, after ``cursor``."""
    if not sort.by_date:
        raise CursorError(f"sort: the timeline is in date order (date_desc or date_asc), not {sort}")
    after = decode_cursor(sort, cursor) if cursor else None
    # One more than asked tells whether another page follows without a count.
    items = timeline(store, filters, sort is Sort.DATE_DESC, after, limit + 1)
    if len(items) <= limit:
        return TimelinePage(items, None)
    last = items[limit - 1]
    return TimelinePage(items[:limit], encode_cursor(sort, (last.taken_at, last.id)))


def timeline(
    store: Store, filters: Filters, newest_first: bool, after: TimelinePosition | None, limit: int
) -> list[ItemRow]:
    """Indexed items passing ``filters`` in capture-time order (ties by id), the ``limit`` after ``after``.

    A keyset page over ``ix_items_status_taken_at``: as cheap at any depth, and stable while a scan adds items.
    Undated items (the scan dates a file without a capture time by its mtime, so only rows of old releases) count
    as older than every dated one: last when newest first, first when oldest first."""
    dated, undated = Item.taken_at.is_not(None), Item.taken_at.is_(None)
    key = tuple_(Item.taken_at, Item.id)
    if newest_first:
        phases = [(dated, (Item.taken_at.desc(), Item.id.desc())), (undated, (Item.id.desc(),))]
        if after is not None and after[0] is not None:
            phases[0] = (and_(dated, key < tuple_(*after)), phases[0][1])
        elif after is not None:
            phases = [(and_(undated, Item.id < after[1]), phases[1][1])]
    else:
        phases = [(undated, (Item.id.asc(),)), (dated, (Item.taken_at.asc(), Item.id.asc()))]
        if after is not None and after[0] is not None:
            phases = [(and_(dated, key > tuple_(*after)), phases[1][1])]
        elif after is not None:
            phases[0] = (and_(undated, Item.id > after[1]), phases[0][1])
    found: list[ItemRow] = []
    with store.engine.connect() as conn:
        for where, order in phases:
            if len(found) >= limit:
                break
            query = apply_filters(select_item_rows().where(Item.status == ItemStatus.OK, where), filters)
            found += item_rows(conn.execute(query.order_by(*order).limit(limit - len(found))))
    return found


def listed(store: Store, filters: Filters) -> list[tuple[int, str, dt.datetime | None]]:
    """(id, path, capture time) of every indexed item passing ``filters`` (a name or path search's matches)."""
    query = apply_filters(select(Item.id, Item.path, Item.taken_at).where(Item.status == ItemStatus.OK), filters)
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]

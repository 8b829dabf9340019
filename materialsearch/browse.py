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

from .store import Filters, Item, Store, TimelinePosition

CURSOR_VERSION = 1  # bumped if the cursor's content changes: an old cursor is then refused, not misread


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

    items: list[Item]
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
    items = store.timeline(filters, sort is Sort.DATE_DESC, after, limit + 1)
    if len(items) <= limit:
        return TimelinePage(items, None)
    last = items[limit - 1]
    return TimelinePage(items[:limit], encode_cursor(sort, (last.taken_at, last.id)))

"""What the catalog hands out about items: plain frozen rows, never ORM objects (which would carry a session,
lazy loading and SQLAlchemy into every module that reads an item).

``ItemRow`` has one field per column of the ``items`` table, in the table's order: the table is declared once (in
``schema``) and the row follows it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select

from materialsearch.catalog.schema import Item

ITEM_COLUMNS = tuple(Item.__table__.columns)


def _item_row_class() -> type:
    row = dataclasses.make_dataclass("ItemRow", [(column.key, Any) for column in ITEM_COLUMNS], frozen=True, slots=True)
    row.__module__ = __name__
    row.__doc__ = "One file of the library as the catalog stores it (the ``items`` columns, read-only)."
    return row


ItemRow = _item_row_class()


def select_item_rows():
    """``SELECT`` of every item column, to which callers add ``where``/``order_by``; read with ``item_rows``."""
    return select(*ITEM_COLUMNS)


def item_rows(result) -> list:
    """The ``ItemRow`` of each row of an executed ``select_item_rows`` query."""
    return [ItemRow(*row) for row in result]

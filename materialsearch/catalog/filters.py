"""The search filters (``Filters``) and the SQL that applies them to a query over the items."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import exists, func, or_, select

from materialsearch.catalog.schema import Face, HiddenItem, Item, ItemTag
from materialsearch.organise.places import country_names


@dataclasses.dataclass(frozen=True)
class Filters:
    """Restrictions on search results; all optional."""

    path_contains: str | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    kind: str | None = None
    tags: tuple[str, ...] | None = None  # tag keys the item must all have (``tags``)
    exclude_hidden: bool | None = None  # leave out the items hidden from results (None: nothing to leave out)
    name_contains: str | None = None  # each of its words in the file name (not its folders)
    place: str | None = None  # a city, region or country (English or Chinese name, or ISO code)
    people: tuple[int, ...] | None = None  # person ids who must all be in the photo (``person``)

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in dataclasses.astuple(self))


# SQLite has no dirname() or basename(): rtrim drops the file name's characters from the right of the path, which
# leaves its folder with the trailing slash; the name is what follows.
FOLDER_OF_PATH = func.rtrim(Item.path, func.replace(Item.path, "/", ""))
_FILE_NAME = func.substr(Item.path, func.length(FOLDER_OF_PATH) + 1)


def _place_condition(text: str):
    """The SQL condition of ``place=``: a city, region or country named so, in English (ASCII letters in any case)
    or Chinese, or a country's ISO code; each term is answered by an index."""
    name = text.strip()
    # As SQLite's lower() folds (ASCII letters only), so that the expression indexes on lower(…) answer.
    folded = "".join(char.lower() if char.isascii() else char for char in name)
    conditions = [
        func.lower(Item.place_city) == folded,
        Item.place_city_zh == name,
        func.lower(Item.place_region) == folded,
    ]
    codes = country_names().codes(name)
    if codes:
        conditions.append(Item.place_country.in_(sorted(codes)))
    return or_(*conditions)


def _like_escaped(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def apply_filters(query, filters: Filters):
    """``query`` (over items) restricted to the items passing ``filters``."""
    if filters.path_contains:
        query = query.where(Item.path.like(_like_escaped(filters.path_contains), escape="\\"))
    for word in (filters.name_contains or "").split():  # every word, anywhere in the file name
        query = query.where(_FILE_NAME.like(_like_escaped(word), escape="\\"))
    if filters.date_from is not None:
        query = query.where(Item.taken_at >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(Item.taken_at <= filters.date_to)
    if filters.kind is not None:
        query = query.where(Item.kind == filters.kind)
    for person in filters.people or ():
        query = query.where(Item.id.in_(select(Face.item_id).where(Face.person_id == person)))
    for tag in filters.tags or ():
        query = query.where(Item.id.in_(select(ItemTag.item_id).where(ItemTag.tag == tag)))
    if filters.exclude_hidden:
        query = query.where(~exists().where(HiddenItem.item_id == Item.id))
    if filters.place:
        query = query.where(_place_condition(filters.place))
    return query

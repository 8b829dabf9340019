"""Reviewing duplicates: groups of near-identical items with their keeper, the non-keepers for the user's own
tools, and hiding items from results (reversible; files are never touched)."""

from __future__ import annotations

import dataclasses

from materialsearch.application.entries import ItemCompanions, ItemEntry
from materialsearch.catalog.store import Store
from materialsearch.organise.duplicates import REASON_TEXT, DuplicateFinder, Group, Grouping, KeeperReason
from materialsearch.search.service import NotFound


@dataclasses.dataclass(frozen=True)
class GroupMember:
    """A member of a duplicate group, and whether it is hidden from results."""

    entry: ItemEntry
    hidden: bool


@dataclasses.dataclass(frozen=True)
class DuplicateSet:
    """A group: its ids (the keeper first, then best to worst), why the keeper is kept (code and English), its
    kind, and its members still in the catalog."""

    ids: tuple[int, ...]
    keeper: int
    why: KeeperReason
    why_text: str
    kind: str
    members: tuple[GroupMember, ...]


@dataclasses.dataclass(frozen=True)
class DuplicatePage:
    """A page of groups; how many groups and non-keepers there are in all, how many items were compared, and how
    long the grouping took when it was computed."""

    groups: tuple[DuplicateSet, ...]
    total: int
    others: int
    compared: int
    took_ms: float


@dataclasses.dataclass(frozen=True)
class DuplicateCopy:
    """One non-keeper and its keeper (``group``: its group's 1-based number)."""

    group: int
    id: int
    path: str
    size: int
    keeper_id: int
    keeper_path: str
    why: KeeperReason


class DuplicateReview:
    """The duplicates and hidden-items use cases."""

    def __init__(self, finder: DuplicateFinder, store: Store, companions: ItemCompanions):
        self.finder, self.store, self.companions = finder, store, companions

    def _groups(self, kind: str = "all") -> tuple[Grouping, list[Group]]:
        grouping = self.finder.grouping()
        return grouping, [g for g in grouping.groups if kind in ("all", g.kind)]

    def groups(self, kind: str, limit: int, offset: int) -> DuplicatePage:
        """A page of the groups of ``kind`` (all, image or video), each with its members."""
        grouping, groups = self._groups(kind)
        page = groups[offset : offset + limit]
        rows = self.store.get_items(i for g in page for i in g.ids)
        hidden = self.store.duplicates.hidden_ids()
        present = [rows[i] for g in page for i in g.ids if i in rows]
        entries = {e.item.id: e for e in self.companions.entries(present, raws=False, tags=False)}
        sets = tuple(
            DuplicateSet(
                ids=tuple(group.ids),
                keeper=group.keeper,
                why=group.why,
                why_text=REASON_TEXT[group.why],
                kind=group.kind,
                members=tuple(GroupMember(entries[i], i in hidden) for i in group.ids if i in rows),
            )
            for group in page
        )
        return DuplicatePage(
            groups=sets,
            total=len(groups),
            others=sum(len(g.others) for g in groups),
            compared=grouping.compared,
            took_ms=grouping.took_ms,
        )

    def copies(self) -> list[DuplicateCopy]:
        """Every non-keeper with its keeper, in group order."""
        _grouping, groups = self._groups()
        rows = self.store.get_items(i for g in groups for i in g.ids)
        return [
            DuplicateCopy(
                group=number,
                id=other,
                path=rows[other].path,
                size=rows[other].size,
                keeper_id=group.keeper,
                keeper_path=rows[group.keeper].path,
                why=group.why,
            )
            for number, group in enumerate(groups, start=1)
            for other in group.others
            if other in rows and group.keeper in rows
        ]

    def hidden(self) -> list[int]:
        """Every hidden item's id, ascending."""
        return sorted(self.store.duplicates.hidden_ids())

    def hide(self, ids: list[int]) -> list[int]:
        """Hide items from search results and the timeline; every hidden id after the change."""
        self.store.duplicates.hide(self._known(ids))
        return self.hidden()

    def restore(self, ids: list[int]) -> list[int]:
        """Show hidden items in results again; every hidden id after the change."""
        self.store.duplicates.unhide(self._known(ids))
        return self.hidden()

    def _known(self, ids: list[int]) -> list[int]:
        found = self.store.get_items(ids)
        missing = sorted(set(ids) - set(found))
        if missing:
            raise NotFound(f"no such items: {', '.join(map(str, missing[:20]))}")
        return ids

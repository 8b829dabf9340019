"""The library's folder tree with counts: each folder's indexed items, cumulative (its own and all below it),
relative to the library root it lies under."""

from __future__ import annotations

import dataclasses
import os

from sqlalchemy import func, select

from materialsearch.catalog.filters import FOLDER_OF_PATH
from materialsearch.catalog.records import ItemStatus
from materialsearch.catalog.schema import Item
from materialsearch.catalog.store import Store


@dataclasses.dataclass
class FolderNode:
    """A folder of a library root: its name, its path relative to the root ("" for the root itself), the
    absolute path with a trailing slash (what the ``path`` filter takes), and the items in and below it."""

    name: str
    path: str
    prefix: str
    count: int = 0
    children: dict[str, FolderNode] = dataclasses.field(default_factory=dict)

    def child(self, name: str) -> FolderNode:
        """The sub-folder ``name`` (made when first seen)."""
        if name not in self.children:
            path = f"{self.path}/{name}" if self.path else name
            self.children[name] = FolderNode(name, path, f"{self.prefix}{name}/")
        return self.children[name]


def folder_counts(store: Store) -> dict[str, int]:
    """Indexed items per folder (the path up to its last "/", without it), one grouped query."""
    folder = func.rtrim(FOLDER_OF_PATH, "/")
    with store.engine.connect() as conn:
        rows = conn.execute(select(folder, func.count(Item.id)).where(Item.status == ItemStatus.OK).group_by(folder))
        return {path: int(count) for path, count in rows}


def folder_tree(counts: dict[str, int], roots: list[str]) -> list[FolderNode]:
    """One tree per library root from ``counts`` (indexed items per absolute folder, ``folder_counts``).

    Folders outside every root (a root removed from MS_LIBRARY since the scan) are left out; a folder under two
    nested roots counts under the innermost."""
    trees = [FolderNode(root, "", root.rstrip("/") + "/") for root in roots]
    by_depth = sorted(range(len(trees)), key=lambda i: -len(trees[i].prefix))
    for folder, count in counts.items():
        for index in by_depth:
            tree = trees[index]
            if folder != tree.prefix.rstrip("/") and not (folder + "/").startswith(tree.prefix):
                continue
            node = tree
            node.count += count
            relative = (folder + "/")[len(tree.prefix) :].strip("/")
            for part in [p for p in relative.split("/") if p]:
                node = node.child(part)
                node.count += count
            break
    return trees


def real_roots(library: tuple[str, ...] | list[str]) -> list[str]:
    """The library roots as the scanner records paths (resolved)."""
    return [os.path.realpath(root) for root in library]

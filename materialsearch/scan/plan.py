"""Plan a scan: the walk's files diffed against what the database knows (mark-and-sweep on size and mtime).

Pure: it looks only at what it is given — the walked files, the database's file states, the library folders, and
two functions for the little it must ask the disk (does a folder exist, a file's content hash) — and writes
nothing, starts no thread. The scanner carries the plan out.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from materialsearch.catalog.records import FileState, ItemStatus, Kind
from materialsearch.errors import Problem, ProblemCode
from materialsearch.scan.reports import ScanWarning
from materialsearch.scan.walk import FileEntry

log = logging.getLogger(__name__)

# A RAW's same-name photo in one of these states shows nothing: the RAW is indexed on its own.
FAILED_STILL = frozenset({ItemStatus.ERROR, ItemStatus.SKIPPED})


@dataclasses.dataclass(frozen=True)
class Move:
    """A vanished item whose content turned up under a new path: it keeps its row and vectors."""

    item_id: int
    old_path: str
    entry: FileEntry


@dataclasses.dataclass
class Plan:
    """What a scan has to do. ``changed`` and ``new`` are prepared (in that order), ``moved`` re-pointed,
    ``vanished`` removed."""

    found: int = 0
    unchanged: int = 0
    changed: list[FileEntry] = dataclasses.field(default_factory=list)
    new: list[FileEntry] = dataclasses.field(default_factory=list)
    moved: list[Move] = dataclasses.field(default_factory=list)
    vanished: dict[str, FileState] = dataclasses.field(default_factory=dict)
    unreachable: int = 0  # indexed items kept because their folder or file could not be read this time
    warnings: list[ScanWarning] = dataclasses.field(default_factory=list)

    @property
    def to_prepare(self) -> list[FileEntry]:
        """The files to decode and embed: changed ones first, then new ones."""
        return self.changed + self.new


def is_unchanged(entry: FileEntry, state: FileState) -> bool:
    """The database's item is still this file: same size and mtime, vectors not pending, paired with the same
    photo (a Live Photo movie's or a RAW's same-name still)."""
    return (
        state.size == entry.size
        and state.mtime_ns == entry.mtime_ns
        and state.status != ItemStatus.PENDING
        and state.pair_path == entry.still
    )


def diff(
    entries: Iterable[FileEntry],
    known: Mapping[str, FileState],
    roots: Sequence[str],
    root_exists: Callable[[str], bool],
    unreachable: Mapping[str, Problem] | None = None,
) -> Plan:
    """Sort a complete walk into new, changed, unchanged and vanished (moves are matched by ``match_moves``).

    ``roots`` are the library folders as real paths. A missing library folder, or one that yields no file at all
    while the database holds files from it, is what an unmounted NAS share looks like: sweeping it would throw
    away the whole index, so its items are kept (with a warning) until the folder is back. The same holds for
    ``unreachable`` paths (path → problem): a subfolder that could not be listed or a file that could not be
    examined this time keeps every indexed item at or under it, until a walk sees the folder again without them.
    Known paths outside every library folder are swept.
    """
    plan = Plan()
    seen: set[str] = set()
    for entry in unpair_from_failed_stills(list(entries), known):
        plan.found += 1
        seen.add(entry.path)
        state = known.get(entry.path)
        if state is None:
            plan.new.append(entry)
        elif is_unchanged(entry, state):
            plan.unchanged += 1
        else:
            plan.changed.append(entry)
    found_under = {root for root in (_root_of(path, roots) for path in seen) if root is not None}
    held = [
        root
        for root in roots
        if not root_exists(root) or (root not in found_under and any(_root_of(p, [root]) for p in known))
    ]
    for root in held:
        message = f"library folder {root} is missing or empty; keeping its indexed items until it is back"
        log.warning(message)
        kept = sum(1 for path in known if _root_of(path, [root]))
        plan.warnings.append(ScanWarning(ProblemCode.LIBRARY_FOLDER_MISSING, message, root, kept))
    plan.vanished = {
        path: state for path, state in known.items() if path not in seen and _root_of(path, roots) not in held
    }
    for place, reason in sorted((unreachable or {}).items()):
        kept = [path for path in plan.vanished if path == place or path.startswith(place.rstrip(os.sep) + os.sep)]
        for path in kept:
            del plan.vanished[path]
        plan.unreachable += len(kept)
        if kept:
            message = f"{place}: {reason}; keeping its {len(kept)} indexed item(s) until it can be read again"
            log.warning(message)
            plan.warnings.append(ScanWarning(reason.code, message, place, len(kept)))
    return plan


def unpair_from_failed_stills(entries: list[FileEntry], known: Mapping[str, FileState]) -> list[FileEntry]:
    """A camera RAW whose same-name JPEG/HEIC is known to be unreadable (and is unchanged since) stands on its own:
    it is the only picture of that shot, so it is indexed from its preview rather than hidden behind a photo that
    cannot be shown. When the still changes, the pair is tried again."""
    by_path = {entry.path: entry for entry in entries}

    def failed(still: str) -> bool:
        state, entry = known.get(still), by_path.get(still)
        return (
            state is not None
            and state.status in FAILED_STILL
            and entry is not None
            and (state.size, state.mtime_ns) == (entry.size, entry.mtime_ns)
        )

    return [
        dataclasses.replace(entry, still=None)
        if entry.kind == Kind.IMAGE and entry.still is not None and failed(entry.still)
        else entry
        for entry in entries
    ]


def match_moves(plan: Plan, content_hash: Callable[[FileEntry], str]) -> Plan:
    """Re-attach vanished items to new files with identical content; hashes only new files whose size matches a
    vanished item's. A file that cannot be hashed is simply new (preparing it records why it is unreadable)."""
    by_size: dict[int, list[tuple[str, FileState]]] = collections.defaultdict(list)
    for path, state in plan.vanished.items():
        if state.content_hash:
            by_size[state.size].append((path, state))
    if not by_size:
        return plan
    vanished = dict(plan.vanished)
    new: list[FileEntry] = []
    moved: list[Move] = []
    for entry in plan.new:
        candidates = by_size.get(entry.size)
        digest = _hash_or_none(content_hash, entry) if candidates else None
        match = next((c for c in candidates if c[1].content_hash == digest), None) if digest else None
        if match is None:
            new.append(entry)
            continue
        old_path, state = match
        candidates.remove(match)
        if entry.kind == Kind.VIDEO and state.pair_path is not None and entry.still is None:
            new.append(entry)  # a Live Photo movie moved away from its still: indexed as a video of its own
            continue
        del vanished[old_path]
        moved.append(Move(state.id, old_path, entry))
    return dataclasses.replace(plan, new=new, moved=plan.moved + moved, vanished=vanished)


def plan_scan(
    entries: Iterable[FileEntry],
    known: Mapping[str, FileState],
    roots: Sequence[str],
    root_exists: Callable[[str], bool],
    content_hash: Callable[[FileEntry], str],
    unreachable: Mapping[str, Problem] | None = None,
) -> Plan:
    """``diff`` then ``match_moves``: the whole plan of a scan from a complete walk."""
    return match_moves(diff(entries, known, roots, root_exists, unreachable), content_hash)


def _hash_or_none(content_hash: Callable[[FileEntry], str], entry: FileEntry) -> str | None:
    try:
        return content_hash(entry)
    except OSError:
        return None
    except Exception:
        # Not about the move: the file is prepared as new, and preparing it records what is wrong with it.
        log.exception("cannot hash %s to match it with a vanished file", entry.path)
        return None


def _root_of(path: str, roots: Iterable[str]) -> str | None:
    """The library folder ``path`` lies in, or None."""
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None

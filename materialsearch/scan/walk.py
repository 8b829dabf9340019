"""Walk the library folders and list the media files in them, with (size, mtime) from one stat each.

Never opens a file. Skips names matching the skip patterns, the data dir (if it sits inside the library), and
symlinks (to files or folders) that lead outside the library, unless ``follow_symlinks`` (MS_FOLLOW_SYMLINKS)
says to follow them. ``servable_path`` applies the same rule again when a file is served, because a link can be
re-pointed after it was indexed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
from collections.abc import Callable, Iterable, Iterator

from config import RAW_EXTENSIONS
from materialsearch.catalog.records import Kind
from materialsearch.errors import Problem, ProblemCode

log = logging.getLogger(__name__)

# The containers of Apple Live Photos (and their same-name stills); other same-name pairs are separate items.
LIVE_MOVIE_EXTENSIONS = frozenset({"mov", "mp4"})
LIVE_STILL_EXTENSIONS = frozenset({"heic", "heif", "hif", "jpg", "jpeg"})


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """A media file found in the library."""

    path: str
    size: int
    mtime_ns: int
    kind: Kind
    # For a video: the photo with the same name in the same folder (a Live Photo's still), if there is one; for a
    # camera RAW: the same-name JPEG/HEIC the camera wrote beside it (the picture shown for both).
    still: str | None = None


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def servable_path(path: str, roots: Iterable[str], follow_symlinks: bool, exclude: Iterable[str] = ()) -> str | None:
    """The real path to open for an indexed ``path``, or None when it must not be served.

    It must resolve inside a library root (unless ``follow_symlinks``) and never inside ``exclude`` (the data
    dir, which holds the database and the session secret).
    """
    real = os.path.realpath(path)
    if _inside(real, [os.path.realpath(e) for e in exclude]):
        return None
    if not follow_symlinks and not _inside(real, [os.path.realpath(r) for r in roots]):
        return None
    return real


def walk_library(
    roots: Iterable[str],
    image_extensions: Iterable[str],
    skip_patterns: Iterable[str] = (),
    exclude: Iterable[str] = (),
    on_error: Callable[[str, str], None] | None = None,
    video_extensions: Iterable[str] = (),
    follow_symlinks: bool = False,
    on_unreachable: Callable[[str, Problem], None] | None = None,
) -> Iterator[FileEntry]:
    """Yield every image and video file under ``roots`` (depth-first, sorted by name for stable order).

    ``on_unreachable(path, problem)`` hears of every folder that could not be listed and every file or folder
    entry that could not be examined this time (permission denied, an I/O error on a network share): what the
    library holds under such a path is unknown, not gone.
    """
    roots = [os.path.realpath(r) for r in roots]
    image_exts = {e.lower().lstrip(".") for e in image_extensions}
    video_exts = {e.lower().lstrip(".") for e in video_extensions} - image_exts
    extensions = image_exts | video_exts
    patterns = tuple(skip_patterns)
    excluded = {os.path.realpath(e) for e in exclude}

    def skipped(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    def report(path: str, reason: str) -> None:
        log.warning("skipping %s: %s", path, reason)
        if on_error is not None:
            on_error(path, reason)

    seen_roots: set[str] = set()
    for root in roots:
        if root in seen_roots:
            continue
        seen_roots.add(root)
        if not os.path.isdir(root):
            report(root, "library folder does not exist or is not a folder")
            continue
        stack = [root]
        visited: set[str] = set()  # real paths of folders listed, so followed folder links cannot loop
        while stack:
            folder = stack.pop()
            real_folder = os.path.realpath(folder)
            if folder in excluded or real_folder in excluded or real_folder in visited:
                continue
            visited.add(real_folder)
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name, reverse=True)
            except OSError as exc:
                reason = Problem(ProblemCode.FOLDER_UNLISTABLE, f"cannot list folder ({exc.strerror or exc})")
                report(folder, str(reason))
                if on_unreachable is not None:
                    on_unreachable(folder, reason)
                continue
            files: list[FileEntry] = []
            for entry in entries:
                name = entry.name
                if skipped(name):
                    continue
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    report(entry.path, "file name is not valid UTF-8; rename it to index it")
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    if entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                        # A folder link: followed only when allowed; one inside the library would list its
                        # files twice, so those are left to their real place.
                        if follow_symlinks and not _inside(os.path.realpath(entry.path), roots):
                            stack.append(entry.path)
                        elif not follow_symlinks and not _inside(os.path.realpath(entry.path), roots):
                            report(entry.path, "symlink points outside the library; not followed")
                        continue
                    ext = os.path.splitext(name)[1].lower().lstrip(".")
                    if ext not in extensions:
                        continue
                    if entry.is_symlink():
                        target = os.path.realpath(entry.path)
                        if not os.path.isfile(target) or _inside(target, excluded):
                            continue
                        if not follow_symlinks and not _inside(target, roots):
                            report(entry.path, "symlink points outside the library; not followed")
                            continue
                    elif not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=True)
                except OSError as exc:
                    reason = Problem(ProblemCode.FILE_UNSTATTABLE, f"cannot stat ({exc.strerror or exc})")
                    report(entry.path, str(reason))
                    if on_unreachable is not None:
                        on_unreachable(entry.path, reason)
                    continue
                kind = Kind.VIDEO if ext in video_exts else Kind.IMAGE
                files.append(FileEntry(entry.path, stat.st_size, stat.st_mtime_ns, kind))
            yield from reversed(_pair_same_names(files))


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower().lstrip(".")


def _pair_same_names(files: list[FileEntry]) -> list[FileEntry]:
    """Give each MOV/MP4 and each camera RAW of a folder the HEIC/JPEG photo that shares its name
    (IMG_0001.HEIC + IMG_0001.MOV, DSC_0001.JPG + DSC_0001.NEF).

    Only the formats Live Photos come in are paired with movies: a camera's ``Pentax.jpg`` and an unrelated
    ``Pentax.avi`` are two items. Whether a candidate movie really is a Live Photo is decided when it is prepared;
    a RAW beside a same-name JPEG/HEIC is always that photo's original (cameras write the pair in one shot).
    """
    stills = {}
    for entry in files:
        if entry.kind == Kind.IMAGE and _extension(entry.path) in LIVE_STILL_EXTENSIONS:
            stills.setdefault(os.path.splitext(entry.path)[0].lower(), entry.path)
    if not stills:
        return files
    return [
        dataclasses.replace(entry, still=stills.get(os.path.splitext(entry.path)[0].lower()))
        if (entry.kind == Kind.VIDEO and _extension(entry.path) in LIVE_MOVIE_EXTENSIONS)
        or (entry.kind == Kind.IMAGE and _extension(entry.path) in RAW_EXTENSIONS)
        else entry
        for entry in files
    ]

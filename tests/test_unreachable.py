"""A folder or file that cannot be read this time costs nothing: its items and vectors stay until it reads again.

The scans run as root here, so permissions cannot make a folder unlistable: the walk's own ``os.scandir`` is made to
fail for one folder (as a dropped SMB/NFS share or a permission change does), and one entry's ``stat`` to fail.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from materialsearch.catalog.records import FileState, ItemStatus, Kind
from materialsearch.errors import Problem, ProblemCode
from materialsearch.scan import walk as walk_module
from materialsearch.scan.plan import diff
from materialsearch.scan.walk import FileEntry

FOLDER_DENIED = Problem(ProblemCode.FOLDER_UNLISTABLE, "cannot list folder (Permission denied)")


def _snapshot(services):
    """Every item with its state and vectors, and the index size: what must come out identical."""
    states = services.store.file_states()
    vectors = {path: services.store.item_vectors(state.id).tobytes() for path, state in states.items()}
    return states, vectors, services.index.ntotal


class _Entry:
    """A DirEntry whose ``stat`` fails (an I/O error on one file of a network share)."""

    def __init__(self, entry):
        self._entry = entry
        self.name, self.path = entry.name, entry.path

    def __getattr__(self, name):
        return getattr(self._entry, name)

    def stat(self, follow_symlinks=True):
        raise OSError(errno.EIO, "Input/output error", self.path)


class _Listing:
    def __init__(self, entries):
        self._entries = entries

    def __enter__(self):
        return iter(self._entries)

    def __exit__(self, *exc):
        return False


@pytest.fixture
def failing_walk(monkeypatch):
    """Make the walk unable to list some folders and to stat some files."""
    real_scandir = os.scandir
    broken_folders: set[str] = set()
    broken_files: set[str] = set()

    def scandir(path):
        # os is shared by everything in the process: only the walk's listings of our broken places are touched.
        folder = os.fspath(path) if isinstance(path, str | os.PathLike) else None
        if folder in broken_folders:
            raise PermissionError(errno.EACCES, "Permission denied", folder)
        if folder is None or not any(os.path.dirname(f) == folder for f in broken_files):
            return real_scandir(path)
        with real_scandir(path) as it:
            entries = [(_Entry(e) if e.path in broken_files else e) for e in it]
        return _Listing(entries)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    return broken_folders, broken_files


def test_an_unlistable_subfolder_keeps_every_item_and_vector(open_services, library, failing_walk):
    broken_folders, _ = failing_walk
    services = open_services(library=str(library))
    services.scans.run()
    before = _snapshot(services)
    trip = str(library / "trip")
    assert any(path.startswith(trip) for path in before[0])

    broken_folders.add(trip)
    stats = services.scans.run()

    assert _snapshot(services) == before
    assert stats.removed == 0 and stats.decoded == 0
    assert stats.unreachable == 3  # the three files of trip/, the broken one included
    assert any(trip in str(w) and "cannot list folder (Permission denied)" in str(w) for w in stats.warnings)
    assert [(w.code, w.path, w.kept) for w in stats.warnings] == [(ProblemCode.FOLDER_UNLISTABLE, trip, 3)]
    summary = services.scans.status().last.summary
    assert "3 kept while unreadable" in summary and "Permission denied" in summary

    # Readable again: nothing to redo, nothing lost.
    broken_folders.clear()
    again = services.scans.run()
    assert _snapshot(services) == before
    assert (again.removed, again.decoded, again.unreachable) == (0, 0, 0)


def test_items_are_swept_once_their_folder_lists_again_without_them(open_services, library, failing_walk):
    broken_folders, _ = failing_walk
    services = open_services(library=str(library))
    services.scans.run()
    trip = library / "trip"
    broken_folders.add(str(trip))
    (trip / "jpeg_nikon_d5000_gps.jpeg").unlink()  # gone while the folder cannot be listed: not yet known
    assert services.scans.run().removed == 0
    assert str(trip / "jpeg_nikon_d5000_gps.jpeg") in services.store.file_states()
    broken_folders.clear()
    assert services.scans.run().removed == 1
    assert str(trip / "jpeg_nikon_d5000_gps.jpeg") not in services.store.file_states()


def test_a_file_whose_stat_fails_keeps_its_item(open_services, library, failing_walk):
    _, broken_files = failing_walk
    services = open_services(library=str(library))
    services.scans.run()
    before = _snapshot(services)
    target = str(library / "jpg_orient1.jpg")
    broken_files.add(target)
    stats = services.scans.run()
    assert _snapshot(services) == before
    assert stats.removed == 0 and stats.unreachable == 1
    assert any(target in str(w) and "cannot stat (Input/output error)" in str(w) for w in stats.warnings)
    assert [(w.code, w.path, w.kept) for w in stats.warnings] == [(ProblemCode.FILE_UNSTATTABLE, target, 1)]


def test_the_plan_keeps_items_under_unreachable_paths_only():
    def state(i):
        return FileState(i, 1, 1, ItemStatus.OK, None)

    known = {"/lib/a/1.jpg": state(1), "/lib/a/b/2.jpg": state(2), "/lib/ab/3.jpg": state(3), "/lib/4.jpg": state(4)}
    seen = [FileEntry("/lib/4.jpg", 1, 1, Kind.IMAGE)]
    plan = diff(seen, known, ["/lib"], lambda root: True, {"/lib/a": FOLDER_DENIED})
    # /lib/ab is a sibling that merely shares the prefix: it is swept; /lib/a and below are kept.
    assert set(plan.vanished) == {"/lib/ab/3.jpg"} and plan.unreachable == 2
    assert [str(w) for w in plan.warnings] == [
        "/lib/a: cannot list folder (Permission denied); keeping its 2 indexed item(s) until it can be read again"
    ]
    assert [(w.code, w.path, w.kept) for w in plan.warnings] == [(ProblemCode.FOLDER_UNLISTABLE, "/lib/a", 2)]
    assert np.array_equal(sorted(plan.vanished), ["/lib/ab/3.jpg"])


def test_api_errors_lists_the_unreadable_folder_with_its_code(open_services, library, failing_walk):
    from materialsearch.web import create_app

    broken_folders, _ = failing_walk
    services = open_services(library=str(library))
    services.scans.run()
    broken_folders.add(str(library / "trip"))
    services.scans.run()
    body = create_app(services.settings, services).test_client().get("/api/errors").get_json()
    assert [(w["code"], w["path"], w["kept"]) for w in body["unreachable"]] == [
        ("folder_unlistable", str(library / "trip"), 3)
    ]
    assert "Permission denied" in body["unreachable"][0]["message"]
    status = create_app(services.settings, services).test_client().get("/api/status").get_json()
    assert status["scan"]["last"]["warnings"] == body["unreachable"]

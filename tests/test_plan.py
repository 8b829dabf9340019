"""The scan's plan on its own: constructed walk results diffed against constructed database states (no model)."""

from __future__ import annotations

import pytest

from materialsearch.catalog.records import FileState, ItemStatus, Kind
from materialsearch.errors import ProblemCode
from materialsearch.scan.plan import Move, diff, match_moves, plan_scan
from materialsearch.scan.walk import FileEntry

ROOT = "/library"
OTHER_ROOT = "/nas"


def entry(name: str, size: int = 100, mtime: int = 1, kind: Kind = Kind.IMAGE, still: str | None = None):
    return FileEntry(f"{ROOT}/{name}", size, mtime, kind, still)


def state(
    item_id: int, size: int = 100, mtime: int = 1, status: ItemStatus = ItemStatus.OK, content_hash=None, pair=None
):
    return FileState(item_id, size, mtime, status, content_hash, pair)


def everything_exists(_root: str) -> bool:
    return True


def no_hashing(entry: FileEntry) -> str:
    raise AssertionError(f"{entry.path} should not be hashed")


def test_new_changed_unchanged_and_vanished():
    known = {
        f"{ROOT}/same.jpg": state(1),
        f"{ROOT}/touched.jpg": state(2, mtime=0),
        f"{ROOT}/resized.jpg": state(3, size=99),
        f"{ROOT}/pending.jpg": state(4, status=ItemStatus.PENDING),
        f"{ROOT}/gone.jpg": state(5),
    }
    walked = [entry("same.jpg"), entry("touched.jpg"), entry("resized.jpg"), entry("pending.jpg"), entry("new.jpg")]

    plan = diff(walked, known, [ROOT], everything_exists)

    assert (plan.found, plan.unchanged) == (5, 1)
    assert [e.path for e in plan.changed] == [f"{ROOT}/touched.jpg", f"{ROOT}/resized.jpg", f"{ROOT}/pending.jpg"]
    assert [e.path for e in plan.new] == [f"{ROOT}/new.jpg"]
    assert list(plan.vanished) == [f"{ROOT}/gone.jpg"]
    assert plan.to_prepare == plan.changed + plan.new
    assert plan.warnings == [] and plan.moved == []


def test_a_video_whose_live_photo_still_changed_is_rescanned():
    known = {f"{ROOT}/IMG_1.MOV": state(1, pair=f"{ROOT}/IMG_1.jpg"), f"{ROOT}/IMG_2.MOV": state(2)}
    walked = [entry("IMG_1.MOV", kind=Kind.VIDEO), entry("IMG_2.MOV", kind=Kind.VIDEO, still=f"{ROOT}/IMG_2.jpg")]
    plan = diff(walked, known, [ROOT], everything_exists)
    assert plan.unchanged == 0
    assert [e.path for e in plan.changed] == [f"{ROOT}/IMG_1.MOV", f"{ROOT}/IMG_2.MOV"]


@pytest.mark.parametrize("folder_exists", [False, True], ids=["missing", "empty"])
def test_a_missing_or_empty_library_folder_keeps_its_items(folder_exists):
    known = {f"{ROOT}/a.jpg": state(1), f"{OTHER_ROOT}/b.jpg": state(2), f"{OTHER_ROOT}/c.jpg": state(3)}
    walked = [entry("a.jpg")]

    plan = diff(walked, known, [ROOT, OTHER_ROOT], lambda root: root == ROOT or folder_exists)

    assert plan.vanished == {}
    assert [str(w) for w in plan.warnings] == [
        f"library folder {OTHER_ROOT} is missing or empty; keeping its indexed items until it is back"
    ]
    assert [(w.code, w.path, w.kept) for w in plan.warnings] == [(ProblemCode.LIBRARY_FOLDER_MISSING, OTHER_ROOT, 2)]


def test_a_missing_folder_holds_only_its_own_items_and_paths_outside_every_folder_are_swept():
    known = {f"{ROOT}/gone.jpg": state(1), f"{OTHER_ROOT}/b.jpg": state(2), "/elsewhere/c.jpg": state(3)}
    walked = [entry("kept.jpg")]
    plan = diff(walked, known, [ROOT, OTHER_ROOT], lambda root: root == ROOT)
    assert sorted(plan.vanished) == ["/elsewhere/c.jpg", f"{ROOT}/gone.jpg"]
    assert len(plan.warnings) == 1


def test_an_empty_folder_that_never_had_items_warns_nothing():
    plan = diff([entry("a.jpg")], {}, [ROOT, OTHER_ROOT], everything_exists)
    assert plan.warnings == [] and plan.vanished == {}


def test_moves_hash_only_size_matched_candidates():
    known = {f"{ROOT}/old.jpg": state(7, size=500, content_hash="h-old"), f"{ROOT}/gone.jpg": state(8, size=42)}
    walked = [entry("renamed.jpg", size=500), entry("other-size.jpg", size=501), entry("same-size-other.jpg", 500)]
    hashed = []

    def content_hash(e: FileEntry) -> str:
        hashed.append(e.path)
        return {f"{ROOT}/renamed.jpg": "h-old"}.get(e.path, "different")

    plan = plan_scan(walked, known, [ROOT], everything_exists, content_hash)

    assert plan.moved == [Move(7, f"{ROOT}/old.jpg", walked[0])]
    assert [e.path for e in plan.new] == [f"{ROOT}/other-size.jpg", f"{ROOT}/same-size-other.jpg"]
    assert list(plan.vanished) == [f"{ROOT}/gone.jpg"]  # no content hash: never a move candidate
    # The first match used the only candidate of that size: nothing else needed hashing.
    assert hashed == [f"{ROOT}/renamed.jpg"]


def test_one_vanished_item_moves_once():
    known = {f"{ROOT}/old.jpg": state(1, content_hash="h")}
    walked = [entry("copy1.jpg"), entry("copy2.jpg")]
    plan = plan_scan(walked, known, [ROOT], everything_exists, lambda e: "h")
    assert [m.entry.path for m in plan.moved] == [f"{ROOT}/copy1.jpg"]
    assert [e.path for e in plan.new] == [f"{ROOT}/copy2.jpg"]
    assert plan.vanished == {}


def test_no_vanished_candidates_means_no_hashing():
    plan = plan_scan([entry("new.jpg")], {}, [ROOT], everything_exists, no_hashing)
    assert [e.path for e in plan.new] == [f"{ROOT}/new.jpg"]


@pytest.mark.parametrize("error", [PermissionError("denied"), RuntimeError("unexpected")])
def test_a_file_that_cannot_be_hashed_is_new(error):
    known = {f"{ROOT}/old.jpg": state(1, content_hash="h")}

    def content_hash(_entry):
        raise error

    plan = plan_scan([entry("new.jpg")], known, [ROOT], everything_exists, content_hash)
    assert [e.path for e in plan.new] == [f"{ROOT}/new.jpg"]
    assert plan.moved == [] and list(plan.vanished) == [f"{ROOT}/old.jpg"]


def test_a_live_photo_movie_moved_away_from_its_still_is_a_new_video():
    known = {f"{ROOT}/IMG_1.MOV": state(1, content_hash="h", pair=f"{ROOT}/IMG_1.jpg")}
    walked = [entry("elsewhere/IMG_1.MOV", kind=Kind.VIDEO)]
    plan = plan_scan(walked, known, [ROOT], everything_exists, lambda e: "h")
    assert plan.moved == []
    assert [e.path for e in plan.new] == [f"{ROOT}/elsewhere/IMG_1.MOV"]
    assert list(plan.vanished) == [f"{ROOT}/IMG_1.MOV"]  # its motion item goes; the video is indexed anew


def test_a_live_photo_moved_with_its_still_is_a_move():
    known = {f"{ROOT}/IMG_1.MOV": state(1, content_hash="h", pair=f"{ROOT}/IMG_1.jpg")}
    walked = [entry("trip/IMG_1.MOV", kind=Kind.VIDEO, still=f"{ROOT}/trip/IMG_1.jpg")]
    plan = plan_scan(walked, known, [ROOT], everything_exists, lambda e: "h")
    assert [m.item_id for m in plan.moved] == [1]
    assert plan.new == [] and plan.vanished == {}


def test_match_moves_leaves_its_input_plan_alone():
    known = {f"{ROOT}/old.jpg": state(1, content_hash="h")}
    before = diff([entry("new.jpg")], known, [ROOT], everything_exists)
    after = match_moves(before, lambda e: "h")
    assert len(after.moved) == 1
    assert [e.path for e in before.new] == [f"{ROOT}/new.jpg"] and list(before.vanished) == [f"{ROOT}/old.jpg"]

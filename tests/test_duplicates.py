"""The duplicate finder's parts on their own: the vectors propose (exact and IVF range search, capped per item),
the hash confirms (either alone groups nothing), the keeper and its reason, the video sequence rule, the
perceptual hash on real pictures, and the hidden-items table (reversible; cascades with the item)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from PIL import Image, ImageOps

from materialsearch.catalog import similar_pairs
from materialsearch.catalog.records import ItemRecord
from materialsearch.catalog.store import Filters, Store
from materialsearch.organise import duplicates
from materialsearch.organise.duplicates import (
    HASH_MAX_DISTANCE,
    CopyFacts,
    Frames,
    KeeperReason,
    group_photos,
    hash_distance,
    propose_pairs,
    rank,
    same_video,
)


def _unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _planted(count: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Random unit vectors, with every 10th row followed by a near copy (cosine ≈ 0.99)."""
    rng = np.random.default_rng(seed)
    rows, pairs = [], []
    while len(rows) < count:
        base = rng.standard_normal(dim)
        rows.append(base)
        if len(rows) % 10 == 1:
            rows.append(base + 0.1 * rng.standard_normal(dim))
            pairs.append((len(rows) - 2, len(rows) - 1))
    return _unit(rows[:count]), [p for p in pairs if p[1] < count]


# --- proposal -----------------------------------------------------------------------------------------------------
def test_range_search_proposes_exactly_the_near_pairs():
    vectors, planted = _planted(400)
    pairs, scores = propose_pairs(vectors, min_cosine=0.9)
    assert sorted(map(tuple, pairs.tolist())) == planted
    assert np.all(scores >= 0.9) and np.all(pairs[:, 0] < pairs[:, 1])


def test_large_collections_use_an_ivf_and_still_find_the_pairs(monkeypatch):
    monkeypatch.setattr(similar_pairs, "EXACT_SEARCH_MAX", 500)
    vectors, planted = _planted(3000)
    pairs, _ = propose_pairs(vectors, min_cosine=0.9)
    found = set(map(tuple, pairs.tolist()))
    assert len(found & set(planted)) >= 0.95 * len(planted)
    assert found <= set(planted)


def test_proposals_are_capped_per_item_when_a_model_puts_everything_close():
    vectors = _unit(np.ones((50, 8)) + 1e-3 * np.random.default_rng(1).standard_normal((50, 8)))
    pairs, _ = propose_pairs(vectors, min_cosine=0.9, max_neighbours=3)
    assert 50 <= len(pairs) <= 50 * 3  # each item keeps its 3 best (of the 49 above the cosine)
    assert propose_pairs(vectors[:1])[0].shape == (0, 2)


# --- confirmation -------------------------------------------------------------------------------------------------
def test_the_hash_confirms_what_the_vectors_propose():
    ids = np.array([10, 11, 12, 13])
    vectors = _unit(np.ones((4, 8)))  # a degenerate model: everything identical
    hashes = {10: 0, 11: 0b111, 12: 2**64 - 1, 13: None}  # 10~11 (3 bits), 12 far, 13 has no thumbnail
    groups, proposed, confirmed = group_photos(ids, vectors, hashes.get)
    assert groups == [[10, 11]] and proposed == 6 and confirmed == 1


def test_equal_hashes_without_close_vectors_are_not_duplicates():
    ids = np.array([1, 2])
    groups, proposed, _ = group_photos(ids, _unit([[1, 0], [0, 1]]), lambda _i: 42)
    assert groups == [] and proposed == 0


def test_groups_join_chains_of_confirmed_pairs():
    ids = np.array([1, 2, 3, 4])
    hashes = {1: 0, 2: 0b1111, 3: 0b11111111, 4: 2**64 - 1}  # 1-2 and 2-3 within the limit; 1-3 just too
    assert hash_distance(hashes[1], hashes[3]) <= 2 * HASH_MAX_DISTANCE
    groups, _, _ = group_photos(ids, _unit(np.ones((4, 4))), hashes.get)
    assert groups == [[1, 2, 3]]


def test_phash_tells_a_resize_from_another_photo(tmp_path, media_dir):
    def thumb(name: str, side: int, source: str) -> str:
        with Image.open(media_dir / source) as image:
            picture = ImageOps.exif_transpose(image).convert("RGB")
        picture.thumbnail((side, side))
        path = tmp_path / name
        picture.save(path, quality=70)
        return str(path)

    original = duplicates.phash_of_file(thumb("a.jpg", 256, "jpeg_nikon_d5000_gps.jpeg"))
    smaller = duplicates.phash_of_file(thumb("b.jpg", 96, "jpeg_nikon_d5000_gps.jpeg"))
    other = duplicates.phash_of_file(thumb("c.jpg", 256, "jpg_no_exif.jpg"))
    assert 0 <= original < 2**64
    assert hash_distance(original, smaller) <= HASH_MAX_DISTANCE < hash_distance(original, other)


# --- the keeper ---------------------------------------------------------------------------------------------------
def _member(id_, path="/l/a.jpg", w=4000, h=3000, size=1000, taken=dt.datetime(2024, 1, 1), mtime=1, **extra):
    return CopyFacts(id_, path, "image", w, h, size, taken, mtime, **extra)


@pytest.mark.parametrize(
    ("members", "keeper", "why"),
    [
        ([_member(1, w=2000, h=1500), _member(2)], 2, KeeperReason.LARGEST_RESOLUTION),
        ([_member(1, "/l/IMG_1.JPG"), _member(2, "/l/IMG_1.HEIC")], 2, KeeperReason.ORIGINAL_FORMAT),
        ([_member(1, "/l/IMG_E0001.JPG"), _member(2, "/l/IMG_0001.JPG")], 2, KeeperReason.NOT_EDITED),
        ([_member(1, "/l/beach (1).jpg"), _member(2, "/l/beach.jpg")], 2, KeeperReason.NOT_EDITED),
        ([_member(1, "/l/海边 副本.jpg"), _member(2, "/l/海边.jpg")], 2, KeeperReason.NOT_EDITED),
        ([_member(1, mtime=9), _member(2, mtime=3)], 2, KeeperReason.EARLIEST),
        ([_member(1, taken=None), _member(2)], 2, KeeperReason.EARLIEST),
        ([_member(1, size=10), _member(2, size=20)], 2, KeeperReason.LARGEST_FILE),
        ([_member(2), _member(1)], 1, KeeperReason.FIRST_INDEXED),
        ([_member(1, duration_ms=5000), _member(2, duration_ms=9000)], 2, KeeperReason.LONGEST),
    ],
)
def test_the_keeper_and_why(members, keeper, why):
    ordered, reason = rank(members)
    assert ordered[0] == keeper and reason == why
    assert set(ordered) == {m.id for m in members}
    assert duplicates.REASON_TEXT[reason]


def test_every_reason_has_its_text():
    assert set(duplicates.REASON_TEXT) == set(KeeperReason)


# --- videos -------------------------------------------------------------------------------------------------------
def _video(item_id: int, scenes: list[int], interval_ms: int = 1000, start: int = 0) -> Frames:
    """A video whose frame i shows scene ``scenes[i]`` (vectors and hashes identify the scene)."""
    times = np.arange(len(scenes), dtype=np.int64) * interval_ms + start
    vectors = _unit(np.eye(16)[scenes] + 0.01)
    return Frames(item_id, times, vectors)


def _scene_hash(videos: dict[int, list[int]]):
    def frame_hash(item_id: int, time_ms: int) -> int:
        return (2**64 - 1) // 255 * (videos[item_id][time_ms // 1000] + 1)  # far apart per scene

    return frame_hash


def test_a_re_encode_and_a_trim_are_the_same_video():
    scenes = {1: [0, 0, 1, 1, 2, 2, 3, 3], 2: [0, 0, 1, 1, 2, 2, 3, 3], 3: [1, 1, 2, 2, 3]}
    frame_hash = _scene_hash(scenes)
    assert same_video(_video(1, scenes[1]), _video(2, scenes[2]), frame_hash, 1000)
    assert same_video(_video(1, scenes[1]), _video(3, scenes[3]), frame_hash, 1000)


def test_a_shared_intro_or_the_same_shots_in_another_order_is_not():
    scenes = {1: [0, 0, 0, 1, 1, 2, 2], 2: [0, 0, 0, 3, 3, 4, 4], 3: [2, 2, 1, 1, 0, 0, 0]}
    frame_hash = _scene_hash(scenes)
    assert not same_video(_video(1, scenes[1]), _video(2, scenes[2]), frame_hash, 1000)
    assert not same_video(_video(1, scenes[1]), _video(3, scenes[3]), frame_hash, 1000)


def test_video_frames_with_close_vectors_but_other_hashes_do_not_match():
    scenes = {1: [0, 1, 2], 2: [0, 1, 2]}
    alike = _video(1, [0, 0, 0])  # every frame's vector the same: the vectors cannot tell

    def unrelated(item: int, time_ms: int) -> int:  # a different picture in every frame
        return int(np.random.default_rng(item * 100000 + time_ms).integers(0, 2**63))

    assert not same_video(alike, _video(2, [0, 0, 0]), unrelated, 1000)
    assert same_video(_video(1, scenes[1]), _video(2, scenes[2]), _scene_hash(scenes), 1000)


# --- hidden items -------------------------------------------------------------------------------------------------
def _record(path: str) -> ItemRecord:
    record = ItemRecord(path=path, kind="image", size=1, mtime_ns=1, status="ok")
    record.vectors = [(None, _unit(np.ones((1, 4)))[0])]
    return record


def test_hidden_items_are_left_out_of_filtered_vectors_and_restored(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    try:
        store.write_batch([_record(f"/l/{n}.jpg") for n in "abc"])
        ids = sorted(store.get_items(range(1, 10)))
        assert not store.duplicates.has_hidden()
        store.duplicates.hide(ids[:2])
        store.duplicates.hide(ids[:1])
        assert store.duplicates.hidden_ids() == set(ids[:2]) and store.duplicates.has_hidden()
        visible = store.filtered_vector_ids(Filters(exclude_hidden=True))
        assert len(visible) == 1 and store.count_searchable(Filters(exclude_hidden=True)) == 1
        assert store.count_searchable(Filters()) == 3
        store.duplicates.unhide(ids[:1])
        assert store.duplicates.hidden_ids() == {ids[1]}
        store.delete_items([ids[1]])
        assert store.duplicates.hidden_ids() == set()  # gone with its item
        store.duplicates.save_perceptual_hashes([(ids[0], -1, "key", 2**64 - 1), (ids[0], 2000, "key", 5)])
        store.duplicates.save_perceptual_hashes([(ids[0], 2000, "key2", 6)])
        assert store.duplicates.perceptual_hashes() == {(ids[0], -1): ("key", 2**64 - 1), (ids[0], 2000): ("key2", 6)}
    finally:
        store.close()

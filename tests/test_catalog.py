"""The catalog keeps the database and the FAISS index in agreement: batches, removals and moves write both, only
``checkpoint`` saves the index (and only in the owning process), and opening loads or rebuilds it and adopts the
model. Also the store's one-declaration rules: records and rows share the declared columns, IN lists are chunked,
counts are a dataclass."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from materialsearch.catalog import sql as sql_module
from materialsearch.catalog.core import INDEX_FILENAME, MODEL_IDENTITY_KEY, Catalog
from materialsearch.catalog.records import FileState, ItemRecord, ItemStatus, Kind
from materialsearch.catalog.schema import STILL_HASH_TIME, Item
from materialsearch.catalog.sql import IN_CHUNK, chunked
from materialsearch.catalog.store import ItemCounts, Store
from materialsearch.catalog.vector_index import VectorIndex
from materialsearch.encoders import ModelError

DIM = 8
PACKAGE = Path(__file__).resolve().parents[1] / "materialsearch"


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def photo(path: str, seed: int, **fields) -> ItemRecord:
    return ItemRecord(path, Kind.IMAGE, 100 + seed, seed, ItemStatus.OK, vectors=[(None, unit(seed))], **fields)


@pytest.fixture
def open_catalog(tmp_path):
    opened: list[Catalog] = []

    def build(identity: str = "model-a", owner: bool = True) -> Catalog:
        store = Store(str(tmp_path / "materialsearch.db"))
        index = VectorIndex(str(tmp_path / INDEX_FILENAME), DIM, identity, background=False)
        catalog = Catalog(store, index, owner=owner)
        opened.append(catalog)
        return catalog

    yield build
    for catalog in opened:
        catalog.store.close()


def agree(catalog: Catalog) -> bool:
    return catalog.index.checksum() == catalog.store.vector_checksum()


def test_apply_remove_and_move_keep_the_index_with_the_database(open_catalog):
    catalog = open_catalog()
    catalog.open()
    catalog.apply([photo("/l/a.jpg", 1), photo("/l/b.jpg", 2), photo("/l/c.jpg", 3)])
    assert catalog.index.ntotal == 3 and agree(catalog)

    # Re-applying a path replaces its vectors: the old one leaves the index, the new one answers.
    catalog.apply([photo("/l/a.jpg", 9)])
    assert catalog.index.ntotal == 3 and agree(catalog)
    states = catalog.store.file_states()
    _scores, ids = catalog.index.search(unit(9), 1)
    assert catalog.store.vector_frames(ids.tolist())[int(ids[0])][0] == states["/l/a.jpg"].id

    catalog.move(states["/l/b.jpg"].id, "/l/moved/b.jpg", 102, 2, None)
    assert "/l/moved/b.jpg" in catalog.store.file_states() and catalog.index.ntotal == 3 and agree(catalog)

    catalog.remove([states["/l/c.jpg"].id, states["/l/a.jpg"].id])
    assert set(catalog.store.file_states()) == {"/l/moved/b.jpg"} and catalog.index.ntotal == 1 and agree(catalog)

    # A failed file keeps no vector: applying it over an indexed path takes that path's vector out of the index.
    failed = ItemRecord("/l/moved/b.jpg", Kind.IMAGE, 1, 1, ItemStatus.ERROR, error="broken")
    catalog.apply([failed])
    assert catalog.index.ntotal == 0 and agree(catalog)


def test_only_checkpoint_saves_and_only_the_owner(open_catalog, tmp_path):
    index_file = tmp_path / INDEX_FILENAME
    reader = open_catalog(owner=False)
    reader.open()
    reader.apply([photo("/l/a.jpg", 1)])  # (a reader never scans; this just proves it cannot write the file)
    reader.checkpoint()
    reader.close()
    assert not index_file.exists()

    owner = open_catalog()
    owner.open()  # rebuilt from the database, and saved
    stamp = json.loads(Path(f"{index_file}.json").read_text())
    assert (stamp["count"], stamp["id_sum"]) == owner.store.vector_checksum() == (1, 1)
    owner.apply([photo("/l/b.jpg", 2)])
    assert json.loads(Path(f"{index_file}.json").read_text())["count"] == 1  # not saved by apply
    owner.checkpoint()
    assert json.loads(Path(f"{index_file}.json").read_text())["count"] == 2


def test_open_loads_a_matching_index_and_rebuilds_one_out_of_step(open_catalog, monkeypatch):
    first = open_catalog()
    first.open()
    first.apply([photo(f"/l/{i}.jpg", i) for i in range(5)])
    first.close()

    rebuilds = []
    real_rebuild = VectorIndex.rebuild

    def counting_rebuild(self, chunks):
        rebuilds.append(self.path)
        real_rebuild(self, chunks)

    monkeypatch.setattr(VectorIndex, "rebuild", counting_rebuild)
    again = open_catalog()
    again.open()
    assert rebuilds == [] and again.index.ntotal == 5 and agree(again)  # loaded from the saved file

    # The database changed behind the index's back (a crash after a commit): the next opening rebuilds.
    again.store.delete_items([again.store.file_states()["/l/0.jpg"].id])
    after_crash = open_catalog()
    after_crash.open()
    assert len(rebuilds) == 1 and after_crash.index.ntotal == 4 and agree(after_crash)


def test_a_model_change_drops_the_vectors_and_marks_items_pending(open_catalog):
    first = open_catalog("model-a")
    assert first.open() is None
    first.apply([photo("/l/a.jpg", 1), photo("/l/b.jpg", 2)])
    first.close()

    with pytest.raises(ModelError, match="another model"):
        open_catalog("model-b", owner=False).open()
    assert open_catalog("model-a").store.vector_checksum()[0] == 2  # the refusal dropped nothing

    changed = open_catalog("model-b")
    message = changed.open()
    assert message is not None and "model-a → model-b" in message and "2 items" in message
    assert changed.store.counts() == ItemCounts(pending=2)
    assert changed.index.ntotal == 0 and agree(changed)
    assert changed.store.get_meta(MODEL_IDENTITY_KEY) == "model-b"


def test_counts_by_outcome(open_catalog):
    catalog = open_catalog()
    catalog.open()
    video = ItemRecord("/l/v.mov", Kind.VIDEO, 5, 5, ItemStatus.OK, vectors=[(0, unit(5)), (1000, unit(6))])
    live = ItemRecord("/l/IMG_1.MOV", Kind.VIDEO, 6, 6, ItemStatus.MOTION, pair_path="/l/IMG_1.HEIC")
    catalog.apply(
        [
            photo("/l/a.jpg", 1),
            photo("/l/IMG_1.HEIC", 2),
            video,
            live,
            ItemRecord("/l/bad.jpg", Kind.IMAGE, 1, 1, ItemStatus.ERROR, error="broken"),
            ItemRecord("/l/bad.mov", Kind.VIDEO, 1, 1, ItemStatus.ERROR, error="broken"),
            ItemRecord("/l/tiny.png", Kind.IMAGE, 1, 1, ItemStatus.SKIPPED, error="too small"),
        ]
    )
    assert catalog.store.counts() == ItemCounts(images=2, videos=1, live_photos=1, errors=2, skipped=1)
    assert catalog.store.motions_for(["/l/IMG_1.HEIC", "/l/a.jpg"])["/l/IMG_1.HEIC"].path == "/l/IMG_1.MOV"


def test_long_id_lists_are_chunked(open_catalog, monkeypatch):
    assert [len(c) for c in chunked(range(2 * IN_CHUNK + 5))] == [IN_CHUNK, IN_CHUNK, 5]
    assert list(chunked([])) == [] and [len(c) for c in chunked(range(5), 2)] == [2, 2, 1]
    monkeypatch.setattr(sql_module, "IN_CHUNK", 7)  # every query below spans several chunks
    catalog = open_catalog()
    catalog.open()
    count = 2 * 7 + 5
    catalog.apply([photo(f"/l/{i:05d}.jpg", i) for i in range(count)])
    catalog.apply([photo(f"/l/{i:05d}.jpg", i + 1) for i in range(count)])  # every path replaced in one batch
    ids = [state.id for state in catalog.store.file_states().values()]
    assert len(catalog.store.get_items(ids)) == count and catalog.index.ntotal == count and agree(catalog)
    assert len(catalog.store.vector_frames(list(range(1, 3 * count)))) == count
    catalog.remove(ids)
    assert catalog.store.file_states() == {} and catalog.index.ntotal == 0 and agree(catalog)


def test_whether_videos_or_hidden_items_exist_follows_every_commit_by_anyone(open_catalog):
    """Every search asks both; the answers are kept until the next commit, including another process's."""
    searching, scanning = open_catalog(), open_catalog(owner=False)  # two connections to one file, as two processes
    searching.open()
    scanning.open()
    assert not searching.store.has_videos() and not searching.store.duplicates.has_hidden()
    scanning.apply(
        [ItemRecord("/l/v.mov", Kind.VIDEO, 5, 5, ItemStatus.OK, vectors=[(0, unit(5))]), photo("/l/a.jpg", 1)]
    )
    assert searching.store.has_videos()
    photo_id = next(state.id for path, state in scanning.store.file_states().items() if path == "/l/a.jpg")
    scanning.store.duplicates.hide([photo_id])
    assert searching.store.duplicates.has_hidden() and searching.store.has_videos()
    scanning.store.duplicates.unhide([photo_id])
    scanning.remove([state.id for path, state in scanning.store.file_states().items() if path == "/l/v.mov"])
    assert not searching.store.has_videos() and not searching.store.duplicates.has_hidden()


def test_records_rows_and_states_share_the_declared_columns(open_catalog):
    columns = {column.key for column in Item.__table__.columns}
    record_fields = {field.name for field in dataclasses.fields(ItemRecord)}
    # Every field of a scan record is stored (``vectors`` and the thumbnail's ``phash`` in their own tables), every
    # state field is read.
    assert record_fields - columns == {"vectors", "phash"}
    assert {field.name for field in dataclasses.fields(FileState)} <= columns
    catalog = open_catalog()
    catalog.open()
    record = photo("/l/a.jpg", 1, width=4, height=3, thumbnail="t", content_hash="h", motion_offset=7)
    record.phash = 2**64 - 5  # unsigned 64 bits, stored signed
    catalog.apply([record])
    item = catalog.store.get_item(catalog.store.file_states()["/l/a.jpg"].id)
    for name in record_fields - {"vectors", "phash"}:
        assert getattr(item, name) == getattr(record, name), name
    assert catalog.store.duplicates.perceptual_hashes() == {(item.id, STILL_HASH_TIME): ("t", 2**64 - 5)}
    assert item.indexed_at is not None


def test_the_index_is_saved_only_by_the_catalog():
    """No module but the catalog calls ``save()`` on a vector index (the index module defines it)."""
    callers = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() in {"catalog/core.py", "catalog/vector_index.py"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "save" and "index" in ast.unparse(node.value):
                callers.append(f"{path.name}:{node.lineno}")
    assert callers == []

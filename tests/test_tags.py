"""Zero-shot tags: the label files (shipped, extended, replaced, refused), the rule on constructed scores, and the
whole path on a scanned library with the tiny model: computed from the stored vectors, kept fresh by a
fingerprint, crash-safe, filtered with tag= (AND), listed with counts, carried by items."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from materialsearch.catalog import tags as tag_rows
from materialsearch.organise import tags
from materialsearch.organise.tags import (
    MIN_ITEMS_FOR_Z,
    P_MIN,
    TOP_K,
    Z_MIN,
    LabelError,
    assign_tags,
    item_scores,
    label_set,
    read_labels,
)
from materialsearch.web import services_of

DISTINCT = ["jpeg_nikon_d5000_gps.jpeg", "webp_lossy_photo.webp", "png_rgba_transparent.png", "jpg_cmyk.jpg"]
DISTINCT += ["jpg_grayscale_concert.jpg", "heic_iphone12pro_orient6_irot_gps.heic"]
COPIES = 24


def make_tag_library(root: Path, media_dir: Path) -> Path:
    """24 crops and resizes of one photo plus 6 different photos: the copies set each label's median and spread,
    so the different photos stand out from the library (the tiny model's labels all point one way: the items that
    stand out do so for every label, and get ``TOP_K`` tags)."""
    root.mkdir(parents=True, exist_ok=True)
    base = Image.open(media_dir / "jpg_orient1.jpg").convert("RGB")
    width, height = base.size
    for i in range(COPIES):
        crop = base.crop((i, i // 2, width - (i % 5), height - (i % 3)))
        size = (crop.width * (90 + i) // 100, crop.height * (90 + i) // 100)
        crop.resize(size).save(root / f"copy{i:02}.jpg", "JPEG")
    for name in DISTINCT:
        shutil.copy2(media_dir / name, root / name)
    return root


def write_tsv(path: Path, *rows: str) -> Path:
    path.write_text("# a user's tags\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


# --- label files -----------------------------------------------------------------------------------------------
def test_the_shipped_set_has_about_80_bilingual_labels():
    labels = label_set()
    assert 70 <= len(labels) <= 100
    keys = {label.key for label in labels}
    assert {"people", "selfie", "baby", "cat", "dog", "food", "beach", "mountains", "snow", "flowers"} <= keys
    assert {"city_night", "car", "document", "receipt", "screenshot", "whiteboard", "birthday", "wedding"} <= keys
    for label in labels:
        assert label.zh and label.en and all(label.prompts) and "{}" not in "".join(label.prompts)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in label.prompt_zh)
    cat = next(label for label in labels if label.key == "cat")
    assert (cat.zh, cat.en, cat.prompts) == ("猫", "cat", ("一张猫的照片", "a photo of a cat"))


def test_a_users_file_extends_replaces_or_stands_alone(tmp_path):
    path = write_tsv(tmp_path / "mine.tsv", "cat\t喵星人\tkitty", "ramen\t拉面\tramen\t一碗{}\ta bowl of {}")
    extended = {label.key: label for label in label_set(str(path))}
    assert len(extended) == len(label_set()) + 1
    assert (extended["cat"].zh, extended["cat"].prompt_en) == ("喵星人", "a photo of a kitty")
    assert extended["ramen"].prompts == ("一碗拉面", "a bowl of ramen")
    alone = label_set(str(path), replace=True)
    assert [label.key for label in alone] == ["cat", "ramen"]


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (["cat\t猫"], "line 2: expected key, zh, en"),
        (["cat\t\tcat"], "line 2: expected key, zh, en"),
        (["a cat\t猫\tcat"], "line 2: the key 'a cat'"),
        (["cat\t猫\tcat", "cat\t喵\tkitty"], "line 3: the key 'cat' appears twice"),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(tmp_path, rows, says):
    with pytest.raises(LabelError, match=says):
        read_labels(write_tsv(tmp_path / "bad.tsv", *rows))


def test_a_missing_or_empty_file_is_refused(tmp_path):
    with pytest.raises(LabelError, match="cannot read"):
        label_set(str(tmp_path / "absent.tsv"))
    with pytest.raises(LabelError, match="no labels"):
        label_set(str(write_tsv(tmp_path / "empty.tsv")), replace=True)


# --- the rule ----------------------------------------------------------------------------------------------------
def library_scores(items: int, labels: int, seed: int = 0) -> np.ndarray:
    """Cosines as CLIP gives them: every label around 0.2 with a spread of 0.01."""
    return (0.2 + 0.01 * np.random.default_rng(seed).standard_normal((items, labels))).astype(np.float32)


def test_an_item_gets_the_labels_that_stand_out_for_it_at_most_top_k():
    scores = library_scores(200, 10)
    scores[7, 3] += 0.08  # z ≈ 8 for label 3
    scores[9, :] += 0.06  # stands out for every label: only its top K
    assigned = assign_tags(np.arange(200), scores, logit_scale=np.log(10))
    pairs = set(zip(assigned.item_ids.tolist(), assigned.labels.tolist(), strict=True))
    assert (7, 3) in pairs
    assert sum(1 for item, _ in pairs if item == 9) == TOP_K
    assert all(z >= Z_MIN for z in assigned.z)
    chance = sum(1 for item, _ in pairs if item not in (7, 9))
    assert chance <= 2  # a normal library: z >= 3 by chance is rare (0.1 % of 1980 scores)


def test_a_label_most_items_show_is_tagged_by_the_models_own_softmax():
    scores = library_scores(100, 10)
    scores[:90, 0] += 0.1  # nearly every item is a cat: "cat" stands out from nothing, yet clearly applies
    assigned = assign_tags(np.arange(100), scores, logit_scale=np.log(100))  # cn_clip's trained scale
    cats = set(assigned.item_ids[assigned.labels == 0].tolist())
    assert set(range(90)) <= cats
    logits = 100 * scores[0]
    assert np.exp(logits[0]) / np.exp(logits).sum() >= P_MIN


def test_a_small_library_uses_only_the_softmax():
    scores = library_scores(MIN_ITEMS_FOR_Z - 1, 5)
    scores[0, 2] += 0.08  # would stand out, but the spread of a handful says nothing
    assert assign_tags(np.arange(len(scores)), scores, logit_scale=np.log(10)).item_ids.size == 0
    sure = assign_tags(np.arange(len(scores)), scores, logit_scale=np.log(100))
    assert (0, 2) in set(zip(sure.item_ids.tolist(), sure.labels.tolist(), strict=True))


def test_a_video_scores_by_the_mean_of_its_best_third_of_frames():
    owners = np.array([1, 2, 2, 2, 2, 2, 2, 3])
    scores = np.array([[0.1], [0.9], [0.6], [0.0], [0.0], [0.0], [0.0], [0.2]], np.float32)
    items, per_item = item_scores(owners, scores)
    assert items.tolist() == [1, 2, 3]
    assert per_item[:, 0] == pytest.approx([0.1, 0.75, 0.2])  # 6 frames: the best 2


# --- on a scanned library ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tag_library(tmp_path_factory, media_dir) -> Path:
    return make_tag_library(tmp_path_factory.mktemp("tags") / "library", media_dir)


@pytest.fixture(scope="module")
def app(scanned_app, tag_library):
    app = scanned_app(tag_library)
    assert services_of(app).tagger.refresh()
    return app


def tagged_items(app) -> dict[int, list[str]]:
    services = services_of(app)
    return services.tagger.tags_of(services.store.get_items(range(1, 100)))


def test_tags_are_computed_from_the_stored_vectors(app):
    found = tagged_items(app)
    services = services_of(app)
    items = services.store.get_items(found)
    assert found and all(Path(items[i].path).name in DISTINCT for i in found)
    assert all(len(keys) == TOP_K for keys in found.values())
    listed = app.test_client().get("/api/tags").json
    assert listed["current"] is True and listed["computing"] is False
    counts = {tag["key"]: tag["count"] for tag in listed["tags"]}
    assert len(counts) == len(services.tagger.labels)
    assert sum(counts.values()) == sum(len(keys) for keys in found.values())
    assert [tag["count"] for tag in listed["tags"]] == sorted(counts.values(), reverse=True)
    cat = next(tag for tag in listed["tags"] if tag["key"] == "cat")
    assert (cat["zh"], cat["en"]) == ("猫", "cat")


def test_a_fresh_fingerprint_computes_nothing(app):
    tagger = services_of(app).tagger
    assert not tagger.stale() and tagger.refresh() is False


def test_the_label_vectors_are_kept_for_the_next_process(app, monkeypatch):
    services = services_of(app)
    again = tags.Tagger(services.store, services.encoder, services.tagger.labels, busy=lambda: False)
    fresh = tags.label_vectors(services.encoder, again.labels)
    monkeypatch.setattr(tags, "label_vectors", lambda *_: pytest.fail("the text tower ran again"))
    assert np.allclose(again._label_vectors(), fresh, atol=1e-6)


def test_the_tag_filter_keeps_items_with_every_tag_given(app):
    client = app.test_client()
    found = tagged_items(app)
    first_item, first_tags = next(iter(found.items()))
    one = client.get(f"/api/search?q=photo&limit=100&tag={first_tags[0]}").json
    expected = {item for item, keys in found.items() if first_tags[0] in keys}
    assert {hit["id"] for hit in one["results"]} == expected and first_item in expected
    assert all(first_tags[0] in hit["tags"] for hit in one["results"])
    both = client.get(f"/api/search?q=photo&limit=100&tag={first_tags[0]}&tag={first_tags[1]}").json
    assert {hit["id"] for hit in both["results"]} == {i for i, k in found.items() if set(first_tags[:2]) <= set(k)}
    like = client.get(f"/api/search?like={first_item}&limit=100&tag={first_tags[0]}").json
    assert {hit["id"] for hit in like["results"]} == expected - {first_item}
    untagged_label = next(t["key"] for t in client.get("/api/tags").json["tags"] if t["count"] == 0)
    assert client.get(f"/api/search?q=photo&tag={untagged_label}").json["total"] == 0


def test_an_unknown_tag_is_a_400_naming_it(app):
    response = app.test_client().get("/api/search?q=photo&tag=cat&tag=unicorn")
    assert response.status_code == 400 and "'unicorn'" in response.json["message"]


def test_items_carry_their_tags(app):
    client = app.test_client()
    found = tagged_items(app)
    item_id, keys = next(iter(found.items()))
    assert client.get(f"/api/items/{item_id}").json["tags"] == keys
    untagged = next(i for i in services_of(app).store.get_items(range(1, 100)) if i not in found)
    assert client.get(f"/api/items/{untagged}").json["tags"] == []


def test_another_label_set_or_model_makes_the_tags_stale(app, tmp_path, make_model):
    services = services_of(app)
    mine = write_tsv(tmp_path / "mine.tsv", "ramen\t拉面\tramen")
    other = tags.Tagger(services.store, services.encoder, label_set(str(mine)), busy=lambda: False)
    assert other.stale() and other.fingerprint != services.tagger.fingerprint
    assert services.tagger.refresh(force=True)  # the same labels again: the stored state is this app's


def test_an_interrupted_computation_leaves_the_old_tags_and_is_redone(app, tmp_path, monkeypatch):
    services = services_of(app)
    before = tagged_items(app)
    mine = write_tsv(tmp_path / "mine.tsv", "cat\t喵\tkitty")
    other = tags.Tagger(services.store, services.encoder, label_set(str(mine), replace=True), busy=lambda: False)

    real_insert = tag_rows.insert

    def crash(table):
        if table is tag_rows.ItemTag:
            raise KeyboardInterrupt("killed while writing the tags")
        return real_insert(table)

    monkeypatch.setattr(tag_rows, "insert", crash)
    with pytest.raises(KeyboardInterrupt):
        other.refresh()
    monkeypatch.undo()
    assert tagged_items(app) == before and other.stale()  # nothing half-written: the old tags, still stale
    assert other.refresh() and not other.stale()
    assert services.tagger.stale()  # the app's own labels now need computing again
    assert services.tagger.refresh() and tagged_items(app) == before


def test_the_background_tagger_computes_at_start_and_after_each_scan(tmp_path, media_dir, make_app):
    library = make_tag_library(tmp_path / "library", media_dir)
    app = make_app(library=str(library), scan_on_start=True)
    services = services_of(app)
    services.start_background()
    deadline = time.monotonic() + 120
    while (services.scans.running or services.tagger.stale() or services.tagger.computing) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert not services.tagger.stale() and tagged_items(app)
    (library / DISTINCT[0]).unlink()
    assert services.scans.try_start("test") is None
    services.scans.wait(60)
    deadline = time.monotonic() + 60
    while (services.tagger.stale() or services.tagger.computing) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not services.tagger.stale()


def test_the_tags_that_send_a_photo_to_ocr_are_shipped_labels():
    from materialsearch.catalog.text import TEXT_TAGS
    from materialsearch.organise.tags import label_set

    assert set(TEXT_TAGS) <= {label.key for label in label_set()}  # a renamed label must not end the rescue

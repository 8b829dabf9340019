"""What the viewer loads and what a score means (issue 23, #9 and #12), through the API on the shared media: a
screen-sized rendition for photos larger than MS_PREVIEW_SIZE (the original only on zoom), one rendition shared by
copies of a file, and each search saying what its scores are."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import MEDIA

PREVIEW_SIZE = 2048  # config.py's default MS_PREVIEW_SIZE


@pytest.fixture(scope="module")
def items(client) -> dict[str, dict]:
    """Every indexed item by file name."""
    found: dict[str, dict] = {}
    cursor = None
    while True:
        page = client.get("/api/items?limit=200" + (f"&cursor={cursor}" if cursor else "")).get_json()
        found.update({item["name"]: item for item in page["results"]})
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_a_photo_larger_than_a_screen_is_shown_as_a_rendition_and_its_original_loads_on_zoom(client, items):
    big = items["livephoto_iphone6s_train.jpg"]  # 4032×3024, 3.3 MB
    assert "/preview?v=" in big["view_url"] and big["zoom_url"] == big["file_url"]
    answer = client.get(big["view_url"])
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert answer.cache_control.max_age == 86400  # cached like thumbnails (the URL carries the file's version)
    picture = Image.open(io.BytesIO(answer.data))
    assert max(picture.size) == PREVIEW_SIZE and picture.size[0] > picture.size[1]
    assert len(answer.data) < big["size"] / 3
    small = items["jpg_pixel7pro_progressive_gps.jpg"]  # 1020×768: the original is the rendition
    assert small["view_url"] == small["file_url"] == small["zoom_url"]
    moving = items["gif_animated.gif"]  # a GIF or WebP may move: always the original
    assert moving["view_url"] == moving["file_url"]
    heic = items["heic_iphone12pro_orient6_irot_gps.heic"]  # browsers cannot show it at all
    assert "/preview?v=" in heic["view_url"] and heic["zoom_url"] == heic["view_url"]
    found = client.get("/api/search?name=livephoto_iphone6s_train").get_json()["results"][0]
    assert found["view_url"] == big["view_url"] and found["zoom_url"] == big["zoom_url"]  # results say the same


def test_copies_of_a_photo_share_one_rendition(scanned_app, tmp_path):
    library = tmp_path / "copies"
    library.mkdir()
    for name in ["a.heic", "b.heic"]:
        shutil.copy(MEDIA / "heic_iphone12pro_orient6_irot_gps.heic", library / name)
    app = scanned_app(library)
    client = app.test_client()
    both = client.get("/api/items?limit=10").get_json()["results"]
    assert sorted(item["name"] for item in both) == ["a.heic", "b.heic"]
    from materialsearch.web import services_of

    data_dir = Path(services_of(app).settings.data_dir)

    def made() -> list[Path]:
        return list(data_dir.rglob("*.preview.jpg"))

    started = time.perf_counter()
    first = client.get(both[0]["view_url"])
    first_s = time.perf_counter() - started
    assert first.status_code == 200 and len(made()) == 1
    started = time.perf_counter()
    second = client.get(both[1]["view_url"])
    second_s = time.perf_counter() - started
    assert second.status_code == 200 and second.data == first.data and len(made()) == 1  # decoded once, not twice
    assert second_s < first_s


@pytest.mark.parametrize(
    "query, meaning",
    [
        ("q=train", "similarity"),  # the model's cosine between the words and each photo
        ("q=London", "none"),  # a place alone: the filters answer, newest first
        ("q=2023", "none"),  # a year alone
        ("name=train", "name"),  # a file-name search: how well the name matches
        ("path=media", "name"),
    ],
)
def test_a_search_says_what_its_scores_mean(client, query, meaning):
    answer = client.get(f"/api/search?{query}&match=all")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["scores"] == meaning and body["results"], body
    if meaning == "none":
        assert body["understood"]["q"] == ""  # nothing was left for the model
    if meaning == "name":
        assert all(0 < hit["score"] <= 1 for hit in body["results"])

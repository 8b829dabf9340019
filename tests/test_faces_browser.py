"""The people found in a photo, in the large view's side panel of a real headless Chromium, English and Chinese,
desktop and phone. Screenshots go to $MS_FACES_SHOTS when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from materialsearch.web import services_of
from tests.conftest import DESKTOP, PHONE, media_library, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = os.environ.get("MS_FACES_SHOTS")
PHOTOS = ["faces_obama_1.jpg", "faces_obama_2.jpg", "faces_obama_biden_two.jpg", "faces_biden_1.jpg"]


@pytest.fixture(scope="module")
def server(scanned_app, serve, tmp_path_factory):
    library = media_library(tmp_path_factory.mktemp("faces-ui") / "library", PHOTOS)
    app = scanned_app(library, decode_threads=1, ocr=False)
    services = services_of(app)
    services.faces.run()
    two = next(item for item in services.store.get_items(range(1, 100)).values() if "two" in item.path)
    obama = services.store.faces.faces_of(two.id)[0].person_id
    assert services.store.faces.update_person(obama, name="Barack Obama")
    return serve(app, threads=4)


@pytest.mark.parametrize(
    ("locale", "viewport", "unnamed"),
    [
        ("en-US", DESKTOP, ", Unnamed"),
        ("zh-CN", DESKTOP, "、未命名"),
        ("en-US", PHONE, ", Unnamed"),
        ("zh-CN", PHONE, "、未命名"),
    ],
    ids=["desktop-en", "desktop-zh", "phone-en", "phone-zh"],
)
def test_the_side_panel_names_the_people_in_the_photo(new_page, server, locale, viewport, unnamed):
    page = new_page(viewport, locale)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/?match=all&q=two")
    card = page.locator('#results .result[data-name="faces_obama_biden_two.jpg"]')
    card.locator(".result-open").click()
    people = page.locator(".info-people")
    expect(people).to_have_text(f"Barack Obama{unnamed}")
    people.scroll_into_view_if_needed()
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"viewer-{locale}-{viewport['width']}.png"))
    assert not errors


@pytest.mark.parametrize(
    ("locale", "viewport", "field"), [("en-US", DESKTOP, "Person"), ("zh-CN", PHONE, "人物")], ids=["en", "zh"]
)
def test_a_persons_name_typed_in_the_box_is_a_chip_and_finds_only_them(new_page, server, locale, viewport, field):
    page = new_page(viewport, locale)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/?match=all")
    page.fill("#query", "barack obama portrait")
    page.press("#query", "Enter")
    chip = page.locator('#understood [data-field="person"]')
    expect(chip).to_contain_text(field)
    expect(chip).to_contain_text("Barack Obama")
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
    names = sorted(page.locator("#results .result").evaluate_all("(cards) => cards.map((c) => c.dataset.name)"))
    assert names == ["faces_obama_1.jpg", "faces_obama_2.jpg", "faces_obama_biden_two.jpg"]
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"understood-{locale}-{viewport['width']}.png"))
    assert not errors

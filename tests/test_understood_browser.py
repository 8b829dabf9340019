"""The chips that say what a search sentence was read as, in a real headless Chromium at desktop and phone size in
English and Chinese: a place and a date read from the sentence filter the shared media's located and dated photos;
removing a chip searches again without that part (the rest of the sentence kept, the address too); an offered
place is a chip that, accepted, filters.

Set MS_UNDERSTOOD_SHOTS=/some/folder to keep screenshots.
"""

from __future__ import annotations

import os
import urllib.parse

import pytest

from tests.conftest import DESKTOP, PHONE, media_library, require_chromium
from tests.test_understand_api import FILES, LONDON_MOV, NIKON

pytestmark = pytest.mark.browser

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = os.environ.get("MS_UNDERSTOOD_SHOTS")


@pytest.fixture(scope="module")
def base(scanned_app, serve, tmp_path_factory):
    library = media_library(tmp_path_factory.mktemp("understood-ui") / "library", FILES)
    return serve(scanned_app(library, decode_threads=1))


def _open(new_page, base, locale, viewport, query):
    page = new_page(viewport, locale)
    page.goto(f"{base}/?{urllib.parse.urlencode({'q': query})}")
    expect(page.locator("#understood")).to_be_visible()
    return page


def _shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name))


def _names(page):
    return page.locator("#results .result .result-name")


LANGUAGES = [("en-US", "photos in Mongolia 2011", "2011"), ("zh-CN", "2011年在蒙古拍的照片", "2011")]


@pytest.mark.parametrize(("locale", "sentence", "year"), LANGUAGES)
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_chips_show_the_parts_and_removing_one_searches_without_it(new_page, base, locale, sentence, year, viewport):
    page = _open(new_page, base, locale, viewport, sentence)
    chips = page.locator("#understood .understood-chip")
    expect(chips).to_have_count(3)  # date, place, kind
    expect(page.locator('#understood [data-field="date"]')).to_contain_text(year)
    expect(page.locator('#understood [data-field="place"]')).to_contain_text(
        "Mongolia" if locale == "en-US" else "蒙古"
    )
    expect(_names(page)).to_have_text([NIKON])
    size = "phone" if viewport is PHONE else "desktop"
    _shot(page, f"understood-{locale[:2]}-{size}.png")
    page.locator('#understood [data-field="place"] .understood-remove').click()
    expect(chips).to_have_count(2)
    expect(page.locator('#understood [data-field="place"]')).to_have_count(0)
    box = page.locator("#query")
    assert "Mongolia" not in box.input_value() and "蒙古" not in box.input_value() and year in box.input_value()
    assert year in urllib.parse.unquote_plus(page.url) and "Mongolia" not in page.url
    expect(_names(page)).to_have_text([NIKON])  # still the only photo of 2011
    page.locator('#understood [data-field="date"] .understood-remove').click()
    expect(page.locator('#understood [data-field="date"]')).to_have_count(0)
    expect(page.locator('#understood [data-field="kind"]')).to_have_count(1)
    expect(_names(page)).not_to_have_count(1)  # every photo now: the filters that were removed are gone
    page.go_back()  # the address kept each state: Back brings the date chip again
    expect(page.locator('#understood [data-field="date"]')).to_have_count(1)
    assert page.problems == []


@pytest.mark.parametrize(
    ("locale", "accept"), [("en-US", "Search only the photos taken in London"), ("zh-CN", "只搜在London拍的")]
)
def test_an_offered_place_is_a_chip_to_accept(new_page, base, locale, accept):
    page = _open(new_page, base, locale, DESKTOP, "London bus")
    offered = page.locator("#understood .understood-offered")
    expect(offered).to_have_count(1)
    expect(offered).to_contain_text("London?")
    button = offered.locator(".understood-accept")
    expect(button).to_have_attribute("title", accept)
    _shot(page, f"understood-offered-{locale[:2]}.png")
    button.click()
    expect(page.locator("#query")).to_have_value("bus in London")
    expect(page.locator('#understood .understood-chip:not(.understood-offered)[data-field="place"]')).to_have_count(1)
    expect(_names(page)).to_have_text([LONDON_MOV])
    assert page.problems == []


def test_typed_and_read_exclusions_are_chips_too(new_page, base):
    page = _open(new_page, base, "zh-CN", PHONE, "没有人的照片 -cars")
    excluded = page.locator('#understood [data-field="exclude"]')
    expect(excluded).to_have_count(2)  # 没有人 read by the server, -cars sent by the box as exclude=
    expect(excluded.nth(0)).to_contain_text("人")
    expect(excluded.nth(1)).to_contain_text("cars")
    _shot(page, "understood-exclude-zh-phone.png")
    excluded.nth(1).locator(".understood-remove").click()
    expect(page.locator("#query")).to_have_value("没有人的照片")
    expect(excluded).to_have_count(1)
    excluded.nth(0).locator(".understood-remove").click()
    expect(page.locator("#query")).to_have_value("照片")
    expect(page.locator('#understood [data-field="kind"]')).to_have_count(1)
    assert page.problems == []

"""The text read in photos, in a real headless Chromium: the snippet on the card, the matched boxes drawn over the
photo in the large view, copying the recognised text, and the OCR pass in the status line, in English and Chinese.

Screenshots (desktop and phone, en and zh) go to $MS_OCR_SHOTS when it is set."""

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

SHOTS = os.environ.get("MS_OCR_SHOTS")
PHOTOS = ["ocr_ad_zh_en_numbers.jpg", "ocr_upside_down_exif3.jpg", "ocr_english_page.jpg", "webp_lossy_photo.webp"]


@pytest.fixture(scope="module")
def server(scanned_app, serve, tmp_path_factory):
    library = media_library(tmp_path_factory.mktemp("ocr-ui") / "library", PHOTOS)
    app = scanned_app(library, decode_threads=1)
    services_of(app).ocr.run()
    return serve(app, threads=4)


def open_page(new_page, server, *, locale="en-US", viewport=DESKTOP):
    page = new_page(viewport, locale)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/?match=all")  # every result: the tiny random model's scores do not stand out
    page.wait_for_function("() => document.querySelector('#status-text').textContent.length > 0")
    return page.context, page, errors


def search(page, text: str) -> None:
    page.fill("#query", text)
    page.press("#query", "Enter")
    expect(page.locator("#results-heading")).to_contain_text(text)
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name))


BOXES_INSIDE_THE_PICTURE = """() => {
  const img = document.querySelector('#viewer-image').getBoundingClientRect();
  const boxes = [...document.querySelectorAll('.ocr-box')].map((b) => b.getBoundingClientRect());
  const inside = (r) => r.width > 4 && r.height > 4 && r.left >= img.left - 1 && r.right <= img.right + 1
    && r.top >= img.top - 1 && r.bottom <= img.bottom + 1;
  return boxes.length > 0 && boxes.every(inside);
}"""


def test_the_card_shows_the_line_and_the_viewer_draws_its_box_and_copies_the_text(new_page, server):
    context, page, errors = open_page(new_page, server)
    try:
        expect(page.locator("#status-text")).to_contain_text("with text")
        search(page, "我是中国人")
        card = page.locator('#results .result[data-name="ocr_upside_down_exif3.jpg"]')
        expect(card.locator(".result-snippet")).to_have_text("我是中国人")
        assert page.locator("#results .result").first.get_attribute("data-name") == "ocr_upside_down_exif3.jpg"
        shot(page, "results-desktop-en.png")
        card.locator(".result-open").click()
        expect(page.locator(".ocr-box")).to_have_count(1)  # the one matched line, drawn over the upright photo
        page.wait_for_function("() => document.querySelector('#viewer-image').complete")
        assert page.wait_for_function(BOXES_INSIDE_THE_PICTURE).json_value()
        expect(page.locator(".ocr-lines")).to_have_text("我是中国人")
        shot(page, "viewer-desktop-en.png")
        page.click(".ocr-copy")
        expect(page.locator("#toast")).to_contain_text("copied")
        assert page.evaluate("navigator.clipboard.readText()") == "我是中国人"

        page.keyboard.press("ArrowRight")  # another photo: its own text, no stale boxes
        expect(page.locator("#viewer-title")).not_to_have_text("ocr_upside_down_exif3.jpg")
        page.keyboard.press("Escape")
        expect(page.locator(".ocr-box")).to_have_count(0)
        expect(page.locator(".ocr-text")).to_have_count(0)
        assert errors == []
    finally:
        context.close()


def test_english_words_and_chinese_strings_on_a_phone(new_page, server):
    context, page, errors = open_page(new_page, server, locale="zh-CN", viewport=PHONE)
    try:
        expect(page.locator("#status-text")).to_contain_text("张含文字")
        search(page, "MovieShots")
        card = page.locator('#results .result[data-name="ocr_english_page.jpg"]')
        expect(card.locator(".result-snippet")).to_contain_text("MovieShots")
        shot(page, "results-phone-zh.png")
        card.locator(".result-open").click()
        expect(page.locator(".ocr-text h3")).to_have_text("照片中的文字")
        expect(page.locator(".ocr-copy")).to_have_text("复制文字")
        expect(page.locator(".ocr-box")).to_have_count(2)  # the title and the sentence that name it
        page.wait_for_function("() => document.querySelector('#viewer-image').complete")
        assert page.wait_for_function(BOXES_INSIDE_THE_PICTURE).json_value()
        shot(page, "viewer-phone-zh.png")
        assert errors == []
    finally:
        context.close()


def test_more_screens_for_the_report(new_page, server):
    """Desktop zh and phone en views of the ad (many lines, one matched)."""
    for locale, viewport, suffix in (("zh-CN", DESKTOP, "desktop-zh"), ("en-US", PHONE, "phone-en")):
        context, page, errors = open_page(new_page, server, locale=locale, viewport=viewport)
        try:
            search(page, "正品促销")
            page.locator('#results .result[data-name="ocr_ad_zh_en_numbers.jpg"] .result-open').click()
            expect(page.locator(".ocr-box")).to_have_count(1)
            expect(page.locator(".ocr-lines")).to_contain_text("假一赔十")
            page.wait_for_function("() => document.querySelector('#viewer-image').complete")
            assert page.wait_for_function(BOXES_INSIDE_THE_PICTURE).json_value()
            shot(page, f"viewer-{suffix}.png")
            assert errors == []
        finally:
            context.close()

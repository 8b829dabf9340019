"""Defects from the walk-through of issue 23, in a real Chromium against the shared media: an item the address names
but the loaded page does not hold (#10), the viewer's words for one video and the last-scan tooltip in the page's
language (#14)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import PHONE, require_chromium

pytestmark = pytest.mark.browser
require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
PAGE_SIZE = 12


@pytest.fixture(scope="module")
def server(media_app, serve):
    app = media_app(page_size=PAGE_SIZE)
    client = app.test_client()
    items = []
    cursor = None
    while True:
        page = client.get("/api/items" + (f"?cursor={cursor}" if cursor else "")).get_json()
        items += page["items"] if "items" in page else page["results"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return {"url": serve(app), "items": items}


def shots() -> Path:
    path = Path(os.environ.get("MS_UI_SHOTS", "/tmp/ms-shots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("viewport, locale", [(None, "en-US"), (PHONE, "zh-CN")])
def test_an_item_beyond_the_loaded_page_opens_on_its_own(new_page, server, viewport, locale):
    far = server["items"][-1]  # the oldest: not among the first page of the timeline
    page = new_page(viewport or {"width": 1366, "height": 900}, locale=locale)
    page.goto(f"{server['url']}/?item={far['id']}")
    expect(page.locator("#viewer-title")).to_have_text(far["name"])
    expect(page.locator("#viewer-position")).to_be_hidden()  # no "0 of 40"
    expect(page.locator("#viewer-prev")).to_be_hidden()
    expect(page.locator("#viewer-next")).to_be_hidden()
    page.screenshot(path=str(shots() / f"item-far-{locale}.png"))
    assert page.problems == []


@pytest.mark.parametrize("locale, words", [("en-US", "is not in the library"), ("zh-CN", "不在图库中")])
def test_an_item_that_does_not_exist_says_so_and_leaves_the_address(new_page, server, locale, words):
    page = new_page(locale=locale)
    page.goto(f"{server['url']}/?item=999999")
    expect(page.locator("#toast")).to_contain_text(words)
    expect(page.locator("#viewer")).not_to_be_visible()
    expect(page).not_to_have_url(re.compile(r"item="))
    assert page.locator(".result, .timeline-group").count() > 0  # the page shows as without the item


@pytest.mark.parametrize("locale, kind, last_scan", [("en-US", "Video", "Last scan"), ("zh-CN", "视频", "上次扫描")])
def test_one_video_is_a_video_and_the_last_scan_tooltip_speaks_the_page_language(
    new_page, server, locale, kind, last_scan
):
    video = next(item for item in server["items"] if item["kind"] == "video")
    page = new_page(locale=locale)
    page.goto(f"{server['url']}/?item={video['id']}")
    expect(page.locator("#viewer-title")).to_have_text(video["name"])
    labels = page.locator("#viewer-details dt")
    expect(labels.first).to_be_visible()
    type_label = "Type" if locale == "en-US" else "类型"
    index = labels.all_inner_texts().index(type_label)
    assert page.locator("#viewer-details dd").nth(index).inner_text() == kind  # one video, not "Videos"
    page.keyboard.press("Escape")
    expect(page.locator("#scan-info")).to_contain_text(last_scan)
    tooltip = page.locator("#status-text").get_attribute("title")
    assert tooltip.startswith(last_scan) and tooltip == page.locator("#scan-info").inner_text(), tooltip


@pytest.mark.parametrize("locale, words", [("en-US", "The zip could not be made"), ("zh-CN", "无法生成压缩包")])
def test_a_refused_zip_download_comes_back_to_the_page_saying_so(new_page, server, locale, words):
    page = new_page(locale=locale)
    page.goto(f"{server['url']}/?download=refused")  # where the server sends a refused download form (#5)
    expect(page.locator("#toast")).to_contain_text(words)
    expect(page).not_to_have_url(re.compile(r"download="))
    assert page.problems == []

"""The tags in a real headless Chromium: the tag browser filters the results (tag= reaches the API), cards and
the viewer show their tags, and names follow the UI language. Screenshots go to MS_TAGS_SHOTS when it is set."""

from __future__ import annotations

import os

import pytest

from materialsearch.web import services_of
from tests.conftest import require_chromium
from tests.test_tags import make_tag_library

pytestmark = pytest.mark.browser

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = os.environ.get("MS_TAGS_SHOTS", "")


@pytest.fixture(scope="module")
def server(scanned_app, serve, tmp_path_factory, media_dir):
    app = scanned_app(make_tag_library(tmp_path_factory.mktemp("tags-ui") / "library", media_dir))
    services = services_of(app)
    services.tagger.refresh()
    tagged = services.tagger.tags_of(services.store.get_items(range(1, 100)))
    return {"url": serve(app, threads=8), "tagged": tagged, "labels": services.tagger.by_key}


def shot(page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=False)


@pytest.mark.parametrize(("locale", "viewport"), [("en-US", (1280, 900)), ("zh-CN", (390, 844))])
def test_a_tag_in_the_browser_filters_the_results(new_page, server, locale, viewport):
    page = new_page({"width": viewport[0], "height": viewport[1]}, locale)
    context = page.context
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/items" in r.url else None)
    try:
        page.goto(server["url"] + "/")
        key = next(iter(server["tagged"].values()))[0]
        label = server["labels"][key]
        name = label.zh if locale.startswith("zh") else label.en
        expected = {item for item, keys in server["tagged"].items() if key in keys}

        chip = page.locator(f'#tag-browser .tag-chip[data-tag="{key}"]')
        expect(chip).to_be_visible()
        expect(chip).to_contain_text(name)
        expect(chip.locator(".tag-count")).to_have_text(str(len(expected)))
        chip.click()
        expect(chip).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#query")).to_have_value("")  # no query: the timeline, narrowed to the tag
        cards = page.locator("#timeline-groups .result")
        expect(cards).to_have_count(len(expected))
        assert {int(i) for i in cards.evaluate_all("cards => cards.map(c => c.dataset.id)")} == expected
        assert any(f"tag={key}" in url for url in requests)
        expect(cards.first.locator(f'.result-tags .tag-chip[data-tag="{key}"]')).to_have_text(name)
        shot(page, f"tags-filtered-{locale}-{viewport[0]}")

        cards.first.locator(".result-open").click()
        viewer_chip = page.locator(f'#viewer .viewer-tags .tag-chip[data-tag="{key}"]')
        expect(viewer_chip).to_have_text(name)
        shot(page, f"tags-viewer-{locale}-{viewport[0]}")
        page.keyboard.press("Escape")

        chip.click()  # off again: the same words, every result
        expect(chip).to_have_attribute("aria-pressed", "false")
        expect(cards).not_to_have_count(len(expected))
        page.locator("#lang-toggle").click()
        other = label.en if locale.startswith("zh") else label.zh
        expect(chip).to_contain_text(other)
        assert not errors
    finally:
        context.close()

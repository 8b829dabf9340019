"""The rest of issue 23's walk-through, in a real Chromium against a real server (desktop 1366×900 and a 390×844 touch
phone, English and Chinese): a place or tag filter visible and kept by the address (#1), the timeline following a
scan (#2), the viewer's thumbnail and spinner while a large picture loads (#3), a phone's results near the top (#4),
the phone timeline's width and the scrubber beside the timeline only (#7, #8), the screen-sized rendition, zoom and
full screen (#9), scores explained where they help (#12), and the phone details (#15).

Screenshots go to $MS_UI_SHOTS (default /tmp/ms-shots)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import MEDIA, PHONE, media_library, require_chromium

pytestmark = pytest.mark.browser
require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

PAGE_SIZE = 12  # the shared media make several timeline pages
DESKTOP = {"width": 1366, "height": 900}
TOUCH = {"is_mobile": True, "has_touch": True}
LOCALES = {"en": "en-US", "zh": "zh-CN"}
BOTH = pytest.mark.parametrize("device, language", [("desktop", "en"), ("phone", "zh")])


@pytest.fixture(scope="module")
def server(media_app, serve):
    app = media_app(page_size=PAGE_SIZE)
    return {"url": serve(app, threads=8), "app": app}


@pytest.fixture
def open_page(new_page, server):
    """``open_page(device, language, path)``: a fresh page there, its status line drawn; no console errors after."""
    pages = []

    def build(device: str, language: str, path: str = "/", base: str | None = None):
        options = {"viewport": PHONE, **TOUCH} if device == "phone" else {"viewport": DESKTOP}
        page = new_page(locale=LOCALES[language], **options)
        pages.append(page)
        page.goto((base or server["url"]) + path)
        page.wait_for_function(
            "() => { const s = document.querySelector('#status-text'); return !s || s.textContent; }"
        )
        return page

    yield build
    for page in pages:
        assert page.problems == [], page.problems


def api(server, url: str):
    return server["app"].test_client().get(url).get_json()


def shoot(page, name: str) -> None:
    folder = Path(os.environ.get("MS_UI_SHOTS", "/tmp/ms-shots"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"walkthrough-{name}.png"))


def timeline_cards(page):
    return page.locator("#timeline-groups .result")


# --- #1: a place or a tag is shown, counted and kept by the address ---------------------------------------------
@BOTH
def test_a_picked_place_shows_in_the_title_badge_field_and_address_and_survives_a_reload(
    open_page, server, device, language
):
    country = next(c for c in api(server, "/api/places")["countries"] if c["code"] == "GB")
    name = country["name"] if language == "en" else country["name_zh"]
    page = open_page(device, language)
    expect(timeline_cards(page).first).to_be_visible()
    page.click("#places-button")
    pick = page.locator(".place-pick", has=page.locator(".place-name", has_text=re.compile(f"^{name}$")))
    if device == "phone":
        assert pick.bounding_box()["height"] >= 44  # a finger's target (#15)
    pick.click()
    for reloaded in (False, True):
        if reloaded:
            page.reload()
        expect(page.locator("#results-heading")).to_contain_text(name)  # not "All photos and videos"
        expect(page.locator("#filters-active")).to_have_text("1 active" if language == "en" else "1 项生效")
        expect(page).to_have_url(re.compile(r"[?&]place="))
        assert page.locator("#filter-place").input_value() == name  # the country's name, not "GB"
        expect(timeline_cards(page)).to_have_count(country["count"])
    if device == "phone":  # a link carrying a filter shows results, not the open filters panel (#4)
        assert page.locator("#filters").evaluate("details => !details.open")
        expect(timeline_cards(page).first).to_be_in_viewport()
    shoot(page, f"place-{device}-{language}")


@pytest.mark.parametrize("device, language", [("desktop", "zh"), ("phone", "en")])
def test_a_tag_in_the_address_narrows_the_timeline_says_so_and_resets(open_page, server, device, language):
    tag = api(server, "/api/tags")["tags"][0]
    tagged = api(server, f"/api/items?tag={tag['key']}&limit=200")["results"]
    page = open_page(device, language, f"/?tag={tag['key']}")
    tag_name = tag["en"] if language == "en" else tag["zh"]
    expect(page.locator("#results-heading")).to_contain_text(f"#{tag_name}")
    expect(page.locator("#filters-active")).to_be_visible()
    chip = page.locator(f'#tag-browser .tag-chip[data-tag="{tag["key"]}"]')  # the active tag, pressed
    expect(chip).to_have_attribute("aria-pressed", "true")
    if device == "phone":
        assert chip.bounding_box()["height"] >= 44  # was 25 px (#15)
    if tagged:
        expect(timeline_cards(page)).to_have_count(len(tagged))
    else:  # the filters leave nothing: said so, never "No matches, try other words" where nothing was searched
        nothing = "Nothing here matches these filters" if language == "en" else "没有符合这些筛选条件的照片"
        expect(page.locator("#message-title")).to_have_text(nothing)
    shoot(page, f"tag-{device}-{language}")
    page.click("#filters summary")
    page.click("#reset-filters")
    expect(page).not_to_have_url(re.compile("tag="))
    expect(page.locator("#results-heading")).to_have_text(
        "All photos and videos" if language == "en" else "全部照片和视频"
    )
    expect(page.locator("#filters-active")).to_be_hidden()


# --- #2: the timeline follows a scan ------------------------------------------------------------------------------
MESSAGES_SEEN = """() => {
  window.messagesSeen = [];
  const note = () => window.messagesSeen.push(document.querySelector('#message-title').textContent);
  new MutationObserver(note).observe(document.querySelector('#message'), {subtree: true, childList: true,
    characterData: true, attributes: true});
}"""


def test_the_timeline_shows_what_a_scan_adds_without_a_reload(open_page, scanned_app, serve, tmp_path_factory):
    library = tmp_path_factory.mktemp("walkthrough-scan") / "library"
    library.mkdir()
    base = serve(scanned_app(library))  # scanned while empty
    page = open_page("desktop", "en", "/", base=base)
    expect(page.locator("#message-title")).to_have_text("Nothing is indexed yet")
    expect(page.locator("#message-text")).to_contain_text("appear here as they are indexed")
    page.evaluate(MESSAGES_SEEN)
    names = ["jpg_orient1.jpg", "jpg_pixel7pro_progressive_gps.jpg", "webp_lossy_photo.webp", "avif_photo.avif"]
    for name in names:
        shutil.copy(MEDIA / name, library / name)
    page.click("#scan-button")
    expect(timeline_cards(page)).to_have_count(len(names), timeout=60_000)  # no reload
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    seen = page.evaluate("window.messagesSeen")
    assert not any("No matches" in text for text in seen), seen
    # Scrolled down, the timeline stays as it is (nothing moves under the finger) and offers the new items.
    page.set_viewport_size({"width": 390, "height": 420})
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    assert page.evaluate("scrollY") > 240
    more = ["tif_lzw_rgb.tif", "webp_lossless.webp"]
    for name in more:
        shutil.copy(MEDIA / name, library / name)
    expect(page.locator("#scan-button")).to_be_enabled(timeout=30_000)
    page.locator("#scan-button").dispatch_event("click")  # as a click would, without scrolling up to it
    offer = page.locator("#new-items")
    expect(offer).to_have_text("2 new — show", timeout=60_000)
    expect(timeline_cards(page)).to_have_count(len(names))
    offer.click()
    expect(timeline_cards(page)).to_have_count(len(names) + len(more))
    expect(offer).to_be_hidden()
    assert page.evaluate("scrollY") == 0


# --- #3 and #9: the viewer's picture -------------------------------------------------------------------------------
def open_in_viewer(page, name: str) -> None:
    page.fill("#query", name)  # a file name typed in the box finds the file
    page.press("#query", "Enter")
    card = page.locator(f'#results .result[data-name="{name}"] .result-open')
    card.first.click()
    expect(page.locator("#viewer-title")).to_have_text(name)


@BOTH
def test_a_large_photo_shows_its_thumbnail_and_a_spinner_then_a_screen_sized_rendition(
    open_page, server, device, language
):
    page = open_page(device, language)
    held = []
    page.route(re.compile(r"/preview\?"), lambda route: held.append(route))  # a 200 MP HEIC takes seconds
    open_in_viewer(page, "livephoto_iphone6s_train.jpg")
    image, stage = page.locator("#viewer-image"), page.locator("#viewer-stage")
    expect(image).to_have_attribute("src", re.compile(r"/thumbnail\?"))  # at once: never an empty dark stage
    expect(stage).to_have_class(re.compile(r"\bis-fetching\b"))
    expect(stage).to_have_attribute("aria-busy", "true")
    assert image.bounding_box()["width"] > 300  # the thumbnail as large as the picture will be
    shoot(page, f"viewer-loading-{device}-{language}")
    page.wait_for_timeout(200)
    assert held, "the rendition was asked for"
    for route in held:
        route.continue_()
    expect(image).to_have_attribute("src", re.compile(r"/preview\?v="))  # 2048 px, not the 3.3 MB original
    expect(stage).not_to_have_class(re.compile(r"\bis-fetching\b"))
    page.wait_for_function("() => document.querySelector('#viewer-image').naturalWidth === 2048")
    expect(page.locator("#viewer-original")).to_be_visible()  # a JPEG: the browser shows the original


def transform(page) -> str:
    return page.locator("#viewer-image").evaluate("img => img.style.transform")


def test_zoom_loads_the_original_and_full_screen_shows_the_picture_alone(open_page):
    page = open_page("desktop", "en")
    open_in_viewer(page, "livephoto_iphone6s_train.jpg")
    image = page.locator("#viewer-image")
    expect(image).to_have_attribute("src", re.compile(r"/preview\?v="))
    image.dblclick()
    expect(image).to_have_attribute("src", re.compile(r"/file$"))  # zoomed in: the original, 4032 px
    assert "scale(2.5)" in transform(page)
    page.keyboard.press("Escape")  # opened again, the picture shows whole
    page.locator("#results .result-open").first.click()
    expect(image).to_have_attribute("src", re.compile(r"/preview\?v="))
    assert transform(page) == ""
    image.hover()
    page.mouse.wheel(0, -400)  # the wheel zooms where the pointer is
    page.wait_for_function("() => document.querySelector('#viewer-image').style.transform.includes('scale')")
    page.click(".viewer-zoom")  # and the button zooms back out
    assert transform(page) == ""
    page.click(".viewer-full")
    page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.id === 'viewer-stage'")
    expect(page.locator(".viewer-full")).to_have_attribute("title", "Leave full screen")
    page.click(".viewer-full")
    page.wait_for_function("() => !document.fullscreenElement")


PINCH = """(stage) => {
  const box = stage.getBoundingClientRect();
  const x = box.x + box.width / 2, y = box.y + box.height / 2;
  const at = (id, dx) => ({bubbles: true, pointerType: 'touch', pointerId: id, isPrimary: id === 1,
    clientX: x + dx, clientY: y});
  stage.dispatchEvent(new PointerEvent('pointerdown', at(1, -20)));
  stage.dispatchEvent(new PointerEvent('pointerdown', at(2, 20)));
  for (const spread of [40, 70, 100]) {
    stage.dispatchEvent(new PointerEvent('pointermove', at(1, -spread)));
    stage.dispatchEvent(new PointerEvent('pointermove', at(2, spread)));
  }
  stage.dispatchEvent(new PointerEvent('pointerup', at(1, -100)));
  stage.dispatchEvent(new PointerEvent('pointerup', at(2, 100)));
}"""

DRAG = """(stage) => {
  const box = stage.getBoundingClientRect();
  const y = box.y + box.height / 2, x = box.x + box.width / 2;
  const at = (clientX) => ({bubbles: true, pointerType: 'touch', pointerId: 7, isPrimary: true, clientX, clientY: y});
  stage.dispatchEvent(new PointerEvent('pointerdown', at(x)));
  stage.dispatchEvent(new PointerEvent('pointermove', at(x - 100)));
  stage.dispatchEvent(new PointerEvent('pointerup', at(x - 200)));
}"""


TAP = """(stage) => {
  const image = document.querySelector('#viewer-image').getBoundingClientRect();
  const at = {bubbles: true, pointerType: 'touch', pointerId: 9, isPrimary: true,
    clientX: image.x + image.width / 2, clientY: image.y + image.height / 2};
  const target = document.elementFromPoint(at.clientX, at.clientY);
  target.dispatchEvent(new PointerEvent('pointerdown', at));
  target.dispatchEvent(new PointerEvent('pointerup', at));
}"""


def test_a_pinch_zooms_the_phone_viewer_and_a_drag_then_pans_instead_of_stepping(open_page):
    page = open_page("phone", "zh")
    open_in_viewer(page, "heic_iphone12pro_orient6_irot_gps.heic")
    expect(page.locator("#viewer-original")).to_be_hidden()  # HEIC: "open original" would only download it
    expect(page.locator("#viewer-image")).to_have_attribute("src", re.compile(r"/preview\?v="))
    stage = page.locator("#viewer-stage")
    stage.evaluate(PINCH)
    scale = float(re.search(r"scale\(([\d.]+)\)", transform(page)).group(1))
    assert 4 < scale <= 5.5, scale  # the fingers spread five times apart
    before = transform(page)
    stage.evaluate(DRAG)
    expect(page.locator("#viewer-title")).to_have_text("heic_iphone12pro_orient6_irot_gps.heic")  # no step
    assert transform(page) != before  # panned
    for _ in range(2):  # a double tap: back to the whole picture
        stage.evaluate(TAP)
    assert transform(page) == ""
    shoot(page, "viewer-zoomed-phone-zh")


# --- #12: scores only where they help -----------------------------------------------------------------------------
@BOTH
def test_scores_are_explained_in_the_viewer_and_absent_where_the_filters_answered(open_page, device, language):
    page = open_page(device, language, "/?q=train&match=all")
    cards = page.locator("#results .result")
    expect(cards.first).to_be_visible()
    assert page.locator("#results .result-score").count() == 0
    cards.first.locator(".result-open").click()
    explained = page.locator("#viewer-details dd.score-explained")
    expect(explained).to_contain_text("cosine similarity" if language == "en" else "余弦相似度")
    shoot(page, f"score-{device}-{language}")
    page.keyboard.press("Escape")
    page.fill("#query", "London")  # a place alone: the filters answer, newest first, and the score means nothing
    page.press("#query", "Enter")
    expect(page.locator("#understood")).to_be_visible()
    expect(cards.first).to_be_visible()
    cards.first.locator(".result-open").click()
    expect(page.locator("#viewer-title")).not_to_be_empty()
    expect(page.locator("#viewer-details dt").first).to_be_visible()
    assert page.locator("#viewer-details dd.score-explained").count() == 0


# --- #4, #7, #8: the layout ---------------------------------------------------------------------------------------
def test_phone_search_results_come_near_the_top_and_the_timeline_fills_the_width(open_page):
    page = open_page("phone", "en", "/?q=train&match=all")
    first = page.locator("#results .result").first
    expect(first).to_be_visible()
    assert first.bounding_box()["y"] < 450  # was ~600 of 844 (tags, status, scan button and last scan first)
    shoot(page, "search-phone-en")
    page.goto(page.url.split("?")[0])
    grid = page.locator("#timeline-groups .tl-grid").first
    expect(grid).to_be_visible()
    main = page.locator("#timeline").bounding_box()
    assert grid.bounding_box()["width"] >= main["width"] - 1  # no room kept for the scrubber (was 314 of 362)
    assert page.locator(".brand-name").evaluate("n => n.scrollWidth <= n.clientWidth")  # the name whole


def test_the_desktop_scrubber_stays_beside_the_timeline_never_over_the_status(open_page):
    page = open_page("desktop", "en")
    expect(timeline_cards(page).first).to_be_visible()
    page.click("#filters summary")  # the filters push the timeline down
    scrubber, timeline = page.locator("#scrubber"), page.locator("#timeline")
    page.wait_for_function(
        "() => Math.abs(document.querySelector('#scrubber').getBoundingClientRect().top"
        " - Math.max(12, document.querySelector('#timeline').getBoundingClientRect().top)) < 2"
    )
    scan = page.locator("#scan-button").bounding_box()
    box = scrubber.bounding_box()
    if box and scrubber.is_visible():
        assert box["y"] >= scan["y"] + scan["height"], (box, scan)  # "Scan now" and the count stay uncovered
    page.locator("#timeline").evaluate("e => e.scrollIntoView({block: 'start'})")
    expect(scrubber).not_to_have_class(re.compile(r"\bis-away\b"))
    assert scrubber.bounding_box()["y"] >= timeline.bounding_box()["y"] - 1 or timeline.bounding_box()["y"] < 12
    shoot(page, "scrubber-desktop-en")


# --- #15: the phone's details -------------------------------------------------------------------------------------
def test_back_from_a_similar_search_returns_to_the_timeline_where_it_was(open_page):
    page = open_page("desktop", "en")
    cards = timeline_cards(page)
    expect(cards.first).to_be_visible()
    for _ in range(3):  # a few pages down
        page.mouse.wheel(0, 1200)
        page.wait_for_timeout(300)
    expect(cards.nth(2 * PAGE_SIZE)).to_be_attached()
    loaded = cards.count()
    cards.nth(2 * PAGE_SIZE).locator(".result-open").click()
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    where = page.evaluate("scrollY")
    page.click("#viewer-similar")
    expect(page.locator("#results-heading")).to_contain_text("Similar to")  # the viewer's step back undid it once
    page.go_back()
    expect(page.locator("#results-heading")).to_have_text("All photos and videos")
    page.wait_for_function(f"() => Math.abs(scrollY - {where}) < 2")
    assert cards.count() == loaded  # the pages kept, not the first page again


def test_the_api_docs_and_the_hidden_items_are_linked_from_the_page(open_page, server):
    from materialsearch.web import services_of

    review = services_of(server["app"]).duplicate_review
    some = api(server, "/api/items?limit=1")["results"][0]["id"]
    review.hide([some])
    try:
        page = open_page("phone", "zh")
        link = page.locator("#hidden-link")
        expect(link).to_have_text("已隐藏 1 项")
        assert link.get_attribute("href") == "/duplicates"
        docs = page.locator("#api-docs-link")
        expect(docs).to_have_text("API")
        assert docs.bounding_box()["height"] >= 44
        docs.click()
        expect(page).to_have_url(re.compile(r"/api/docs$"))
    finally:
        review.restore([some])


def test_with_login_the_phone_header_keeps_the_name_whole(new_page, scanned_app, serve, tmp_path_factory):
    library = media_library(tmp_path_factory.mktemp("walkthrough-login") / "library", ["jpg_orient1.jpg"])
    base = serve(scanned_app(library, password="a long passphrase"))
    page = new_page(PHONE, locale="zh-CN", **TOUCH)
    page.goto(base + "/")
    page.fill("#password", "a long passphrase")
    page.click("#login-button")
    expect(page.locator("#logout-button")).to_be_visible()
    # Not "m.": the header settles once the status has drawn its buttons (at once alone, later under load).
    page.wait_for_function(
        "() => { const n = document.querySelector('.brand-name'); return n.scrollWidth <= n.clientWidth; }"
    )
    for selector in ["#logout-button", "#lang-toggle", "#places-button"]:
        assert page.locator(selector).bounding_box()["height"] >= 44
    shoot(page, "login-header-phone-zh")


TOO_SMALL = """() => [...document.querySelectorAll('button, a[href], select')].filter((node) => {
  const r = node.getBoundingClientRect();
  return r.width && r.height && getComputedStyle(node).visibility !== 'hidden' && (r.width < 44 || r.height < 44);
}).map((node) => `${node.tagName}#${node.id}.${node.className} ${Math.round(node.getBoundingClientRect().height)}`)"""


def test_the_duplicates_page_on_a_phone_has_44_px_targets(open_page, server):
    page = open_page("phone", "en", "/duplicates")
    expect(page.locator("#dups-summary")).not_to_be_empty()
    if api(server, "/api/duplicates")["groups"]:
        expect(page.locator(".dups-toggle").first).to_be_visible()
    assert page.evaluate(TOO_SMALL) == []  # the buttons were 30 px high
    shoot(page, "duplicates-phone-en")

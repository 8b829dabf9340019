"""Browsing in a real headless Chromium, desktop and a 390×844 phone, English and Chinese: the timeline (day groups,
month headings, infinite scroll, scrubber), selection and its zip download, the viewer's actions, the address as
the page's state (Back, Forward, reload), and the defects the browser review found (each test failed before).

One scan of the sample media (tiny random model) serves every test in this module.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import MEDIA, require_chromium

pytestmark = pytest.mark.browser

PAGE_SIZE = 6  # small, so the sample media make many timeline pages
SHOTS = Path(__file__).resolve().parents[2] / "shots" / "browse-ui"  # /work/wt/shots/browse-ui when it exists

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DEVICES = {"desktop": DESKTOP, "phone": PHONE}
# Each test that runs on both: desktop in English and the phone in Chinese (others mix them the other way).
BOTH = pytest.mark.parametrize("device,language", [("desktop", "en"), ("phone", "zh")])


@pytest.fixture(scope="module")
def server(media_app, serve):
    app = media_app(page_size=PAGE_SIZE)
    return {"url": serve(app, threads=8), "app": app}


@pytest.fixture
def open_page(new_page, server):
    """``open_page(device, language, path="/")``: a page in a fresh context, opened; no uncaught errors after."""
    contexts, problems = [], []

    def build(device: str = "desktop", language: str = "en", path: str = "/", **options):
        locale = "zh-CN" if language == "zh" else "en-US"
        page = new_page(locale=locale, **DEVICES[device], **options)
        contexts.append(page.context)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server["url"] + path)
        page.wait_for_function("() => document.querySelector('#status-text').textContent.length > 0")
        return page

    yield build
    for context in contexts:
        context.close()
    assert problems == [], f"uncaught JavaScript errors: {problems}"


def api(server, url: str):
    return server["app"].test_client().get(url).get_json()


def shoot(page, name: str) -> None:
    if SHOTS.parent.is_dir():
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def timeline_cards(page):
    return page.locator("#timeline-groups .result")


def search(page, text: str) -> None:
    page.fill("#query", text)
    page.press("#query", "Enter")
    expect(page.locator("#results-heading")).to_contain_text(text)
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


# --- the timeline -----------------------------------------------------------------------------------------------
@BOTH
def test_empty_query_shows_the_timeline_newest_first_by_day_and_month(open_page, server, device, language):
    page = open_page(device, language)
    expect(timeline_cards(page).first).to_be_visible()
    expect(page.locator("#message")).to_be_hidden()  # no "type something" page: the library itself
    expect(page.locator("#results-heading")).to_have_text(
        "All photos and videos" if language == "en" else "全部照片和视频"
    )
    first_page = api(server, f"/api/items?sort=date_desc&limit={PAGE_SIZE}")["results"]
    shown = [timeline_cards(page).nth(i).get_attribute("data-id") for i in range(len(first_page))]
    assert shown == [str(item["id"]) for item in first_page]
    days = page.locator(".tl-day").evaluate_all("(days) => days.map((d) => d.dataset.day)")
    dated = [day for day in days if day]
    assert dated == sorted(dated, reverse=True) and len(set(days)) == len(days), days
    months = page.locator(".tl-month").evaluate_all("(ms) => ms.map((m) => m.dataset.month)")
    assert months and all(day[:7] in months for day in dated)
    heading = page.locator(".tl-month-title").first.inner_text()
    year, month = first_page[0]["taken_at"][:4], int(first_page[0]["taken_at"][5:7])
    assert year in heading and (f"{month}月" in heading if language == "zh" else heading.split()[0].isalpha())
    expect(page.locator("#load-more")).to_be_hidden()  # no button: it loads as it scrolls
    shoot(page, f"timeline-{device}-{language}")


@BOTH
def test_scrolling_three_screens_loads_more_with_placeholders(open_page, device, language):
    page = open_page(device, language)
    expect(timeline_cards(page).first).to_be_visible()
    page.evaluate("""() => {
      const row = document.querySelector('#timeline-placeholder');
      new MutationObserver(() => {
        if (!row.hidden && row.querySelector('.placeholder')) window.sawPlaceholder = true;
      }).observe(row, { attributes: true, childList: true });
    }""")
    before = timeline_cards(page).count()
    cursors = []
    page.on("request", lambda r: cursors.append(r.url) if "/api/items?" in r.url and "cursor=" in r.url else None)
    height = page.viewport_size["height"]
    for _ in range(3):
        page.evaluate("(h) => window.scrollBy(0, h)", height)
        page.wait_for_timeout(600)
    expect(page.locator("#timeline-groups")).to_have_attribute("aria-busy", "false")
    assert timeline_cards(page).count() > before and cursors, "scrolling loaded no more"
    assert page.evaluate("window.sawPlaceholder === true"), "no placeholder row while the next page loaded"
    ids = timeline_cards(page).evaluate_all("(cards) => cards.map((c) => c.dataset.id)")
    assert len(ids) == len(set(ids))


def test_scrolling_reaches_the_end_of_the_library(open_page, server):
    page = open_page("desktop", "en")
    counts = api(server, "/api/status")["counts"]
    everything = counts["images"] + counts["videos"]
    deadline = time.monotonic() + 60  # a page a scroll; under load each page takes longer to arrive
    while timeline_cards(page).count() < everything and time.monotonic() < deadline:
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_timeout(300)
    expect(timeline_cards(page)).to_have_count(everything)


@BOTH
def test_the_scrubber_jumps_to_a_month(open_page, server, device, language):
    page = open_page(device, language)
    expect(timeline_cards(page).first).to_be_visible()
    everything = api(server, "/api/items?sort=date_asc&limit=200")["results"]
    oldest = everything[0]["taken_at"][:7]  # the oldest month: many pages down the timeline
    button = page.locator(f'#scrubber [data-month="{oldest}"]')
    if device == "phone":  # a phone's scrubber lists years only: each jumps to its newest month
        button = page.locator(f'#scrubber .scrub-year[data-month^="{oldest[:4]}-"]')
    # The scrubber docks once the timeline fills the upper half of the screen (as a person scrolls down to it);
    # how far down the timeline starts depends on the status lines above it, so scroll it to the top.
    page.locator("#timeline").evaluate("e => e.scrollIntoView({block: 'start'})")
    expect(page.locator("#scrubber")).not_to_have_class(re.compile(r"\bis-away\b"))
    for _ in range(20):  # the scrubber lists the months reached so far, and "Older…"
        if button.count() and button.first.is_visible():
            break
        older = page.locator("#scrubber .scrub-older")
        if older.count() == 0:  # everything is loaded: the button must be there now
            break
        older.click()
        page.wait_for_timeout(300)
    target = button.first.get_attribute("data-month")
    button.first.click()
    heading = page.locator(f'.tl-month[data-month="{target}"] .tl-month-title')
    expect(heading).to_be_in_viewport()
    shoot(page, f"scrubber-{device}-{language}")


def test_filters_apply_to_the_timeline_and_the_folder_picker_lists_folders(open_page, server):
    page = open_page("desktop", "en")
    expect(timeline_cards(page).first).to_be_visible()
    page.click("#filters summary")
    expect(page.locator("#filter-folder option")).not_to_have_count(1)  # "All folders" and the library's
    with page.expect_response(lambda r: "/api/items?" in r.url and "kind=video" in r.url):
        page.select_option("#filter-kind", "video")
    expect(page.locator('#timeline-groups .result[data-kind="image"]')).to_have_count(0)
    videos = api(server, "/api/status")["counts"]["videos"]
    expect(timeline_cards(page)).to_have_count(videos)
    assert "kind=video" in page.url


# --- selection --------------------------------------------------------------------------------------------------
def _zip_digests(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return sorted(hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist())


def _file_digests(server, ids) -> list[str]:
    paths = [api(server, f"/api/items/{i}")["path"] for i in ids]
    return sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths)


@BOTH
def test_selecting_three_items_downloads_a_zip_of_exactly_those_originals(open_page, server, device, language):
    page = open_page(device, language)
    cards = timeline_cards(page)
    expect(cards.nth(3)).to_be_visible()
    if device == "desktop":
        cards.nth(0).locator(".result-check").click()
        cards.nth(2).locator(".result-open").click(modifiers=["Shift"])  # 0, 1 and 2
    else:
        for i in range(3):  # a phone has no shift key: long-press the first, then tap the others
            if i == 0:
                long_press(page, cards.nth(0))
            else:
                cards.nth(i).locator(".result-open").tap()
    expect(page.locator("#selection-bar")).to_be_visible()
    expect(page.locator("#selection-count")).to_have_text("3 selected" if language == "en" else "已选 3 项")
    expect(page.locator("#viewer")).not_to_have_attribute("open", "")
    ids = [cards.nth(i).get_attribute("data-id") for i in range(3)]
    shoot(page, f"selection-{device}-{language}")
    with page.expect_download() as download:
        page.click("#selection-download")
    data = Path(download.value.path()).read_bytes()
    assert _zip_digests(data) == _file_digests(server, ids)
    page.click("#selection-clear")
    expect(page.locator("#selection-bar")).to_be_hidden()


def long_press(page, card) -> None:
    """A touch held on `card` (pointer events, as a finger makes them), then released."""
    card.evaluate("""(card) => {
      const box = card.getBoundingClientRect();
      const at = { bubbles: true, pointerType: "touch", isPrimary: true, clientX: box.x + 20, clientY: box.y + 20 };
      card.querySelector(".result-open").dispatchEvent(new PointerEvent("pointerdown", at));
      return new Promise((done) => setTimeout(() => {
        card.querySelector(".result-open").dispatchEvent(new PointerEvent("pointerup", at));
        card.querySelector(".result-open").click();
        done();
      }, 700));
    }""")


def test_copy_paths_of_the_selection(open_page, server):
    page = open_page("desktop", "en")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    cards = timeline_cards(page)
    expect(cards.nth(1)).to_be_visible()
    cards.nth(0).locator(".result-check").click()
    cards.nth(1).locator(".result-open").click(modifiers=["Control"])
    ids = [cards.nth(i).get_attribute("data-id") for i in range(2)]
    page.click("#selection-copy")
    expect(page.locator("#toast")).to_have_text("Copied 2 paths.")
    copied = page.evaluate("navigator.clipboard.readText()").split("\n")
    assert copied == [api(server, f"/api/items/{i}")["path"] for i in ids]


# --- the viewer -------------------------------------------------------------------------------------------------
def test_viewer_downloads_copies_and_shows_camera_information(open_page, server):
    page = open_page("desktop", "zh", "/?q=car&name=nikon&match=all")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    card = page.locator('#results .result[data-name="jpeg_nikon_d5000_gps.jpeg"]')
    card.locator(".result-open").click()
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    info = api(server, f"/api/items/{card.get_attribute('data-id')}").get("info") or {}
    details = page.locator("#viewer-details")
    expect(details).to_contain_text("尺寸")
    expect(details).to_contain_text("相机")
    expect(details).to_contain_text("GPS")
    gps = page.locator("#viewer-details .info-gps").inner_text()
    assert re.fullmatch(r"-?\d+\.\d{6}, -?\d+\.\d{6}.*", gps), gps
    assert info, "the API gave no camera information"
    with page.expect_download() as download:
        page.click("#viewer-download")
    assert download.value.suggested_filename == "jpeg_nikon_d5000_gps.jpeg"
    assert Path(download.value.path()).read_bytes() == (MEDIA / "jpeg_nikon_d5000_gps.jpeg").read_bytes()
    page.click("#viewer-copy")
    expect(page.locator("#toast")).to_have_text("已复制路径。")
    assert page.evaluate("navigator.clipboard.readText()").endswith("jpeg_nikon_d5000_gps.jpeg")
    shoot(page, "viewer-desktop-zh")


def test_phone_viewer_keeps_its_buttons_on_screen_swipes_and_arrows_beside_the_picture(open_page):
    page = open_page("phone", "en", "/?q=sunset&kind=image&match=all")
    page.locator("#results .result .result-open").first.click()
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    page.wait_for_function("() => document.querySelector('#viewer-image').complete")
    height = page.viewport_size["height"]
    for selector in ["#viewer-download", "#viewer-copy", "#viewer-close", "#viewer-prev", "#viewer-next"]:
        box = page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)
    image = page.locator("#viewer-image").bounding_box()
    for selector in ["#viewer-prev", "#viewer-next"]:
        arrow = page.locator(selector).bounding_box()
        overlaps = (
            arrow["x"] < image["x"] + image["width"]
            and image["x"] < arrow["x"] + arrow["width"]
            and (arrow["y"] < image["y"] + image["height"] and image["y"] < arrow["y"] + arrow["height"])
        )
        assert not overlaps, f"{selector} lies over the picture"
    shoot(page, "viewer-phone-en")
    first = page.locator("#viewer-title").inner_text()
    swipe(page, -200)
    expect(page.locator("#viewer-title")).not_to_have_text(first)
    swipe(page, 200)
    expect(page.locator("#viewer-title")).to_have_text(first)


def swipe(page, dx: int) -> None:
    page.locator("#viewer-stage").evaluate(
        """(stage, dx) => {
          const box = stage.getBoundingClientRect();
          const y = box.y + box.height / 2;
          const x = box.x + box.width / 2 - dx / 2;
          const at = (clientX) => ({ bubbles: true, pointerType: "touch", isPrimary: true, clientX, clientY: y });
          stage.dispatchEvent(new PointerEvent("pointerdown", at(x)));
          stage.dispatchEvent(new PointerEvent("pointermove", at(x + dx / 2)));
          stage.dispatchEvent(new PointerEvent("pointerup", at(x + dx)));
        }""",
        dx,
    )


VIDEO = """() => {
  const v = document.querySelector('#viewer-video');
  return {t: v.currentTime, paused: v.paused, muted: v.muted, src: v.getAttribute('src')};
}"""


def test_a_video_moment_autoplays_muted_and_stops_at_its_end(open_page):
    page = open_page("desktop", "en", "/?q=bear&kind=video&name=webm_vp9&match=all")
    card = page.locator('#results .result[data-name="webm_vp9_noaudio.webm"]').first
    badge = card.locator(".result-moment").inner_text()
    start, end = (float(x.split(":")[1]) for x in re.findall(r"\d+:\d\d(?:\.\d)?", badge))
    assert end > start, f"the moment's times read {badge!r}"  # not "0:02–0:02"
    card.locator(".result-open").click()
    page.wait_for_function("() => !document.querySelector('#viewer-video').paused")
    assert page.evaluate(VIDEO)["muted"]
    page.wait_for_function("() => document.querySelector('#viewer-video').paused", timeout=15_000)
    state = page.evaluate(VIDEO)
    assert end - 0.3 <= state["t"] <= end + 0.3, (state, badge)


# --- the address is the state -----------------------------------------------------------------------------------
@BOTH
def test_back_forward_and_reload_keep_query_filters_open_item_and_moment_time(open_page, device, language):
    page = open_page(device, language, "/?match=all")  # every result: the tiny model's scores do not stand out
    expect(timeline_cards(page).first).to_be_visible()
    search(page, "train")
    page.click("#filters summary")
    page.select_option("#filter-kind", "image")
    expect(page).to_have_url(re.compile(r"q=train.*kind=image|kind=image.*q=train"))
    expect(page.locator('#results .result[data-kind="video"]')).to_have_count(0)
    first = page.locator("#results .result").first
    item_id, name = first.get_attribute("data-id"), first.get_attribute("data-name")
    first.locator(".result-open").click()
    expect(page).to_have_url(re.compile(rf"item={item_id}"))

    page.reload()  # reload restores the search, its filters, and the open item
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    expect(page.locator("#viewer-title")).to_have_text(name)
    expect(page.locator("#query")).to_have_value("train")
    expect(page.locator("#filter-kind")).to_have_value("image")

    page.goto(page.url.split("?")[0] + "?match=all")  # a fresh history: timeline → search → viewer
    expect(timeline_cards(page).first).to_be_visible()
    search(page, "train")
    page.locator("#results .result .result-open").first.click()
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    page.go_back()  # Back closes the viewer …
    expect(page.locator("#viewer")).not_to_have_attribute("open", "")
    expect(page.locator("#results-heading")).to_contain_text("train")
    page.go_back()  # … then returns to the previous page of results: the timeline
    expect(timeline_cards(page).first).to_be_visible()
    expect(page.locator("#query")).to_have_value("")
    page.go_forward()
    expect(page.locator("#results-heading")).to_contain_text("train")
    expect(page.locator("#query")).to_have_value("train")


def test_a_video_moment_and_its_time_survive_a_reload(open_page):
    page = open_page("desktop", "en", "/?q=bear&kind=video&name=webm_vp9&match=all")
    card = page.locator('#results .result[data-name="webm_vp9_noaudio.webm"]').first
    card.locator(".result-open").click()
    page.wait_for_function(
        "() => document.querySelector('#viewer-video').paused && "
        "document.querySelector('#viewer-video').currentTime > 0",
        timeout=15_000,
    )
    played = page.evaluate(VIDEO)["t"]
    expect(page).to_have_url(re.compile(r"[?&]t=\d"))
    kept = float(re.search(r"[?&]t=([\d.]+)", page.url).group(1))
    assert abs(kept - played) < 0.2, (kept, played)
    page.reload()
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    expect(page.locator("#viewer-title")).to_have_text("webm_vp9_noaudio.webm")
    page.wait_for_function("() => document.querySelector('#viewer-video').readyState >= 1")
    page.wait_for_function(f"() => Math.abs(document.querySelector('#viewer-video').currentTime - {kept}) < 0.3")


# --- sort, good matches, exclusions, names ----------------------------------------------------------------------
def test_sort_match_exclude_and_name_controls(open_page, server):
    page = open_page("desktop", "en")
    expect(timeline_cards(page).first).to_be_visible()
    with page.expect_request(lambda r: "/api/search?" in r.url and "match=good" in r.url) as asked:
        search(page, 'sunset -car -"red text"')
    sent = asked.value.url
    assert "q=sunset" in sent and "exclude=car" in sent and "exclude=red+text" in sent, sent
    note = page.locator("#match-note")
    more = api(server, "/api/search?q=sunset&exclude=car&exclude=red+text&match=good&limit=1").get("more")
    if more:  # the server's estimate of what "all" adds
        expect(note).to_have_text(f"Good matches only · {more} more")
        with page.expect_request(lambda r: "match=all" in r.url and "limit=1&" not in r.url):
            page.click("#match-toggle")
        expect(page).to_have_url(re.compile("match=all"))
    with page.expect_request(lambda r: "sort=date_desc" in r.url):
        page.select_option("#sort", "date_desc")
    expect(page).to_have_url(re.compile("sort=date_desc"))

    page.fill("#query", "")  # a file name alone is a search
    page.click("#filters summary")
    with page.expect_request(lambda r: "/api/search?" in r.url and "name=orient" in r.url and "q=" not in r.url):
        page.fill("#filter-name", "orient")
        page.press("#filter-name", "Enter")
    expect(page.locator("#results-heading")).to_have_text("Files named “orient”")
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")  # the heading is set before the answer
    expect(page.locator("#results .result").first).to_have_attribute("data-name", re.compile("orient"))
    names = page.locator("#results .result").evaluate_all("(cards) => cards.map((c) => c.dataset.name)")
    assert names and all("orient" in n for n in names)


# --- defects the browser review found ---------------------------------------------------------------------------
def test_phone_video_cards_show_their_whole_date_and_no_score(open_page):
    page = open_page("phone", "en", "/?q=bear&kind=video&match=all")
    cards = page.locator('#results .result[data-kind="video"]')
    expect(cards.first).to_be_visible()
    for i in range(min(cards.count(), 4)):
        assert cards.nth(i).locator(".result-score").count() == 0  # raw cosines on cards read as noise (#12)
        date = cards.nth(i).locator(".result-date")  # never cut by the Similar button ("Apr 28, 20…", #8)
        assert date.evaluate("d => d.scrollWidth <= d.clientWidth"), f"card {i}: {date.inner_text()} is cut"
    shoot(page, "video-badges-phone-en")


def test_touch_targets_on_a_phone_are_at_least_44_px(open_page):
    page = open_page("phone", "zh", "/?q=train&match=all")
    expect(page.locator("#results .result").first).to_be_visible()
    page.click("#filters summary")
    small = page.evaluate("""() => [...document.querySelectorAll(
        'button, a[href], input:not([type=hidden]), select, summary')].filter((node) => {
          const r = node.getBoundingClientRect();
          const style = getComputedStyle(node);
          if (!r.width || !r.height || style.visibility === 'hidden' || style.opacity === '0') return false;
          if (node.closest('dialog:not([open])') || node.classList.contains('skip-link')) return false;
          return r.width < 44 || r.height < 44;
        }).map((node) => `${node.tagName}#${node.id}.${node.className} ${node.getBoundingClientRect().width}x` +
                         `${node.getBoundingClientRect().height}`)""")
    assert small == [], small
    shoot(page, "search-phone-zh")


def test_scores_never_read_minus_zero_and_moment_times_keep_tenths(open_page):
    page = open_page("desktop", "en")
    formatted = page.evaluate("""async () => {
        const f = await import('/static/js/format.js');
        return [f.formatScore(-0.0001), f.formatScore(-0.0004), f.formatScore(0.25), f.formatScore(-0.2),
                f.formatSpan(2.0, 2.5), f.formatSpan(2.04, 2.96), f.formatSpan(0, 3)];
    }""")
    assert formatted == ["0.000", "0.000", "0.250", "-0.200", "0:02.0–0:02.5", "0:02.0–0:03.0", "0:00–0:03"]


def test_server_errors_are_translated_by_their_code_in_chinese(open_page):
    page = open_page("desktop", "zh")
    expect(timeline_cards(page).first).to_be_visible()
    page.route(
        "**/api/search?*",
        lambda route: route.fulfill(
            status=404,
            content_type="application/json",
            body=json.dumps(
                {"error": "Not Found", "code": "not_found", "message": "item 9 does not exist", "status": 404}
            ),
        ),
    )
    search(page, "火车")
    expect(page.locator("#message-text")).to_have_text("找不到了（已删除、移动或未索引）。")
    page.unroute_all()
    page.route(
        "**/api/search?*",
        lambda route: route.fulfill(  # a code this page does not know: the server's words
            status=400,
            content_type="application/json",
            body=json.dumps({"error": "Bad Request", "code": "brand_new", "message": "something new", "status": 400}),
        ),
    )
    search(page, "猫")
    expect(page.locator("#message-text")).to_have_text("something new")


def test_problem_files_and_scan_warnings_are_translated_by_their_code(open_page, server):
    page = open_page("desktop", "zh")
    real = api(server, "/api/errors?limit=100")
    rows = [
        {**row, "error_code": "image_too_large"} if "bomb" in (row.get("reason") or "") else row
        for row in real["errors"]
    ]
    page.route(
        "**/api/errors?*",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps({**real, "errors": rows})
        ),
    )
    page.click("#errors-button")
    expect(page.locator("#errors-list")).to_contain_text("图片像素过多")
    page.keyboard.press("Escape")
    status = api(server, "/api/status")
    warning = {"code": "folder_unlistable", "message": "/x: cannot list folder", "path": "/x", "kept": 3}
    status["scan"]["last"] = {**status["scan"]["last"], "warnings": [warning]}
    page.route(
        "**/api/status",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(status)),
    )
    page.reload()
    expect(page.locator("#scan-info")).to_contain_text("警告：有个文件夹无法读取")
    assert "cannot list folder" not in page.locator("#scan-info").inner_text()


def test_filter_values_are_checked_before_sending_in_the_pages_words(open_page):
    page = open_page("desktop", "en", "/?q=photo&match=all")
    expect(page.locator("#results .result").first).to_be_visible()
    page.click("#filters summary")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/api/search" in r.url else None)
    page.fill("#filter-min-score", "5")
    page.press("#filter-min-score", "Enter")
    expect(page.locator("#filter-problem")).to_have_text("The minimum score must be a number from -1 to 1.")
    expect(page.locator("#message")).to_have_attribute("data-kind", "error")
    assert "min_score" not in page.locator("#message").inner_text()
    page.fill("#filter-min-score", "")
    page.fill("#filter-date-from", "2024-05-01")
    page.fill("#filter-date-to", "2024-04-01")
    page.locator("#filter-date-to").dispatch_event("change")
    expect(page.locator("#filter-problem")).to_contain_text("after")
    invalid = [
        url for url in sent if "min_score=5" in url or ("date_from=2024-05-01" in url and "date_to=2024-04" in url)
    ]
    assert invalid == [], f"sent although invalid: {invalid}"
    page.fill("#filter-date-from", "")
    page.locator("#filter-date-from").dispatch_event("change")
    expect(page.locator("#filter-problem")).to_be_hidden()
    expect(page.locator("#results .result").first).to_be_visible()


def test_a_heic_query_picture_is_shown_in_the_chip(open_page):
    page = open_page("desktop", "en")
    page.set_input_files("#image-input", str(MEDIA / "heic_iphoneXS_2images.heic"))
    expect(page.locator("#query-chip")).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#query-chip-image'); return i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator("#query-chip")).not_to_have_class(re.compile("chip-broken"))


def test_a_paused_scan_does_not_say_scanning(open_page, server):
    status = api(server, "/api/status")
    progress = {
        "phase": "embedding",
        "done": 120,
        "total": 480,
        "found": 480,
        "rate": 0,
        "eta_s": None,
        "current": "",
        "errors": 0,
        "started_at": "2024-01-01T03:00:00",
        "trigger": "scheduled",
    }
    paused = {
        **status,
        "scan": {**status["scan"], "state": "paused", "progress": progress, "paused_reason": "paused by user"},
    }
    for language, scanning in [("en", "Scanning"), ("zh", "正在扫描")]:
        page = open_page("desktop", language)
        page.route(
            "**/api/status",
            lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(paused)),
        )
        page.reload()
        text = page.locator("#status-text")
        expect(text).to_contain_text("120 / 480")
        assert scanning not in text.inner_text(), text.inner_text()
        expect(text).to_contain_text("Paused: paused by you" if language == "en" else "已暂停：由你暂停")


def test_the_pages_have_a_favicon(open_page, server):
    page = open_page("desktop", "en")
    for path in ["/", "/login", "/api/docs"]:
        page.goto(server["url"] + path)
        icons = page.locator('link[rel="icon"]')
        types = {}
        for i in range(icons.count()):  # the SVG, and a PNG for what cannot show SVG (issue 23)
            href = icons.nth(i).get_attribute("href")
            assert href.startswith("/static/"), href  # same-origin, so the strict CSP lets it load
            icon = page.request.get(server["url"] + href)
            assert icon.status == 200, href
            types[icons.nth(i).get_attribute("type")] = icon.headers["content-type"].split(";")[0]
        assert types == {"image/svg+xml": "image/svg+xml", "image/png": "image/png"}


# --- stacks -----------------------------------------------------------------------------------------------------
COPIES = 20


@pytest.fixture(scope="module")
def copies_server(scanned_app, serve, tmp_path_factory, media_dir):
    """A library of 20 byte-identical copies of one photo beside two other photos."""
    import shutil

    library = tmp_path_factory.mktemp("copies") / "library"
    library.mkdir()
    for i in range(COPIES):
        shutil.copy2(media_dir / "jpg_orient1.jpg", library / f"copy_{i:02}.jpg")
    for name in ["webp_lossy_photo.webp", "png_rgba_transparent.png"]:
        shutil.copy2(media_dir / name, library / name)
    return serve(scanned_app(library))


def test_twenty_copies_show_as_one_stack_card_that_opens_the_stack(new_page, copies_server):
    page = new_page(locale="en-US", **DESKTOP)
    context = page.context
    try:
        page.goto(f"{copies_server}/?q=photo&match=all")
        cards = page.locator("#results .result")
        expect(cards).to_have_count(3)  # one card for the twenty copies
        stacked = page.locator("#results .result:has(.result-stack)")
        expect(stacked).to_have_count(1)
        expect(stacked.locator(".result-stack")).to_have_text(f"×{COPIES}")
        shoot(page, "stack-desktop-en")
        stacked.locator(".result-stack").click()
        expect(page.locator("#results .result")).to_have_count(COPIES)
        expect(page).to_have_url(re.compile(r"stack=\d+"))
        names = page.locator("#results .result").evaluate_all("(cards) => cards.map((c) => c.dataset.name)")
        assert sorted(names) == [f"copy_{i:02}.jpg" for i in range(COPIES)]
        page.go_back()
        expect(page.locator("#results .result")).to_have_count(3)
    finally:
        context.close()

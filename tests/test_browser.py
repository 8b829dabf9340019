"""The search page in a real headless Chromium, against a real server on the real sample media.

One scan (tiny random model) serves every test in this module; each test gets a fresh browser context.
Set MS_UI_SCREENSHOT=/some/file.png to keep a screenshot of a results page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import DESKTOP, MEDIA, require_chromium

pytestmark = pytest.mark.browser

PAGE_SIZE = 12  # smaller than the library, so "Load more" has something to load

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

# Every image on the page must be loaded (complete) and have decoded pixels; returns the names that failed.
VISIBLE_IMAGES_LOADED = """(selector) => {
  const imgs = [...document.querySelectorAll(selector)].filter((img) => {
    const r = img.getBoundingClientRect();
    return r.width > 0 && r.bottom > 0 && r.top < window.innerHeight;
  });
  if (!imgs.length || !imgs.every((img) => img.complete)) return null;
  return imgs.filter((img) => img.naturalWidth === 0).map((img) => img.alt);
}"""


@pytest.fixture(scope="module")
def server(media_app, serve):
    """A waitress server on a free port, serving an app whose library (the sample media) is scanned."""
    app = media_app(page_size=PAGE_SIZE)
    status = app.test_client().get("/api/status").get_json()
    return {"url": serve(app, threads=8), "app": app, "status": status}


VIEWPORT = DESKTOP


class Page:
    """A browser page, with the console errors and uncaught exceptions it produced."""

    def __init__(self, context, base_url: str):
        self.page = context.new_page()
        self.page.set_default_timeout(10_000)
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def open(self, path: str = "/"):
        self.page.goto(self.base_url + path)
        self.page.wait_for_function("() => document.querySelector('#status-text').textContent.length > 0")
        return self.page


@pytest.fixture(scope="module")
def english_context(browser):
    """One English context for the tests that never switch language (new contexts are slow to make)."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    yield context
    context.close()


@pytest.fixture
def make_page(browser, english_context, server):
    """Pages in the shared English context, or (given a locale) in a fresh context of their own."""
    pages: list[Page] = []
    contexts = []

    def build(locale: str | None = None) -> Page:
        context = english_context
        if locale:
            context = browser.new_context(viewport=VIEWPORT, locale=locale)
            contexts.append(context)
        page = Page(context, server["url"])
        pages.append(page)
        return page

    yield build
    for page in pages:
        page.page.close()
    for context in contexts:
        context.close()
    for page in pages:
        assert page.page_errors == [], f"uncaught JavaScript errors: {page.page_errors}"


@pytest.fixture
def ui(make_page):
    """An English page, opened showing every result (match=all: the tiny random model's scores do not stand out,
    and these tests count results; "good matches only" is tested in test_browser_browse.py)."""
    page = make_page()
    page.open("/?match=all")
    return page


def search(page, text: str) -> None:
    page.fill("#query", text)
    page.press("#query", "Enter")
    expect(page.locator("#results-heading")).to_contain_text(text)
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


def result_names(page) -> list[str]:
    return page.locator("#results .result .result-name").all_inner_texts()


def assert_images_loaded(page, selector: str = "#results img.result-thumb") -> None:
    broken = page.wait_for_function(VISIBLE_IMAGES_LOADED, arg=selector).json_value()
    assert broken == [], f"images that did not load: {broken}"


def test_page_loads_with_status_and_no_console_errors(ui, server):
    page = ui.page
    indexed = server["status"]["counts"]["images"]
    assert indexed > 20
    expect(page.locator("#status-text")).to_contain_text(f"{indexed} images indexed")
    problems = server["status"]["counts"]["errors"] + server["status"]["counts"]["skipped"]
    expect(page.locator("#errors-button")).to_have_text(f"{problems} not indexed")
    expect(page.locator("#timeline-groups .result").first).to_be_visible()  # no query: the timeline
    expect(page.locator("#footer-text")).to_contain_text("tiny.pt")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert ui.console_errors == []


def test_every_module_is_served_as_javascript_and_runs(make_page):
    """The page is ES modules (static/js/, no build step): each one is fetched, as JavaScript, and nothing else."""
    ui = make_page("en-US")  # a fresh context: nothing cached, so every module is a response
    served: dict[str, tuple[int, str]] = {}

    def record(response):
        if "/static/js/" in response.url:
            name = response.url.split("/static/js/", 1)[1].split("?", 1)[0]
            served[name] = (response.status, response.headers.get("content-type", ""))

    ui.page.on("response", record)
    ui.open()
    modules = {path.name for path in (Path(__file__).resolve().parents[1] / "static" / "js").glob("*.js")}
    assert set(served) == modules
    assert all(status == 200 and kind.startswith("text/javascript") for status, kind in served.values()), served
    expect(ui.page.locator("#search-button")).to_have_text("Search")  # main.js ran: the strings are filled in
    assert ui.console_errors == []


def test_text_queries_render_cards_with_loaded_thumbnails(ui):
    page = ui.page
    for text in ["火车", "a red car parked on the street"]:
        search(page, text)
        cards = page.locator("#results .result")
        expect(cards).to_have_count(PAGE_SIZE)
        first = cards.first
        assert first.get_attribute("data-id").isdigit()
        assert first.locator("img").get_attribute("loading") == "lazy"
        assert first.locator("img").get_attribute("alt")
        assert first.locator(".result-score").count() == 0  # a card carries no score: the viewer explains it
        expect(first.locator(".result-date")).not_to_be_empty()
        expect(page.locator("#results-count")).to_contain_text(f"{PAGE_SIZE} of ")
        assert_images_loaded(page)
    assert "q=" in page.url  # the query is kept in the address, so a reload repeats it
    if os.environ.get("MS_UI_SCREENSHOT"):
        page.screenshot(path=os.environ["MS_UI_SCREENSHOT"])
    assert ui.console_errors == []


def test_image_upload_finds_the_same_file_first(ui):
    page = ui.page
    page.set_input_files("#image-input", str(MEDIA / "jpg_orient1.jpg"))
    expect(page.locator("#query-chip")).to_be_visible()
    expect(page.locator("#query-chip-label")).to_have_text("jpg_orient1.jpg")
    expect(page.locator("#results-heading")).to_have_text("Results for your picture")
    expect(page.locator("#results .result .result-name").first).to_have_text("jpg_orient1.jpg")
    page.locator("#results .result .result-open").first.click()  # the viewer says the score, and what it means
    score = page.locator("#viewer-details dd.score-explained")
    expect(score).to_contain_text("cosine similarity")
    assert float(score.inner_text().split(" ")[0]) > 0.99
    page.keyboard.press("Escape")
    assert_images_loaded(page)

    # Words refine the picture: both travel in one POST.
    page.evaluate("""() => {
        const original = window.fetch;
        window.fetch = (url, options) => {
          if (options && options.body instanceof FormData) window.sentForm = Object.fromEntries(options.body);
          return original(url, options);
        };
    }""")  # Playwright does not expose multipart bodies holding files, so look at the form as it is sent
    page.fill("#query", "waterfall")
    with page.expect_response(lambda r: r.url.endswith("/api/search") and r.request.method == "POST"):
        page.click("#search-button")
    sent = page.evaluate("({q: window.sentForm.q, image: window.sentForm.image.name, limit: window.sentForm.limit})")
    assert sent == {"q": "waterfall", "image": "jpg_orient1.jpg", "limit": str(PAGE_SIZE)}
    expect(page.locator("#results-heading")).to_contain_text("waterfall")

    page.click("#clear-image")
    expect(page.locator("#query-chip")).to_be_hidden()
    expect(page.locator("#results-heading")).to_have_text("Results for “waterfall”")


def test_drop_and_paste_an_image(ui):
    page = ui.page
    url = _file_url(ui, "webp_lossy_photo.webp")
    for event in ["drop", "paste"]:
        page.evaluate(
            """async ([event, url]) => {
                const blob = await (await fetch(url)).blob();
                const transfer = new DataTransfer();
                transfer.items.add(new File([blob], "dropped.webp", { type: "image/webp" }));
                const init = { bubbles: true, cancelable: true };
                const e = event === "drop"
                  ? new DragEvent("drop", { ...init, dataTransfer: transfer })
                  : new ClipboardEvent("paste", { ...init, clipboardData: transfer });
                document.body.dispatchEvent(e);
            }""",
            [event, url],
        )
        expect(page.locator("#query-chip-label")).to_have_text("dropped.webp")
        expect(page.locator("#results .result .result-name").first).to_have_text("webp_lossy_photo.webp")
        page.click("#clear-image")


def _file_url(ui, name: str) -> str:
    """The /api/items/ID/file address of a library file, found through the API."""
    page = ui.page
    return page.evaluate(
        """async (name) => {
            for (let offset = 0; ; offset += 50) {
              const r = await (await fetch(`/api/search?q=photo&limit=50&offset=${offset}`)).json();
              const hit = r.results.find((item) => item.name === name);
              if (hit) return hit.file_url;
              if (!r.results.length) throw new Error(`${name} is not indexed`);
            }
        }""",
        name,
    )


def test_language_toggle_switches_and_is_remembered(make_page):
    page = make_page("en-US").open()
    expect(page.locator("#search-button")).to_have_text("Search")
    expect(page.locator("#lang-toggle")).to_have_text("中文")
    page.click("#lang-toggle")
    expect(page.locator("#search-button")).to_have_text("搜索")
    expect(page.locator("#scan-button")).to_have_text("立即扫描")
    expect(page.locator("#status-text")).to_contain_text("已索引")
    expect(page.locator("#lang-toggle")).to_have_text("English")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.get_attribute("#query", "placeholder").startswith("描述")
    page.reload()
    expect(page.locator("#search-button")).to_have_text("搜索")  # remembered in localStorage
    page.click("#lang-toggle")
    expect(page.locator("#search-button")).to_have_text("Search")
    expect(page.locator("#status-text")).to_contain_text("images indexed")

    chinese = make_page("zh-CN").open()  # a Chinese browser starts in Chinese
    expect(chinese.locator("#search-button")).to_have_text("搜索")
    expect(chinese.locator("#results-heading")).to_have_text("全部照片和视频")


def test_load_more_appends_until_everything_is_shown(ui, server):
    page = ui.page
    search(page, "风景")
    client = server["app"].test_client()
    total = client.get("/api/search?q=风景&limit=1").get_json()["total"]  # as the page asks: copies stacked
    unstacked = client.get("/api/search?q=风景&limit=1&stack=false").get_json()["total"]
    assert unstacked >= server["status"]["counts"]["images"] + server["status"]["counts"]["videos"] and total > 0
    cards = page.locator("#results .result")
    expect(cards).to_have_count(PAGE_SIZE)
    first_ids = [cards.nth(i).get_attribute("data-key") for i in range(PAGE_SIZE)]
    shown = PAGE_SIZE
    while shown < total:
        # Clicking scrolls the button into view, and scrolling near it loads the next page by itself (results.js):
        # under load that page may arrive before the click lands, and the click then loads one more. So a click
        # appends one page or two, never a partial one, and the count always says what is shown.
        with page.expect_request(lambda r, offset=shown: f"offset={offset}" in r.url):
            page.click("#load-more")
        expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
        now = cards.count()
        assert now in {min(shown + PAGE_SIZE, total), min(shown + 2 * PAGE_SIZE, total)}, (shown, now, total)
        shown = now
        expect(page.locator("#results-count")).to_contain_text(f"{shown} of {total}")
    expect(page.locator("#load-more")).to_be_hidden()
    ids = [cards.nth(i).get_attribute("data-key") for i in range(total)]  # a video may give several moments
    assert ids[:PAGE_SIZE] == first_ids and len(set(ids)) == total


def test_scrolling_near_the_end_loads_the_next_page(ui, server):
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one page of cards is taller than the screen
    search(page, "风景")
    total = server["app"].test_client().get("/api/search?q=风景&limit=1").get_json()["total"]
    assert total > PAGE_SIZE
    cards = page.locator("#results .result")
    expect(cards).to_have_count(PAGE_SIZE)  # the first page alone: nothing more is asked before a scroll
    page.mouse.move(195, 400)
    with page.expect_request(lambda r: f"offset={PAGE_SIZE}" in r.url and "q=" in r.url):
        page.mouse.wheel(0, 4000)
    expect(cards).to_have_count(min(2 * PAGE_SIZE, total))
    expect(page.locator("#results-count")).to_contain_text(f"{min(2 * PAGE_SIZE, total)} of {total}")


def test_similar_issues_a_like_query(ui):
    page = ui.page
    search(page, "train")
    first = page.locator("#results .result").first
    item_id, name = first.get_attribute("data-id"), first.get_attribute("data-name")
    with page.expect_response(lambda r: f"like={item_id}" in r.url and r.status == 200):
        first.locator(".result-similar").click()
    expect(page.locator("#results-heading")).to_have_text(f"Similar to {name}")
    expect(page.locator("#query-chip-label")).to_have_text(f"Similar to {name}")
    expect(page.locator("#results .result")).to_have_count(PAGE_SIZE)
    assert page.locator(f'#results .result[data-id="{item_id}"]').count() == 0
    assert f"like={item_id}" in page.url


def test_large_view_shows_the_image_and_navigates(ui):
    page = ui.page
    search(page, "sunset")
    page.click("#filters summary")
    page.select_option("#filter-kind", "image")
    expect(page.locator('#results .result[data-kind="video"]')).to_have_count(0)
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
    cards = page.locator("#results .result")
    names = [cards.nth(i).get_attribute("data-name") for i in range(3)]
    cards.first.locator(".result-open").click()
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("open", "")
    expect(page.locator("#viewer-title")).to_have_text(names[0])
    assert_images_loaded(page, "#viewer-image")
    expect(page.locator("#viewer-details")).to_contain_text("/shared/media/")
    assert page.get_attribute("#viewer-original", "href").endswith("/file")

    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer-title")).to_have_text(names[1])
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#viewer-title")).to_have_text(names[0])
    page.keyboard.press("Escape")
    expect(viewer).not_to_have_attribute("open", "")

    # HEIC cannot be shown by browsers: the large view gets the server's JPEG rendition.
    heic = page.locator('#results .result[data-name$=".heic"]').first
    heic.locator(".result-open").click()
    expect(page.locator("#viewer-image")).to_have_attribute("src", re.compile(r"/preview\?v="))
    assert_images_loaded(page, "#viewer-image")
    page.mouse.click(200, 12)  # beside the picture: closes
    expect(viewer).not_to_have_attribute("open", "")
    assert ui.console_errors == []


def test_filters_and_error_messages(ui):
    page = ui.page
    search(page, "photo")
    page.click("#filters summary")
    page.fill("#filter-path", "orient")
    page.press("#filter-path", "Enter")
    expect(page.locator("#filters-active")).to_have_text("1 active")
    matching = sum("orient" in path for path in os.listdir(MEDIA) if not path.startswith("bad_"))
    shown = min(matching, PAGE_SIZE)  # the first page; more come with scrolling
    expect(page.locator("#results-count")).to_have_text(re.compile(rf"^{shown} of {matching} "))
    assert all("orient" in name for name in result_names(page))

    page.select_option("#filter-kind", "video")  # no video's path contains "orient"
    expect(page.locator("#message-title")).to_have_text("No matches")

    page.fill("#filter-min-score", "5")  # checked before sending: said in the page's words, not the API's names
    page.press("#filter-min-score", "Enter")
    expect(page.locator("#message")).to_have_attribute("data-kind", "error")
    expect(page.locator("#message-text")).to_have_text("The minimum score must be a number from -1 to 1.")

    page.click("#reset-filters")
    expect(page.locator("#filters-active")).to_be_hidden()
    expect(page.locator("#results .result")).to_have_count(PAGE_SIZE)


def test_errors_panel_and_scan_button(ui, server):
    page = ui.page
    page.click("#errors-button")
    expect(page.locator("#errors-panel")).to_have_attribute("open", "")
    rows = page.locator("#errors-list .error-row")
    expect(rows).to_have_count(server["status"]["counts"]["errors"] + server["status"]["counts"]["skipped"])
    expect(page.locator("#errors-list")).to_contain_text("decompression bomb")
    expect(page.locator("#errors-list")).to_contain_text("bad_jpg_zero_bytes.jpg")
    page.keyboard.press("Escape")
    expect(page.locator("#errors-panel")).not_to_have_attribute("open", "")

    # A real scan: nothing changed on disk, so it finishes quickly and says so.
    page.click("#scan-button")
    expect(page.locator("#toast")).to_contain_text("Scan")
    expect(page.locator("#toast")).to_contain_text("Scan finished", timeout=15_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "idle")

    # 409 from the server is explained, not shown as a failure.
    page.route(
        "**/api/scan",
        lambda route: route.fulfill(
            status=409,
            content_type="application/json",
            body='{"error": "Conflict", "message": "a scan is already running", "status": 409}',
        ),
    )
    page.click("#scan-button")
    expect(page.locator("#toast")).to_have_text("A scan is already running — its progress is shown above.")


VIDEO_STATE = """() => {
  const v = document.querySelector('#viewer-video');
  return {src: v.getAttribute('src'), time: v.currentTime, ready: v.readyState, error: v.error && v.error.code,
          hidden: v.hidden};
}"""


def test_video_moments_play_in_place_from_their_start(ui):
    page = ui.page
    search(page, "bear")
    page.click("#filters summary")
    page.select_option("#filter-kind", "video")
    expect(page.locator('#results .result[data-kind="image"]')).to_have_count(0)
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
    expect(page.locator(".result-moment").first).to_have_text(re.compile(r"^Video \d+:\d\d(\.\d)?–\d+:\d\d(\.\d)?$"))
    assert_images_loaded(page)  # the moments' frame thumbnails

    # A VP9 WebM plays as it is, from the moment's start.
    webm = page.locator('#results .result[data-name="webm_vp9_noaudio.webm"]').first
    webm.locator(".result-open").click()
    expect(page.locator("#viewer")).to_have_attribute("open", "")
    page.wait_for_function("() => document.querySelector('#viewer-video').readyState >= 1")
    state = page.evaluate(VIDEO_STATE)
    assert state["error"] is None and not state["hidden"] and state["src"].endswith("/file")
    expect(page.locator("#viewer-details")).to_contain_text("Moment")
    clip = page.locator("#viewer-clip")
    expect(clip).to_be_visible()
    assert "/clip?start=" in clip.get_attribute("href")
    page.keyboard.press("Escape")

    # MPEG-4 AVI does not play in browsers: the moment's clip plays while an H.264 version is made.
    avi = page.locator('#results .result[data-name="avi_mpeg4_mp3.avi"]').first
    avi.locator(".result-open").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('#viewer-video'); return v.readyState >= 1 && !v.error; }"
    )
    assert "/clip?" in page.evaluate(VIDEO_STATE)["src"] or "/stream" in page.evaluate(VIDEO_STATE)["src"]
    page.keyboard.press("Escape")
    assert ui.console_errors == []


def test_live_photo_shows_once_with_its_motion(ui):
    page = ui.page
    search(page, "train")
    page.click("#filters summary")
    page.fill("#filter-path", "livephoto_iphone6s")  # matches both halves of the pair
    page.press("#filter-path", "Enter")
    expect(page.locator("#results-count")).to_have_text(re.compile(r"^1 of 1 "))  # one item, not two
    live = page.locator('#results .result[data-name="livephoto_iphone6s_train.jpg"]')
    expect(live).to_have_count(1)
    expect(live.locator(".result-live")).to_have_text("LIVE")
    live.locator(".result-open").hover()
    page.wait_for_function(
        "() => { const v = document.querySelector('.result-motion'); return v && v.readyState >= 2 && !v.error; }"
    )
    live.locator(".result-open").click()
    expect(page.locator("#viewer-live")).to_be_visible()
    page.click("#viewer-live")
    page.wait_for_function("() => document.querySelector('#viewer-video').readyState >= 1")
    state = page.evaluate(VIDEO_STATE)
    assert "/motion" in state["src"] and state["error"] is None and not state["hidden"]
    page.keyboard.press("Escape")
    assert ui.console_errors == []


def test_scan_panel_shows_progress_rate_eta_and_controls(make_page, server):
    """A scan in progress shows its bar, rate and time left, and Pause / Cancel; paused, it says why and offers
    Resume. The scan states are served by a route (the API itself is tested in test_control.py)."""
    import json

    real = server["app"].test_client().get("/api/status").get_json()
    progress = {
        "phase": "embedding",
        "done": 120,
        "total": 480,
        "found": 480,
        "rate": 12.5,
        "eta_s": 29,
        "current": "/photos/2024/IMG_0001.jpg",
        "errors": 0,
        "started_at": "2024-01-01T03:00:00",
        "trigger": "scheduled",
    }
    scan = {**real["scan"], "progress": progress, "next_run": "2030-01-02T03:00:00+00:00"}
    states = {
        "scanning": {**real, "scan": {**scan, "state": "scanning", "paused_reason": None}},
        "paused": {**real, "scan": {**scan, "state": "paused", "paused_reason": "outside scan window 22:30-07:00"}},
    }
    current = ["scanning"]
    posted: list[str] = []

    def status_route(route):
        route.fulfill(status=200, content_type="application/json", body=json.dumps(states[current[0]]))

    def control_route(route):
        posted.append(route.request.url.rsplit("/", 1)[1])
        route.fulfill(status=200, content_type="application/json", body=json.dumps(states[current[0]]["scan"]))

    ui = make_page()
    page = ui.page
    page.route("**/api/status", status_route)
    page.route("**/api/scan/*", control_route)
    ui.open()
    expect(page.locator("#status")).to_have_attribute("data-state", "scanning")
    expect(page.locator("#status-text")).to_contain_text("Scanning: indexing 120 / 480")
    expect(page.locator("#scan-eta")).to_have_text("12.5/s · about 29 s left")
    expect(page.locator("#scan-progress")).to_be_visible()
    assert page.locator("#scan-progress").evaluate("(el) => [el.value, el.max]") == [120, 480]
    expect(page.locator("#pause-button")).to_be_visible()
    expect(page.locator("#cancel-button")).to_be_visible()
    expect(page.locator("#resume-button")).to_be_hidden()
    expect(page.locator("#scan-button")).to_be_hidden()
    expect(page.locator("#scan-info")).to_contain_text("Last scan")
    expect(page.locator("#scan-info")).to_contain_text("next scan")

    current[0] = "paused"
    page.click("#pause-button")
    expect(page.locator("#toast")).to_have_text("Scan paused after the current batch.")
    expect(page.locator("#status")).to_have_attribute("data-state", "paused")
    expect(page.locator("#status-text")).to_contain_text("Paused: outside the scan window 22:30-07:00")
    expect(page.locator("#scan-eta")).to_be_hidden()
    expect(page.locator("#resume-button")).to_be_visible()
    expect(page.locator("#pause-button")).to_be_hidden()

    current[0] = "scanning"
    page.click("#resume-button")
    expect(page.locator("#toast")).to_have_text("Scan resumed.")
    expect(page.locator("#pause-button")).to_be_visible()
    page.click("#cancel-button")
    expect(page.locator("#toast")).to_contain_text("Scan stopping after the current batch")
    assert posted == ["pause", "resume", "cancel"]
    assert ui.console_errors == []

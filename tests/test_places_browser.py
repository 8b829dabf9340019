"""The places view in a real headless Chromium: the list in both languages, picking a place filters the search,
the viewer shows the place, and the map's Content-Security-Policy both ways (no tile host until one is set; then
exactly that one, served here by a local tile server).

Set MS_PLACES_SHOTS=/some/folder to keep screenshots (desktop and phone, English and Chinese, with the map).
"""

from __future__ import annotations

import http.server
import io
import os
import threading

import pytest

from tests.conftest import DESKTOP, PHONE, media_library, require_chromium, served, settings_on
from tests.test_places import GPS_FILES

pytestmark = pytest.mark.browser

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = os.environ.get("MS_PLACES_SHOTS")
# Collects every CSP violation the page meets, from before its first script runs.
RECORD_VIOLATIONS = """window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.blockedURI));"""


class TileServer(http.server.ThreadingHTTPServer):
    """Answers every path with one 256 px PNG and counts the requests (a stand-in for a real tile server)."""

    def __init__(self):
        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", (256, 256), (205, 225, 240)).save(out, "PNG")
        self.tile, self.requests = out.getvalue(), 0
        super().__init__(("127.0.0.1", 0), _TileHandler)


class _TileHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.server.tile)))
        self.end_headers()
        self.wfile.write(self.server.tile)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tiles():
    server = TileServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def apps(scanned_app, tiny_model, tiles, tmp_path_factory, media_dir):
    """The scanned places library served twice: without a tile URL, and (read-only, same data) with one."""
    from materialsearch.web import create_app, services_of

    library = media_library(tmp_path_factory.mktemp("places-ui") / "library", [*GPS_FILES, "jpg_orient1.jpg"])
    plain = scanned_app(library, decode_threads=1)
    tile_url = f"http://127.0.0.1:{tiles.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    data_dir = services_of(plain).settings.data_dir
    mapped = create_app(settings_on(data_dir, tiny_model, library=str(library), map_tile_url=tile_url))
    with served(plain) as one, served(mapped) as two:
        yield {
            "plain": f"http://127.0.0.1:{one.effective_port}",
            "mapped": f"http://127.0.0.1:{two.effective_port}",
        }
    services_of(mapped).close()


def _page(new_page, url, locale="en-US", viewport=DESKTOP):
    page = new_page(viewport, locale)
    errors = page.problems  # its uncaught exceptions and console errors
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(url)
    page.wait_for_function("() => document.querySelector('#status-text').textContent.length > 0")
    return page.context, page, errors


def _shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name))


LANGUAGES = [("en-US", "United Kingdom", "Mongolia"), ("zh-CN", "英国", "蒙古")]


@pytest.mark.parametrize(("locale", "uk", "mongolia"), LANGUAGES)
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_places_view_lists_places_and_picking_one_filters_the_search(
    new_page, apps, tiles, locale, uk, mongolia, viewport
):
    before = tiles.requests
    context, page, errors = _page(new_page, apps["plain"], locale, viewport)
    page.click("#places-button")
    panel = page.locator("#places-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".place-country")).to_have_count(3)
    expect(panel.locator(".place-country > .place-pick", has_text=mongolia)).to_have_count(1)
    expect(page.locator("#places-map")).to_be_hidden()  # no tile URL: no map, Leaflet never loaded
    assert page.evaluate("typeof window.L") == "undefined"
    size = "phone" if viewport is PHONE else "desktop"
    _shot(page, f"places-{locale[:2]}-{size}.png")
    panel.locator(".place-country > .place-pick", has_text=uk).click()
    expect(page.locator("#filter-place")).to_have_value(uk)  # the country's name, never its code "GB"
    expect(page.locator("#results-heading")).to_contain_text(uk)
    cards = page.locator("#timeline-groups .result")  # nothing asked: the timeline, narrowed to the place
    expect(cards).to_have_count(1)
    expect(cards.locator(".result-name")).to_have_text("MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV")
    cards.locator(".result-open").first.click()
    expect(page.locator("#viewer-details")).to_contain_text("伦敦" if locale == "zh-CN" else "London, England")
    _shot(page, f"viewer-place-{locale[:2]}-{size}.png")
    assert errors == [] and page.evaluate("window.cspViolations") == []
    assert tiles.requests == before
    context.close()


def test_without_a_tile_url_the_csp_blocks_any_tile_host(new_page, apps, tiles):
    context, page, _ = _page(new_page, apps["plain"])
    host = f"http://127.0.0.1:{tiles.server_address[1]}"
    before = tiles.requests
    loaded = page.evaluate(
        """(url) => new Promise((done) => {
             const img = new Image();
             img.onload = () => done(true);
             img.onerror = () => done(false);
             img.src = url;
           })""",
        f"{host}/1/0/0.png",
    )
    assert loaded is False and page.evaluate("window.cspViolations") == [f"{host}/1/0/0.png"]
    assert tiles.requests == before
    context.close()


def test_with_a_tile_url_the_map_loads_tiles_from_exactly_that_host(new_page, apps, tiles):
    context, page, errors = _page(new_page, apps["mapped"])
    before = tiles.requests
    page.click("#places-button")
    expect(page.locator("#places-map")).to_be_visible()
    expect(page.locator("#places-map .place-marker")).to_have_count(3)
    page.wait_for_function("() => document.querySelectorAll('#places-map img.leaflet-tile-loaded').length > 0")
    assert tiles.requests > before
    _shot(page, "places-map-en-desktop.png")
    assert errors == [] and page.evaluate("window.cspViolations") == []
    blocked = page.evaluate(
        """() => new Promise((done) => {
             const img = new Image();
             img.onload = () => done(false);
             img.onerror = () => done(true);
             img.src = "http://localhost:9/0/0/0.png";
           })"""
    )
    assert blocked and page.evaluate("window.cspViolations") == ["http://localhost:9/0/0/0.png"]
    context.close()

"""Login in a real headless Chromium: the page sends you to the login form, you log in, search, see thumbnails
(loaded by <img> with the session cookie), and an expired session sends you back to the login form."""

from __future__ import annotations

import pytest

from tests.conftest import media_library
from tests.test_browser import VISIBLE_IMAGES_LOADED

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

PASSWORD = "a long passphrase"


@pytest.fixture(scope="module")
def server(scanned_app, serve, tmp_path_factory, media_dir):
    """A waitress server with a password set, over a small scanned library."""
    names = ["jpg_orient1.jpg", "jpg_orient6.jpg", "png_rgba_transparent.png", "heic_iphoneXS_2images.heic"]
    library = media_library(tmp_path_factory.mktemp("browser-auth") / "library", names)
    return serve(scanned_app(library, password=PASSWORD))


# ``page`` (conftest): a fresh English desktop page; ``page.problems`` holds its console errors and uncaught ones.
def test_log_in_search_and_get_sent_back_when_the_session_ends(page, server):
    page.goto(f"{server}/?q=train&match=all")  # every result: the tiny model's scores do not stand out
    expect(page).to_have_url(f"{server}/login?next=/?q%3Dtrain%26match%3Dall")
    page.fill("#password", "not it")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_contain_text("Wrong password")

    page.fill("#password", PASSWORD)
    page.click("#login-button")
    expect(page).to_have_url(f"{server}/?q=train&match=all")  # back where we wanted to go, and the search ran
    expect(page.locator("#results .result")).to_have_count(4)
    broken = page.wait_for_function(VISIBLE_IMAGES_LOADED, arg="#results img.result-thumb").json_value()
    assert broken == [], f"thumbnails that did not load with the session cookie: {broken}"

    # A state-changing call from the page carries its CSRF token.
    page.click("#scan-button")
    expect(page.locator("#toast")).to_contain_text("Scan")

    # Let the scan end first: while it runs the page polls the status every 2 s, and that poll (not the search
    # below) would be the call that meets the expired session.
    expect(page.locator("#toast")).to_contain_text("Scan finished", timeout=30_000)
    page.reload()  # a fresh page: its next status poll is 15 s away
    expect(page.locator("#results .result")).to_have_count(4)

    # The session ends (cookie gone): the next API call sends the browser to the login page.
    page.context.clear_cookies()
    page.fill("#query", "sunset")
    page.press("#query", "Enter")
    expect(page).to_have_url(f"{server}/login?next=%2F%3Fq%3Dsunset%26match%3Dall")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    expect(page.locator("#results .result")).to_have_count(4)

    page.click("#logout-button")
    expect(page).to_have_url(f"{server}/login")
    page.goto(f"{server}/")
    expect(page).to_have_url(f"{server}/login?next=/")
    # No CSP violation or script error on any of these pages.
    csp = [p for p in page.problems if "Content Security Policy" in p or "Refused to" in p]
    assert csp == [] and not [p for p in page.problems if "401" not in p], page.problems

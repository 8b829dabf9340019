"""The installable app (materialsearch/web/install.py): the manifest, icons and /favicon.ico, the service worker
and its cache, the offline page and the share target; Chromium says the page is installable."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, MEDIA, PHONE, require_chromium

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "share me"
PICTURE = MEDIA / "jpg_orient1.jpg"


def share(client, path: Path = PICTURE, field: str = "image"):
    return client.post(
        "/share", data={field: (io.BytesIO(path.read_bytes()), path.name)}, content_type="multipart/form-data"
    )


# --- manifest and icons -------------------------------------------------------------------------------------------
def test_manifest_names_icons_display_and_share_target(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    assert response.headers["Vary"] == "Accept-Language"
    manifest = response.get_json()
    assert manifest["name"] == "materialsearch" and manifest["lang"] == "en"
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    sizes = {}
    for icon in manifest["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.mimetype == "image/png", icon
        with Image.open(io.BytesIO(image.data)) as picture:
            assert f"{picture.width}x{picture.height}" == icon["sizes"]
            if icon["purpose"] == "maskable":  # full bleed: no transparent corner a launcher's mask would show
                assert picture.convert("RGBA").getpixel((0, 0))[3] == 255
        sizes.setdefault(icon["purpose"], set()).add(icon["sizes"])
    assert sizes == {"any": {"192x192", "512x512"}, "maskable": {"512x512"}}
    target = manifest["share_target"]
    assert target["action"] == "/share" and target["method"] == "POST"
    assert target["enctype"] == "multipart/form-data"
    assert target["params"]["files"] == [{"name": "image", "accept": ["image/*"]}]

    chinese = client.get("/manifest.webmanifest", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).get_json()
    assert chinese["lang"] == "zh-CN" and "照片" in chinese["name"] and "照片" in chinese["short_name"]
    assert chinese["icons"] == manifest["icons"] and chinese["share_target"] == target


def test_pages_link_the_manifest_icons_and_theme_colours(client):
    for url in ["/", "/duplicates", "/api/docs"]:
        html = client.get(url).get_data(as_text=True)
        assert '<link rel="manifest" href="/manifest.webmanifest">' in html, url
        assert re.search(r'<link rel="apple-touch-icon" href="/static/icons/apple-touch-icon.png\?v=', html), url
        themes = re.findall(r'<meta name="theme-color" media="\(prefers-color-scheme: (\w+)\)" content="(#\w+)">', html)
        assert [scheme for scheme, _ in themes] == ["light", "dark"] and themes[0][1] != themes[1][1], url


def test_icons_are_what_the_script_draws_and_favicon_ico_is_served(client):
    from materialsearch.web import icons

    for name, data in icons.icons().items():
        assert (REPO / "static" / name).read_bytes() == data, (
            f"static/{name} is stale: run python -m materialsearch.web.icons"
        )
    with Image.open(REPO / "static" / "icons" / "apple-touch-icon.png") as apple:
        assert apple.size == (180, 180) and apple.mode == "RGB"  # iOS shows no transparency
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    with Image.open(io.BytesIO(response.data)) as ico:
        assert ico.format == "ICO" and (32, 32) in ico.info["sizes"]


# --- the service worker and the offline page ---------------------------------------------------------------------
def test_service_worker_is_served_from_the_root_uncached_and_versioned_by_the_assets(client):
    from materialsearch.web.install import asset_version

    response = client.get("/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    script = response.get_data(as_text=True)
    version = asset_version()
    assert f'const CACHE = "materialsearch-shell-{version}";' in script
    assert re.fullmatch(r"\d+\.\d+\.\d+-[0-9a-f]{12}", version)
    shell = re.search(r"const SHELL = (\[.*\]);", script).group(1)
    assert '"/offline"' in shell and f"/static/app.css?v={version}" in shell and "/api/" not in shell
    # Every page asks for its files by that same version, so a changed file is a new URL and a new cache.
    assert f"/static/js/main.js?v={version}" in client.get("/").get_data(as_text=True)


def test_offline_page_says_the_nas_is_unreachable_in_both_languages(client):
    response = client.get("/offline")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The NAS cannot be reached" in html and "无法连接到 NAS" in html
    assert "<script" not in html and "style=" not in html  # the CSP forbids inline script and style


def test_unknown_pages_answer_a_page_in_both_languages(client):
    response = client.get("/no-such-page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "This page does not exist" in html and "此页面不存在" in html
    api = client.get("/api/no-such-thing")
    assert api.status_code == 404 and api.get_json()["status"] == 404  # the API still answers JSON


# --- the share target -------------------------------------------------------------------------------------------
def test_share_target_opens_a_search_by_the_shared_picture(client):
    response = share(client)
    assert response.status_code == 303
    token = re.fullmatch(r"/\?shared=([\w-]+)", response.headers["Location"]).group(1)
    held = client.get(f"/share?token={token}")
    assert held.status_code == 200 and held.data == PICTURE.read_bytes()
    assert held.headers["X-Filename"] == PICTURE.name and held.headers["Cache-Control"] == "no-store"
    assert held.mimetype == "application/octet-stream"  # never rendered by the browser as what it claims to be
    # What the page then asks: a search by that picture, which finds the picture itself first.
    found = client.post(
        "/api/search", data={"image": (io.BytesIO(held.data), PICTURE.name)}, content_type="multipart/form-data"
    )
    assert found.status_code == 200 and found.get_json()["results"][0]["name"] == PICTURE.name
    assert client.get("/share?token=not-a-token").status_code == 404


def test_share_without_a_picture_says_so(client):
    for response in [client.post("/share", data={}), client.post("/share", data={"image": (io.BytesIO(b""), "x.jpg")})]:
        assert response.status_code == 400
        assert "share a photo to materialsearch" in response.get_data(as_text=True)


def test_shared_pictures_are_bounded_and_expire():
    from materialsearch.web.install import SharedPictures

    held = SharedPictures(keep=2, ttl=60)
    tokens = [held.put(bytes([n]), f"{n}.jpg") for n in range(3)]
    assert held.get(tokens[0]) is None and held.get(tokens[2]).data == b"\x02"  # the oldest went first
    held.ttl = 0
    assert held.get(tokens[2]) is None


@pytest.fixture(scope="module")
def secured(scanned_app, tmp_path_factory, media_dir):
    root = tmp_path_factory.mktemp("share-library")
    shutil.copy2(PICTURE, root / PICTURE.name)
    return scanned_app(root, password=PASSWORD)


def test_a_logged_out_share_goes_through_the_login_page_and_keeps_the_picture(secured):
    from tests.test_auth import csrf_from

    client = secured.test_client()
    for url in ["/manifest.webmanifest", "/sw.js", "/offline", "/favicon.ico", "/static/icons/icon-512.png"]:
        assert client.get(url).status_code == 200, url  # public: browsers fetch the manifest without cookies
    shared = share(client)  # no session, no CSRF token: a phone's share sheet sends neither
    assert shared.status_code == 303
    page = shared.headers["Location"]
    to_login = client.get(page)
    assert to_login.status_code == 302 and to_login.headers["Location"].startswith("/login?next=/?shared%3D")
    token = page.rsplit("=", 1)[1]
    assert client.get(f"/share?token={token}").status_code == 401  # the picture itself needs the login
    form = csrf_from(client.get(to_login.headers["Location"]).get_data(as_text=True))
    logged_in = client.post("/login", data={"password": PASSWORD, "csrf_token": form, "next": page})
    assert logged_in.status_code == 302 and logged_in.headers["Location"] == page
    assert client.get(f"/share?token={token}").data == PICTURE.read_bytes()
    # A form the page submits (the zip download) after the session expired: the login page, not JSON (#5).
    other = secured.test_client()
    navigated = other.post("/api/download", data={"ids": "1"}, headers={"Sec-Fetch-Mode": "navigate"})
    assert navigated.status_code == 302 and navigated.headers["Location"] == "/login?next=/"
    assert other.post("/api/download", data={"ids": "1"}).status_code == 401  # a script still gets JSON
    # Logged out, /duplicates is the login page too, not a JSON error (issue 23, #6).
    other = secured.test_client()
    duplicates = other.get("/duplicates")
    assert duplicates.status_code == 302 and duplicates.headers["Location"] == "/login?next=/duplicates"


# --- in Chromium ------------------------------------------------------------------------------------------------
@pytest.fixture
def profile_page(browser, tmp_path):
    """A page of Chromium with a profile on disk: the shared fixtures' contexts are incognito, where Chromium
    installs nothing (its installability check answers "in-incognito"). Same Chromium, same flags."""
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=DESKTOP, locale="en-US"
    )
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(15_000)
    page.problems = []
    page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


@pytest.mark.browser
def test_chromium_finds_the_page_installable_and_the_worker_caches_no_photo_or_answer(media_app, serve, profile_page):
    require_chromium()
    base = serve(media_app()).replace("127.0.0.1", "localhost")
    page = profile_page
    page.goto(base + "/")
    page.wait_for_selector("#timeline-groups img, #results img")
    page.wait_for_function("navigator.serviceWorker.controller !== null || navigator.serviceWorker.ready")
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == base + "/"
    cdp = page.context.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == [], errors
    manifest = cdp.send("Page.getAppManifest")
    assert not manifest.get("errors"), manifest["errors"]

    # Once the worker controls the page, a reload loads thumbnails and a search through it: none of it is cached.
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.wait_for_selector("#timeline-groups img")
    page.set_input_files("#image-input", str(PICTURE))
    page.wait_for_selector("#results .result img")
    page.wait_for_load_state("networkidle")
    cached = page.evaluate("""async () => {
        const urls = [];
        for (const name of await caches.keys()) {
          const cache = await caches.open(name);
          for (const request of await cache.keys()) urls.push(new URL(request.url).pathname);
        }
        return urls;
    }""")
    assert "/offline" in cached and "/static/app.css" in cached and "/static/js/main.js" in cached
    assert not [url for url in cached if not (url == "/offline" or url.startswith("/static/"))], cached
    assert page.problems == []

    # The NAS gone: a page shows the offline page (from the cache), not the browser's error.
    page.context.set_offline(True)
    page.goto(base + "/duplicates")
    assert "The NAS cannot be reached" in page.inner_text("#offline")
    page.context.set_offline(False)


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_a_shared_picture_opens_its_search_on_a_phone(media_app, serve, new_page, locale, tmp_path):
    require_chromium()
    base = serve(media_app())
    page = new_page(PHONE, locale=locale)
    page.goto(base + "/")
    posted = page.request.post(
        base + "/share",
        multipart={"image": {"name": PICTURE.name, "mimeType": "image/jpeg", "buffer": PICTURE.read_bytes()}},
        max_redirects=0,
    )
    assert posted.status == 303
    page.goto(base + posted.headers["location"])
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect(page.locator("#query-chip-label")).to_have_text(PICTURE.name)
    sync_api.expect(page.locator("#results .result .result-name").first).to_have_text(PICTURE.name)
    assert "shared=" not in page.url  # reload or Back shows the search, not the share again
    shots = Path(__import__("os").environ.get("MS_UI_SHOTS", tmp_path))
    page.screenshot(path=str(shots / f"share-phone-{locale}.png"))
    assert page.problems == []
    page.goto(base + "/?shared=expired-token")
    sync_api.expect(page.locator(".toast")).to_contain_text("10")


def test_a_changed_file_is_a_new_asset_version_and_so_a_new_worker_cache(tmp_path, monkeypatch):
    """What keeps an updated app from being served stale: the version in every asset URL and in the worker's cache
    name is a hash of the files, so changing any of them changes it (and the new worker deletes the old cache)."""
    from materialsearch.web import install

    for folder in ("static", "templates"):
        (tmp_path / folder).mkdir()
    (tmp_path / "static" / "app.css").write_text("body {}")
    (tmp_path / "templates" / "base.html").write_text("<!doctype html>")
    monkeypatch.setattr(install, "ROOT", tmp_path)
    versions = []
    for css in ["body {}", "body { color: red }", "body {}"]:
        (tmp_path / "static" / "app.css").write_text(css)
        install.asset_version.cache_clear()
        versions.append(install.asset_version())
    install.asset_version.cache_clear()  # the real one again for whoever asks next
    assert versions[0] != versions[1] and versions[0] == versions[2]
    assert "caches.delete" in (REPO / "templates" / "sw.js").read_text(encoding="utf-8")

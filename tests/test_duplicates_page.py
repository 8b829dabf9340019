"""The duplicates review page: its modules and strings read as source (ids in its template, both languages), and in
Chromium (desktop and phone, English and Chinese) over a constructed library: groups side by side with the
keeper marked and sizes/dates shown, hiding the others and showing them again, the export links, the link from the
search page. Screenshots go to $MS_SHOTS_DIR (default /work/wt/shots/dups) for people to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import DESKTOP, PHONE, require_chromium
from tests.duplicate_media import duplicate_library

REPO = Path(__file__).resolve().parents[1]
PAGE_JS = REPO / "static" / "js" / "duplicates"
TEMPLATE = REPO / "templates" / "duplicates.html"
SHOTS = Path(os.environ.get("MS_SHOTS_DIR", "/work/wt/shots/dups"))
# Functions, not bare expressions: Playwright polls a bare expression with eval, which the page's CSP forbids.
VISIBLE_THUMBNAILS_LOADED = """() => [...document.querySelectorAll('.dups-thumb img')].filter((img) => {
  const r = img.getBoundingClientRect();
  return r.width > 0 && r.right > 0 && r.left < window.innerWidth && r.bottom > 0 && r.top < window.innerHeight;
}).every((img) => img.complete && img.naturalWidth > 0)"""


# --- as source ----------------------------------------------------------------------------------------------------
def _strings(language: str) -> set[str]:
    source = (PAGE_JS / "strings.js").read_text(encoding="utf-8")
    table = re.search(rf"^  {language}: \{{\n(.*?)^  \}},$", source, re.MULTILINE | re.DOTALL)
    assert table, f"no {language} table"
    return set(re.findall(r"^    (\w+):", table.group(1), re.MULTILINE))


def test_the_page_strings_exist_in_both_languages_and_every_id_is_in_the_template():
    from materialsearch.organise.duplicates import KeeperReason
    from tests.test_frontend import string_keys

    english, chinese = _strings("en"), _strings("zh")
    assert english == chinese, english ^ chinese
    known = english | string_keys("en")
    source = (PAGE_JS / "page.js").read_text(encoding="utf-8")
    html = TEMPLATE.read_text(encoding="utf-8")
    used = set(re.findall(r'\bt\("(\w+)"', source)) | set(re.findall(r'data-i18n(?:-[a-z-]+)?="(\w+)"', html))
    used |= {f"why_{reason}" for reason in KeeperReason}  # t(`why_${group.why}`)
    used |= {f"why_detail_{reason}" for reason in KeeperReason}  # its tooltip, t(`why_detail_${group.why}`)
    assert used <= known, used - known
    ids = set(re.findall(r'\sid="([\w-]+)"', html))
    wanted = set(re.findall(r'\$\("([\w-]+)"\)', source)) | set(re.findall(r'getElementById\("([\w-]+)"\)', source))
    assert wanted and wanted <= ids | {"toast"}, wanted - ids
    for path in PAGE_JS.glob("*.js"):
        assert re.fullmatch(r"/\* [A-Z].{10,} \*/", path.read_text(encoding="utf-8").splitlines()[0]), path


# --- in Chromium --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(scanned_app, serve, tmp_path_factory, media_dir):
    require_chromium()
    root = tmp_path_factory.mktemp("dups-page") / "library"
    duplicate_library(root, media_dir, duplicated=3, distinct=4)
    app = scanned_app(root, decode_threads=1, page_size=2)  # 3 groups, 2 a page: "Load more" has work
    return serve(app, threads=6)


def _open(new_page, server, viewport, locale):
    page = new_page(viewport, locale)
    errors = page.problems  # its uncaught exceptions and console errors
    page.goto(server + "/duplicates")
    page.wait_for_selector(".dups-group")
    page.wait_for_function(VISIBLE_THUMBNAILS_LOADED)
    return page.context, page, errors


@pytest.mark.browser
@pytest.mark.parametrize(
    ("name", "viewport", "locale"),
    [
        ("desktop-en", DESKTOP, "en-US"),
        ("desktop-zh", DESKTOP, "zh-CN"),
        ("phone-en", PHONE, "en-US"),
        ("phone-zh", PHONE, "zh-CN"),
    ],
)
def test_groups_side_by_side_with_the_keeper_marked(new_page, server, name, viewport, locale):
    context, page, errors = _open(new_page, server, viewport, locale)
    try:
        groups = page.locator(".dups-group")
        assert groups.count() == 2  # the first page
        first = groups.nth(0)
        members = first.locator(".dups-member")
        assert members.count() == 11
        assert first.locator(".dups-member.is-keeper").count() == 1
        assert members.nth(0).get_attribute("class").count("is-keeper") == 1
        keeper_badge = "保留" if locale.startswith("zh") else "Keep"
        assert members.nth(0).locator(".dups-badge.keeper").inner_text() == keeper_badge
        why = first.locator(".dups-why").get_attribute("title")  # the tooltip in the page's language (#14)
        assert bool(re.search(r"[\u4e00-\u9fff]", why)) == locale.startswith("zh"), why
        facts = members.nth(0).locator(".dups-facts").inner_text()
        assert re.search(r"\d+ × \d+ · [\d.,]+ (KB|MB)", facts), facts
        assert members.nth(0).locator(".dups-date").inner_text().strip()
        boxes = [members.nth(i).bounding_box() for i in range(2)]
        assert abs(boxes[0]["y"] - boxes[1]["y"]) < 1 and boxes[1]["x"] > boxes[0]["x"]  # side by side
        assert (
            page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        )  # the row scrolls, not the page
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        page.click("#dups-load-more")
        page.wait_for_function("() => document.querySelectorAll('.dups-group').length === 3")
        assert page.locator("#dups-load-more").is_hidden()
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_hide_the_others_then_show_them_again(new_page, server):
    context, page, errors = _open(new_page, server, DESKTOP, "en-US")
    try:
        first = page.locator(".dups-group").nth(0)
        first.locator(".dups-toggle").click()
        page.wait_for_function(
            "() => document.querySelectorAll('.dups-group')[0].querySelectorAll('.is-hidden').length"
        )
        first = page.locator(".dups-group").nth(0)
        assert first.locator(".dups-member.is-hidden").count() == 10
        assert first.locator(".dups-member.is-keeper.is-hidden").count() == 0
        assert first.locator(".dups-toggle").inner_text() == "Show the others again"
        hidden = page.evaluate("fetch('/api/hidden').then((r) => r.json())")
        assert hidden["total"] == 10
        page.screenshot(path=str(SHOTS / "desktop-en-hidden.png"), full_page=True)
        first.locator(".dups-toggle").click()
        page.wait_for_function(
            "() => !document.querySelectorAll('.dups-group')[0].querySelectorAll('.is-hidden').length"
        )
        assert page.evaluate("fetch('/api/hidden').then((r) => r.json())")["total"] == 0
        csv = page.evaluate("fetch(document.getElementById('export-csv').href).then((r) => r.text())")
        assert csv.count("\n") == 1 + 3 * 10  # a header and every non-keeper
        page.click("#lang-toggle")
        assert page.locator(".dups-group-title").nth(0).inner_text() == "第 1 组"
        assert page.title() == "materialsearch — 重复项"
        page.click("#back-to-search")
        page.wait_for_url(server + "/")
        link = page.locator("#duplicates-link")
        assert (
            link.get_attribute("aria-label") == link.get_attribute("title") == "重复项：同一张照片或视频的副本"
        )  # in the chosen language
        assert errors == []
    finally:
        context.close()

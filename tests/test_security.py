"""Hardened file serving and input: no route takes a path, traversal attempts serve nothing (through Flask and
through the real waitress server), symlinks out of the library are neither indexed nor served, uploads are
bounded and sniffed and never stored, security headers are set, and a read-only library is never written."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import shutil
from pathlib import Path

import pytest

from materialsearch.web import CONTENT_SECURITY_POLICY, services_of
from tests.conftest import REPO, served

SECRET_MARKER = b"TOPSECRET-do-not-serve-7f3a"


@pytest.fixture(scope="module")
def world(tmp_path_factory, media_dir):
    """A library with links in and out of it, private files beside it, and a data dir elsewhere."""
    root = tmp_path_factory.mktemp("security")
    library, outside = root / "library", root / "outside"
    (library / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy2(media_dir / "jpg_orient1.jpg", library / "a.jpg")
    shutil.copy2(media_dir / "png_rgba_transparent.png", library / "sub" / "b.png")
    shutil.copy2(media_dir / "heic_iphoneXS_2images.heic", library / "sub" / "c.heic")
    shutil.copy2(media_dir / "jpg_orient6.jpg", library / "sub" / "d.jpg")
    shutil.copy2(media_dir / "bmp_24bit.bmp", outside / "private.bmp")
    (outside / "passwords.txt").write_bytes(SECRET_MARKER)
    (library / "inside_link.jpg").symlink_to(library / "a.jpg")
    (library / "out_link.bmp").symlink_to(outside / "private.bmp")
    (library / "out_dir").symlink_to(outside, target_is_directory=True)
    return {"root": root, "library": library, "outside": outside, "data": root / "data"}


@pytest.fixture(scope="module")
def app(world, scanned_app):
    return scanned_app(world["library"], data_dir=str(world["data"]))


@pytest.fixture(scope="module")
def live(app):
    """The same app behind a real waitress server (which decodes %2F and friends itself)."""
    with served(app) as server:
        yield server.effective_port


def items(app) -> dict[str, int]:
    """Indexed path → id."""
    store = services_of(app).store
    return {item.path: item.id for item in store.get_items(range(1, 100)).values() if item.status == "ok"}


def forbidden_contents(world) -> list[bytes]:
    """Bytes no response may ever contain."""
    data = world["data"]
    return [
        SECRET_MARKER,
        (world["outside"] / "private.bmp").read_bytes()[:4096],
        b"root:x:0:",
        b"SQLite format 3",
        (data / "secret_key").read_bytes(),
        (REPO / "config.py").read_bytes()[:200],
        (REPO / "app.py").read_bytes()[:200],
    ]


def attack_urls(world, item_id: int) -> list[str]:
    data, outside = world["data"], world["outside"]
    targets = [
        "../../../../../../etc/passwd",
        "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e%2f%2e%2e%2fconfig.py",
        "..%252f..%252fconfig.py",
        "../config.py",
        "../app.py",
        "....//....//....//etc/passwd",
        "..\\..\\config.py",
        "..%5c..%5cconfig.py",
        "%c0%ae%c0%ae/%c0%ae%c0%ae/config.py",
        "..%00/config.py",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        f"{outside}/passwords.txt",
        f"{outside}/private.bmp".replace("/", "%2F"),
        f"{data}/secret_key",
        f"{data}/materialsearch.db",
        f"..%2f..%2f{outside.name}%2fpasswords.txt",
        f"../{outside.name}/passwords.txt",
        "out_link.bmp",
        "out_dir/passwords.txt",
    ]
    prefixes = [
        "/",
        "/static/",
        "/static/..%2f",
        "/api/",
        "/api/items/",
        f"/api/items/{item_id}/",
        f"/api/items/{item_id}/file/",
        f"/api/items/{item_id}/thumbnail/",
        "/login/",
        "/api/docs/",
    ]
    urls = [prefix + target.lstrip("/") for prefix in prefixes for target in targets]
    urls += [prefix + target for prefix in ["/static", "/api/items"] for target in targets if target.startswith("/")]
    for target in targets:
        urls += [
            f"/api/items/{item_id}/file?path={target}",
            f"/api/items/{item_id}/file?file={target}",
            f"/api/items/{item_id}/thumbnail?v={target}",
            f"/api/items/{item_id}/preview?v={target}",
            f"/api/search?q=x&path={target}",
            f"/api/search?like={target}",
            f"/api/items/{target}/file",
            f"/login?next={target}",
        ]
    return urls


def assert_nothing_leaked(status: int, body: bytes, url: str, forbidden: list[bytes]) -> None:
    for secret in forbidden:
        assert secret not in body, f"{url} answered {status} with protected content"


def vendored_libraries() -> list[str]:
    """The third-party libraries shipped in static/vendor (each keeps its licence file)."""
    return sorted(p.name for p in (REPO / "static" / "vendor").iterdir() if p.is_dir())


def test_no_route_takes_a_path(app):
    """Files are reached by item id only: every route variable is an int, except Flask's static file name."""
    loose = {
        (rule.rule, name, type(converter).__name__)
        for rule in app.url_map.iter_rules()
        for name, converter in rule._converters.items()
        if type(converter).__name__ != "IntegerConverter"
    }
    assert loose == {("/static/<path:filename>", "filename", "PathConverter")}
    # ... and the static folder holds only the page's own code, and vendored libraries with their licence.
    static = {p.relative_to(REPO / "static").as_posix() for p in (REPO / "static").rglob("*") if p.is_file()}
    vendored = r"vendor/[a-z-]+/(LICENSE|[a-z-]+\.(js|css)|images/[a-z0-9-]+\.png)"
    icons = r"favicon\.ico|icons/[a-z0-9-]+\.png"  # the installable app's icons (materialsearch/web/icons.py)
    pattern = rf"[a-z]+\.(css|svg)|js/([a-z0-9-]+/)?[a-z0-9-]+\.js|{icons}|{vendored}"
    assert static and all(re.fullmatch(pattern, name) for name in static), static
    assert all((REPO / "static" / "vendor" / name / "LICENSE").is_file() for name in vendored_libraries())


@pytest.mark.slow
def test_traversal_attempts_serve_nothing_through_flask(app, world):
    client = app.test_client()
    forbidden = forbidden_contents(world)
    item_id = next(iter(items(app).values()))
    urls = attack_urls(world, item_id)
    assert len(urls) > 300
    ok = 0
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, url
        assert_nothing_leaked(response.status_code, response.get_data(), url, forbidden)
        ok += response.status_code == 200
    assert ok > 0  # the harmless ones (a search whose path filter matches nothing) still work


def test_traversal_attempts_serve_nothing_through_the_real_server(app, world, live):
    forbidden = forbidden_contents(world)
    item_id = next(iter(items(app).values()))
    for url in attack_urls(world, item_id):
        connection = http.client.HTTPConnection("127.0.0.1", live, timeout=10)
        try:
            connection.putrequest("GET", url, skip_accept_encoding=True)  # sent as is: no client normalisation
            connection.endheaders()
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status < 500, url
        assert_nothing_leaked(response.status, body, url, forbidden)


def test_symlinks_out_of_the_library_are_not_indexed_or_served(app, world):
    indexed = items(app)
    names = {Path(p).relative_to(world["library"]).as_posix() for p in indexed}
    assert names == {"a.jpg", "inside_link.jpg", "sub/b.png", "sub/c.heic", "sub/d.jpg"}
    client = app.test_client()
    search = client.get("/api/search?q=x&limit=100").get_json()
    assert all("out_" not in hit["path"] and "private" not in hit["path"] for hit in search["results"])


def test_a_link_re_pointed_after_indexing_is_not_served(app, world):
    """The scanner saw a harmless link; someone then points it at a private file: 404 on every route."""
    library, client = world["library"], app.test_client()
    link = library / "inside_link.jpg"
    item_id = items(app)[str(link)]
    assert client.get(f"/api/items/{item_id}/file").status_code == 200
    forbidden = forbidden_contents(world)
    victims = [world["outside"] / "private.bmp", world["outside"] / "passwords.txt", world["data"] / "secret_key"]
    try:
        for target in victims:
            link.unlink()
            link.symlink_to(target)
            for route in ["file", "thumbnail", "preview"]:
                response = client.get(f"/api/items/{item_id}/{route}")
                assert response.status_code == 404, (target, route)
                assert_nothing_leaked(404, response.get_data(), route, forbidden)
        # A regular file swapped for a link into the data dir (the database, the session secret).
        swapped = library / "sub" / "d.jpg"
        swapped_id = items(app)[str(swapped)]
        original = swapped.read_bytes()
        swapped.unlink()
        swapped.symlink_to(world["data"] / "materialsearch.db")
        assert client.get(f"/api/items/{swapped_id}/file").status_code == 404
    finally:
        link.unlink()
        link.symlink_to(library / "a.jpg")
        if swapped.is_symlink():
            swapped.unlink()
            swapped.write_bytes(original)


def test_following_symlinks_is_a_setting(world, make_app, tmp_path):
    from materialsearch.scan.walk import servable_path

    app = make_app(library=str(world["library"]), follow_symlinks=True)
    services_of(app).scans.run()
    names = {Path(p).relative_to(world["library"]).as_posix() for p in items(app)}
    assert {"out_link.bmp", "out_dir/private.bmp"} <= names
    item_id = items(app)[str(world["library"] / "out_link.bmp")]
    response = app.test_client().get(f"/api/items/{item_id}/file")
    assert response.status_code == 200 and response.data == (world["outside"] / "private.bmp").read_bytes()
    # Never the data dir, setting or not.
    data = tmp_path / "data"
    assert (
        servable_path(str(data / "secret_key"), [str(data.parent)], follow_symlinks=True, exclude=[str(data)]) is None
    )


def test_folder_link_loops_end(tmp_path, media_dir):
    from materialsearch.scan.walk import walk_library

    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    shutil.copy2(media_dir / "jpg_orient1.jpg", root / "x" / "p.jpg")
    (root / "x" / "loop").symlink_to(root, target_is_directory=True)
    for follow in (False, True):
        found = [Path(e.path).name for e in walk_library([str(root)], ["jpg"], follow_symlinks=follow)]
        assert found == ["p.jpg"], follow


# --- uploads ----------------------------------------------------------------------------------------------------
def upload(client, data: bytes, filename: str = "query.jpg", content_type: str = "image/jpeg"):
    return client.post("/api/search", data={"image": (io.BytesIO(data), filename, content_type)})


def test_uploads_are_sniffed_from_content_and_bombs_refused(app, media_dir):
    client = app.test_client()
    png = (media_dir / "png_rgba_transparent.png").read_bytes()
    assert upload(client, png, "notes.txt", "text/plain").status_code == 200  # the content decides
    for data, name in [
        (b"<html><script>alert(1)</script></html>", "x.jpg"),
        (b"\xff\xd8\xff" + b"\0" * 100, "truncated.jpg"),
        (b"", "empty.jpg"),
        ((REPO / "config.py").read_bytes(), "config.png"),
    ]:
        response = upload(client, data, name)
        assert response.status_code == 400 and response.get_json()["error"] == "Bad Request", name
    bomb = upload(client, (media_dir / "bomb_jpg_lottapixel.jpg").read_bytes())
    assert bomb.status_code == 400 and "decompression bomb" in bomb.get_json()["message"]


def test_upload_size_limit(make_app, media_dir):
    response = upload(make_app(max_upload_bytes=100_000).test_client(), (media_dir / "jpg_orient1.jpg").read_bytes())
    assert response.status_code == 413 and response.get_json()["status"] == 413


def test_uploads_stay_in_memory_and_are_never_stored(app, world, monkeypatch):
    """A picture larger than werkzeug's spooling threshold is still never written to a (temp) file."""
    from PIL import Image

    def no_files(*_args, **_kwargs):
        raise AssertionError("an upload was about to be written to a file")

    import tempfile

    import werkzeug.formparser

    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_files)
    for name in ["SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"]:
        monkeypatch.setattr(tempfile, name, no_files)
    noise = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) > 1024 * 1024
    library_before = snapshot(world["library"])
    files_before = set(snapshot(world["root"]))
    response = upload(app.test_client(), data, "noise.png", "image/png")
    assert response.status_code == 200
    assert snapshot(world["library"]) == library_before
    assert set(snapshot(world["root"])) == files_before  # no new file anywhere (SQLite's -shm changes on reads)


# --- headers ----------------------------------------------------------------------------------------------------
def test_security_headers_on_every_kind_of_response(app):
    client = app.test_client()
    item_id = next(iter(items(app).values()))
    for url in ["/", "/api/status", f"/api/items/{item_id}/file", f"/api/items/{item_id}/thumbnail", "/api/nope"]:
        headers = client.get(url).headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY


def test_pages_have_no_inline_code_the_csp_would_block(app, make_app):
    secured = make_app(password="pw")
    pages = [app.test_client().get(u).get_data(as_text=True) for u in ["/", "/api/docs"]]
    pages.append(secured.test_client().get("/login").get_data(as_text=True))
    for html in pages:
        assert "<html" in html
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), "inline <script>"
        assert "<style" not in html and not re.search(r"\sstyle=", html), "inline style"
        assert not re.search(r"\son[a-z]+=", html), "inline event handler"
        assert not re.search(r"""(src|href)=["'](https?:)?//""", html), "a resource from another site"
    for script in (REPO / "static" / "js").glob("*.js"):
        assert "innerHTML" not in script.read_text(encoding="utf-8"), script.name


# --- read-only library ------------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: type, size, mtime, mode, and content hash for files."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            entries[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return entries


def test_a_read_only_library_is_scanned_served_and_never_written(make_app, tmp_path, media_dir):
    library = tmp_path / "library"
    (library / "2023" / "trip").mkdir(parents=True)
    for name, folder in [
        ("jpg_orient6.jpg", "2023"),
        ("heic_iphoneXS_2images.heic", "2023/trip"),
        ("bmp_24bit.bmp", "."),
        ("png_rgba_transparent.png", "2023/trip"),
        ("bad_jpg_is_text.jpg", "."),
    ]:
        shutil.copy2(media_dir / name, library / folder / name)
    for folder, _dirs, files in os.walk(library, topdown=False):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    before = snapshot(library)
    try:
        app = make_app(library=str(library))
        services = services_of(app)
        try:
            services.scans.run()
            client = app.test_client()
            status = client.get("/api/status").get_json()
            assert status["counts"]["images"] == 4 and status["counts"]["errors"] == 1
            for item_id in items(app).values():
                for route in ["", "/thumbnail", "/preview", "/file"]:
                    assert client.get(f"/api/items/{item_id}{route}").status_code == 200
                assert client.get(f"/api/items/{item_id}/file", headers={"Range": "bytes=0-9"}).status_code == 206
                assert client.get(f"/api/search?like={item_id}").status_code == 200
            assert client.get("/api/search?q=海边").status_code == 200
            assert upload(client, (media_dir / "jpg_orient1.jpg").read_bytes()).status_code == 200
            assert client.post("/api/scan").status_code in (202, 409)
            services.scans.wait()
            services.scans.run()
        finally:
            services.close()  # before the snapshot: closing must not write into the library either
        assert snapshot(library) == before
    finally:
        for folder, _dirs, _files in os.walk(library):
            os.chmod(folder, 0o755)


# --- the production server's limits and the reverse-proxy setting --------------------------------------------------
def test_server_limits_and_trusted_proxy(make_settings, make_app):
    """Through real waitress with app.py's options: bodies over the limit are refused before the app reads them;
    behind a trusted proxy the login limit counts the real client and the cookie is Secure for HTTPS."""
    import re as regex

    from app import server_options

    limits = {"password": "pw", "login_attempts": 1, "max_upload_bytes": 50_000, "request_timeout": 7}
    settings = make_settings(**limits, trusted_proxy="127.0.0.1")
    options = server_options(settings)
    assert options["channel_timeout"] == 7 and options["threads"] == 8
    assert options["max_request_body_size"] == 50_000 + 1024 * 1024
    app = make_app(**limits, trusted_proxy="127.0.0.1")

    def request(method, path, body=b"", headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()

    with served(app, **options) as server:
        # Declared too large: refused on the headers alone, before any of the body is read.
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        try:
            connection.putrequest("POST", "/api/search")
            connection.putheader("Content-Length", str(options["max_request_body_size"] + 1))
            connection.endheaders()
            assert connection.getresponse().status == 413
        finally:
            connection.close()

        def login(password, client_ip, proto="http"):
            page, html = request("GET", "/login", headers={"X-Forwarded-For": client_ip, "X-Forwarded-Proto": proto})
            cookie = page.getheader("Set-Cookie").split(";")[0]
            token = regex.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()
            form = f"password={password}&csrf_token={token}".encode()
            headers = {
                "Cookie": cookie,
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": client_ip,
                "X-Forwarded-Proto": proto,
            }
            return request("POST", "/login", form, headers)[0]

        assert login("wrong", "203.0.113.9").status == 200  # the page again, saying the password is wrong
        assert login("pw", "203.0.113.9").status == 429  # that client is now limited ...
        ok = login("pw", "198.51.100.4", proto="https")  # ... another one behind the same proxy is not
        assert ok.status == 302 and "Secure" in ok.getheader("Set-Cookie")


def test_unsupported_methods_answer_405_with_allow(app):
    response = app.test_client().delete("/api/status")
    assert response.status_code == 405 and response.get_json()["status"] == 405
    assert "GET" in response.headers["Allow"]

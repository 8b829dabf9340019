"""Login and API tokens: off by default; with a password, nothing but the login page, static files and /healthz
answers without a session or token; sessions, CSRF, rate limits and tokens work as documented."""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from config import SettingsError
from materialsearch import auth as core
from materialsearch.web import services_of
from materialsearch.web.auth import PUBLIC_ENDPOINTS, SESSION_COOKIE, authenticator

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def library(tmp_path_factory, media_dir):
    root = tmp_path_factory.mktemp("auth-library")
    for name in ["jpg_orient1.jpg", "heic_iphoneXS_2images.heic", "bad_jpg_is_text.jpg"]:
        shutil.copy2(media_dir / name, root / name)
    return root


@pytest.fixture(scope="module")
def secured(scanned_app, library):
    """A scanned app with a password set (module-wide: building and scanning takes seconds)."""
    return scanned_app(library, password=PASSWORD)


@pytest.fixture
def make_app(make_app, library):
    """conftest's ``make_app``, over this module's library."""
    return functools.partial(make_app, library=str(library))


def csrf_from(html: str, name: str = "csrf_token") -> str:
    match = re.search(rf'name="{name}" (?:value|content)="([^"]+)"', html)
    assert match, f"no {name} in the page"
    return match.group(1)


def log_in(client, password: str = PASSWORD, next_url: str = "/"):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"password": password, "csrf_token": token, "next": next_url})


def item_id_of(app) -> int:
    store = services_of(app).store
    return next(i for i, item in store.get_items(range(1, 50)).items() if item.status == "ok")


def every_route_url(app, item_id: int):
    """(method, url, endpoint) for every route of the app, with real values for its variables."""
    for rule in app.url_map.iter_rules():
        values = {arg: item_id if arg == "item_id" else "app.js" for arg in rule.arguments}
        url = rule.rule
        for arg, value in values.items():
            url = re.sub(rf"<(?:[a-z]+:)?{arg}>", str(value), url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url, rule.endpoint


# --- off by default ---------------------------------------------------------------------------------------------
def test_login_is_off_by_default(make_app):
    app = make_app()
    client = app.test_client()
    assert client.get("/api/status").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
    assert 'id="logout-button"' not in page.get_data(as_text=True)
    assert client.get("/login").status_code == 302  # nothing to log in to


def test_conflicting_or_bogus_password_settings_are_refused(make_app):
    with pytest.raises(SettingsError, match="not both"):
        make_app(password="a", password_hash=core.hash_password("a"))
    with pytest.raises(SettingsError, match="hash-password"):
        make_app(password_hash="plaintext-by-mistake")


def test_exposure_warning_only_beyond_loopback_without_password(make_settings):
    assert core.exposure_warning(make_settings(host="0.0.0.0")) is not None
    assert "MS_PASSWORD" in core.exposure_warning(make_settings(host="192.168.1.10"))
    for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"]:
        assert core.exposure_warning(make_settings(host=host)) is None, host
    assert core.exposure_warning(make_settings(host="0.0.0.0", password="x")) is None


# --- nothing open -----------------------------------------------------------------------------------------------
def test_every_route_needs_a_session_or_token(secured):
    client = secured.test_client()
    item_id = item_id_of(secured)
    seen = set()
    for method, url, endpoint in every_route_url(secured, item_id):
        seen.add(endpoint)
        response = client.open(url, method=method)
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login?next="), (method, url)
        else:
            assert response.status_code == 401, (method, url, response.status_code)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.get_json()["status"] == 401
    # The exceptions are exactly these, and they hold no data.
    assert {"auth.login", "auth.login_submit", "auth.logout", "static", "api.healthz"} | {
        f"install.{name}" for name in ("manifest", "service_worker", "offline", "favicon", "share")
    } == PUBLIC_ENDPOINTS
    assert {"api.item_file", "api.item_thumbnail", "api.item_preview", "pages.index"} <= seen
    assert client.get("/healthz").get_json() == {"ok": True}
    for url in ["/nope", "/api/nope", "/api/items/1/nope", "/api/items/1/file/..", "/api/items/999999/file"]:
        assert client.get(url).status_code == 401, url


def test_media_urls_need_the_session_cookie(secured):
    item_id = item_id_of(secured)
    client = secured.test_client()
    urls = [f"/api/items/{item_id}/thumbnail", f"/api/items/{item_id}/preview", f"/api/items/{item_id}/file"]
    assert [client.get(u).status_code for u in urls] == [401, 401, 401]
    log_in(client)
    assert [client.get(u).status_code for u in urls] == [200, 200, 200]


# --- sessions ---------------------------------------------------------------------------------------------------
def test_login_session_cookie_and_logout(secured):
    client = secured.test_client()
    redirect = client.get("/?q=cat")
    assert redirect.status_code == 302 and redirect.headers["Location"] == "/login?next=/?q%3Dcat"

    wrong = log_in(client, "wrong")
    # The login page is a page that says why (200), not an error the browser reports; no session follows from it.
    assert wrong.status_code == 200 and "Wrong password" in wrong.get_data(as_text=True)
    assert client.get("/api/status").status_code == 401

    ok = log_in(client, next_url="/?q=cat")
    assert ok.status_code == 302 and ok.headers["Location"] == "/?q=cat"
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on a LAN: a Secure cookie would never come back
    assert "Expires=" in cookie
    assert client.get("/api/status").status_code == 200
    page = client.get("/").get_data(as_text=True)
    assert 'id="logout-button"' in page

    assert client.post("/logout").status_code == 403  # no CSRF token
    out = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert client.get("/api/status").status_code == 401


def test_cookie_is_secure_over_https(secured):
    client = secured.test_client()
    token = csrf_from(client.get("/login", base_url="https://nas.example").get_data(as_text=True))
    response = client.post("/login", data={"password": PASSWORD, "csrf_token": token}, base_url="https://nas.example")
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_login_form_needs_its_csrf_token(secured):
    client = secured.test_client()
    client.get("/login")
    response = client.post("/login", data={"password": PASSWORD})
    assert response.status_code == 400 and client.get("/api/status").status_code == 401
    other = secured.test_client()  # a token from another browser's session does not do either
    token = csrf_from(other.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"password": PASSWORD, "csrf_token": token}).status_code == 400


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil"]
)
def test_next_never_leaves_the_site(secured, target):
    client = secured.test_client()
    assert log_in(client, next_url=target).headers["Location"] == "/"


def test_state_changing_api_calls_with_a_session_need_the_csrf_header(secured):
    client = secured.test_client()
    log_in(client)
    page = client.get("/").get_data(as_text=True)
    token = csrf_from(page, "csrf-token")
    assert client.post("/api/scan").status_code == 403
    assert client.post("/api/scan", headers={"X-CSRF-Token": "forged"}).status_code == 403
    response = client.post("/api/scan", headers={"X-CSRF-Token": token})
    assert response.status_code in (202, 409)
    services_of(secured).scans.wait()
    picture = {"image": (io.BytesIO(b"not relevant"), "q.jpg")}
    assert client.post("/api/search", data=picture).status_code == 403
    picture = {"image": (io.BytesIO(b"not an image"), "q.jpg")}
    assert client.post("/api/search", data=picture, headers={"X-CSRF-Token": token}).status_code == 400


def test_forged_or_stale_sessions_are_refused(make_app, tmp_path):
    from flask.sessions import SecureCookieSessionInterface

    app = make_app(password="first")
    client = app.test_client()
    log_in(client, "first")
    assert client.get("/api/status").status_code == 200
    stamp = authenticator(app).session_stamp

    # A cookie with the right content signed with any other key (a hard-coded one, say) is worthless.
    forger = make_app(data_dir=str(tmp_path / "elsewhere"), password="first")
    with forger.test_request_context():
        serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
        forged = serializer.dumps({"stamp": stamp, "csrf": "x"})
    attacker = app.test_client()
    attacker.set_cookie(SESSION_COOKIE, forged)
    assert attacker.get("/api/status").status_code == 401

    # The same data dir (same secret) with a new password: the old session no longer counts.
    services_of(app).close()
    renewed = make_app(password="second")
    cookie = client.get_cookie(SESSION_COOKIE).value
    later = renewed.test_client()
    later.set_cookie(SESSION_COOKIE, cookie)
    assert later.get("/api/status").status_code == 401


def test_session_secret_is_random_made_once_and_private(tmp_path):
    first = core.load_or_create_secret(str(tmp_path / "a"))
    assert len(first) == core.SECRET_BYTES
    assert core.load_or_create_secret(str(tmp_path / "a")) == first
    assert core.load_or_create_secret(str(tmp_path / "b")) != first
    mode = stat.S_IMODE(os.stat(tmp_path / "a" / core.SECRET_FILENAME).st_mode)
    assert mode == 0o600
    (tmp_path / "a" / core.SECRET_FILENAME).write_bytes(b"short")
    with pytest.raises(SettingsError, match="damaged"):
        core.load_or_create_secret(str(tmp_path / "a"))


def test_password_hash_setting(make_app):
    hashed = core.hash_password("s3cret pass")
    assert hashed.startswith("scrypt:") and "s3cret" not in hashed
    app = make_app(password_hash=hashed)
    client = app.test_client()
    assert "Wrong password" in log_in(client, "s3cret pass!").get_data(as_text=True)
    assert client.get("/api/status").status_code == 401
    assert log_in(client, "s3cret pass").status_code == 302
    assert client.get("/api/status").status_code == 200


def test_plain_password_check(make_settings):
    settings = make_settings(password="pässwörd")
    authn = core.Authenticator(settings, tokens=None)  # the token records are used only by tokens
    assert authn.enabled and authn.check_password("pässwörd")
    assert not authn.check_password("pässwörd ") and not authn.check_password("") and not authn.check_password("p")
    off = core.Authenticator(make_settings(), tokens=None)
    assert not off.enabled and not off.check_password("")


# --- rate limit -------------------------------------------------------------------------------------------------
def test_failed_logins_are_rate_limited_per_client(make_app):
    app = make_app(password=PASSWORD, login_attempts=3, login_window=600)
    client = app.test_client()
    for _ in range(3):
        assert "Wrong password" in log_in(client, "guess").get_data(as_text=True)
    blocked = log_in(client)  # even the right password waits now
    assert blocked.status_code == 429 and 0 < int(blocked.headers["Retry-After"]) <= 600
    assert client.get("/api/status").status_code == 401
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert log_in(other).status_code == 302  # another address is not punished


def test_rate_limiter_window_and_reset():
    now = [1000.0]
    limiter = core.RateLimiter(attempts=2, window_s=60, max_keys=3, clock=lambda: now[0])
    limiter.fail("a")
    assert limiter.retry_after("a") == 0
    limiter.fail("a")
    assert limiter.retry_after("a") == 60
    now[0] += 30
    assert limiter.retry_after("a") == 30
    now[0] += 30.5
    assert limiter.retry_after("a") == 0  # the window slid past both failures
    limiter.fail("b")
    limiter.fail("b")
    limiter.reset("b")
    assert limiter.retry_after("b") == 0
    for key in ["c", "d", "e", "f"]:
        limiter.fail(key)
    assert len(limiter._failures) <= 3  # bounded memory under a flood of addresses


# --- API tokens -------------------------------------------------------------------------------------------------
def test_tokens_from_the_cli_work_at_once_and_can_be_revoked(secured, monkeypatch, capsys):
    from materialsearch.cli import main

    data_dir = services_of(secured).settings.data_dir
    monkeypatch.setenv("MS_DATA_DIR", data_dir)
    assert main(["token", "create", "backup"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith(core.TOKEN_PREFIX) and len(token) > 40
    assert main(["token", "create", "backup"]) == 1  # names are unique
    assert "already exists" in capsys.readouterr().err

    client = secured.test_client()
    item_id = item_id_of(secured)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/status", headers=bearer).status_code == 200
    assert client.get(f"/api/items/{item_id}/file", headers=bearer).status_code == 200
    assert client.get("/api/search?q=cat", headers=bearer).status_code == 200
    started = client.post("/api/scan", headers=bearer)  # no CSRF needed: a token is not sent by browsers
    assert started.status_code in (202, 409)
    services_of(secured).scans.wait()
    for header in [f"Bearer {token}x", f"Basic {token}", "Bearer ", f"bearer{token}", f"Bearer {token[:-1]}"]:
        assert client.get("/api/status", headers={"Authorization": header}).status_code == 401, header

    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("backup\t") and token not in listing and "last used 20" in listing

    # Stored hashed only: the token appears nowhere in the database files (WAL included), its hash does.
    stored = b"".join(p.read_bytes() for p in Path(data_dir).glob("materialsearch.db*"))
    assert token.encode() not in stored and core.hash_token(token).encode() in stored

    assert main(["token", "revoke", "backup"]) == 0
    assert client.get("/api/status", headers=bearer).status_code == 401
    assert main(["token", "revoke", "backup"]) == 1


def test_token_last_use_is_written_at_most_every_few_minutes(make_app):
    app = make_app(password=PASSWORD)
    authn = authenticator(app)
    tokens = authn.tokens
    token = core.create_token(tokens, "ci")
    assert authn.verify_token(token).last_used_at is None
    first = tokens.all()[0].last_used_at
    assert first is not None
    authn.verify_token(token)
    assert tokens.all()[0].last_used_at == first
    tokens.touch(tokens.all()[0].id, first - core.TOKEN_TOUCH_INTERVAL - dt.timedelta(seconds=1))
    authn.verify_token(token)
    assert tokens.all()[0].last_used_at >= first
    with pytest.raises(ValueError, match="printable"):
        core.create_token(tokens, "bad\nname")
    assert core.find_token(tokens, "mst_" + "A" * 43) is None and core.find_token(tokens, "") is None


def test_hash_password_command(monkeypatch, capsys):
    from materialsearch.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("pa55 word\n"))
    assert main(["hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    from werkzeug.security import check_password_hash

    assert check_password_hash(hashed, "pa55 word")

"""What makes the page an installable app: the web app manifest, the service worker, the offline page, the icons
and ``/favicon.ico``, and the share target (a picture shared from the phone's gallery opens a search by it).

- ``/manifest.webmanifest``: names in the language the browser asks for (``Accept-Language``: Chinese for ``zh``,
  else English; the manifest's ``lang`` says which), icons, ``display: standalone``, the share target.
- ``/sw.js``: the service worker (``templates/sw.js``), served from the root so that its scope is the whole site,
  never cached by the browser (``no-cache``); its cache is named by ``asset_version()``, a hash of the static files
  and templates, so a new app version gets a new cache and the old one is deleted when the new worker takes over.
- ``/offline``: the page the service worker shows when a page cannot be reached (the NAS is off or away).
- ``/share`` (POST, multipart ``image``): the share target. The picture is held in memory (``SharedPictures``:
  a few, for minutes, never written to disk) under a random token and the browser goes to ``/?shared=TOKEN``; the
  page fetches ``/share?token=TOKEN`` and searches by it. Without a session the guard sends the browser through
  the login page first (``next`` keeps the token), so the picture is not lost.

The manifest, service worker, offline page and icons hold no data and are public (browsers fetch a manifest
without cookies); ``GET /share`` (the held picture) needs a session like every other page.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, send_file, url_for

from materialsearch import __version__

install = Blueprint("install", __name__)

ROOT = Path(__file__).resolve().parents[2]
SHARE_FIELD = "image"  # the manifest's share_target names this form field for the shared files
# Theme colours: the page background of app.css in light and dark.
THEME_LIGHT = "#f5f6f8"
THEME_DARK = "#0e1014"
NAMES = {
    "en": {
        "name": "materialsearch",
        "short_name": "materialsearch",
        "description": "Search your photos by words or by picture",
    },
    "zh": {"name": "materialsearch 照片搜索", "short_name": "照片搜索", "description": "用文字或图片搜索你的照片"},
}
ICONS = [
    {"src": "icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
    {"src": "icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
    {"src": "icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
]
# What the service worker keeps for the offline page (the rest of the shell is cached as it is loaded).
OFFLINE_SHELL = ["app.css", "pages.css", "favicon.svg", "icons/icon-192.png"]


@cache
def asset_version() -> str:
    """The app's version plus a hash of every static file and template: it changes whenever the shell does, so
    asset URLs (``?v=``) and the service worker's cache name change with it."""
    digest = hashlib.sha256(__version__.encode())
    for folder in ("static", "templates"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:12]}"


def template_values() -> dict:
    """What every template may use: the asset version (``?v=`` of the static files), the app's own version (for
    people) and the theme colours."""
    return {
        "version": asset_version(),
        "app_version": __version__,
        "theme_light": THEME_LIGHT,
        "theme_dark": THEME_DARK,
    }


@dataclass(frozen=True)
class SharedPicture:
    """A picture shared to the app, waiting for the page to search by it."""

    data: bytes
    filename: str
    at: float


class SharedPictures:
    """Pictures shared to the app, held in memory under random tokens for ``ttl`` seconds; at most ``keep`` at
    once (the oldest goes first), each no larger than the upload limit: a share costs a bounded amount of memory
    even before login, and nothing is written to disk."""

    def __init__(self, keep: int = 4, ttl: float = 600.0):
        self.keep, self.ttl = keep, ttl
        self._held: OrderedDict[str, SharedPicture] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes, filename: str) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._expire()
            self._held[token] = SharedPicture(data, filename, time.monotonic())
            while len(self._held) > self.keep:
                self._held.popitem(last=False)
        return token

    def get(self, token: str) -> SharedPicture | None:
        with self._lock:
            self._expire()
            return self._held.get(token)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, held in self._held.items() if now - held.at > self.ttl]:
            del self._held[token]


def shared_pictures() -> SharedPictures:
    return current_app.extensions.setdefault("materialsearch.shared", SharedPictures())


def _language() -> str:
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-TW", "zh-HK"], default="en")
    return "zh" if best.startswith("zh") else "en"


@install.get("/manifest.webmanifest")
def manifest():
    """The web app manifest, named in the browser's language (English unless it asks for Chinese)."""
    language = _language()
    body = {
        **NAMES[language],
        "lang": "zh-CN" if language == "zh" else "en",
        "dir": "ltr",
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": THEME_LIGHT,
        "theme_color": THEME_LIGHT,
        "icons": [{**icon, "src": url_for("static", filename=icon["src"])} for icon in ICONS],
        "share_target": {
            "action": url_for("install.share"),
            "method": "POST",
            "enctype": "multipart/form-data",
            "params": {"files": [{"name": SHARE_FIELD, "accept": ["image/*"]}]},
        },
    }
    response = current_app.json.response(body)
    response.mimetype = "application/manifest+json"
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-cache"
    return response


@install.get("/sw.js")
def service_worker():
    """The service worker, scoped to the whole site; revalidated on every update check."""
    shell = [url_for("install.offline")] + [
        url_for("static", filename=name, v=asset_version()) for name in OFFLINE_SHELL
    ]
    script = render_template("sw.js", cache_name=f"materialsearch-shell-{asset_version()}", shell=shell)
    return Response(
        script,
        mimetype="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@install.get("/offline")
def offline():
    """What the service worker shows when a page cannot be loaded: the NAS is unreachable."""
    return render_template("offline.html")


@install.get("/favicon.ico")
def favicon():
    return send_file(ROOT / "static" / "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)


def message_page(status: int, problem: str):
    """A plain page saying what went wrong, in English and Chinese (``templates/message.html``)."""
    return render_template("message.html", problem=problem, status=status), status


@install.post("/share")
def share():
    """The share target: hold the shared picture and open the page searching by it. Public (the phone's share
    sheet sends no CSRF token, and a session may have expired): a share without a session is held all the same,
    and the page it opens sends the browser through the login page first (the token in ``next`` keeps the
    picture). Another site posting here can only open a search by its picture, which changes nothing."""
    upload = request.files.get(SHARE_FIELD)
    if upload is None:
        files = [f for f in request.files.values() if f.filename]
        upload = files[0] if files else None
    if upload is None:
        return message_page(400, "no_picture")
    data = upload.read()
    if not data:
        return message_page(400, "no_picture")
    token = shared_pictures().put(data, Path(upload.filename or "shared-picture").name[:200])
    return redirect(url_for("pages.index", shared=token), code=303)


@install.get("/share")
def shared():
    """The picture shared under ``?token=`` (for the page to search by); 404 once it has expired."""
    held = shared_pictures().get(request.args.get("token", ""))
    if held is None:
        abort(404)
    response = Response(held.data, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = "attachment"
    response.headers["X-Filename"] = quote(held.filename)  # percent-encoded UTF-8: headers are Latin-1
    return response

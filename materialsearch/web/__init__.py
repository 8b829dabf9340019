"""The Flask app factory: builds the services once and mounts the blueprints."""

from __future__ import annotations

import io
import logging
import os
from typing import Any

from flask import Flask, Request, request
from werkzeug.exceptions import HTTPException

from config import Settings
from materialsearch.auth import Authenticator
from materialsearch.errors import ApiErrorCode
from materialsearch.services import Services
from materialsearch.web.problems import error_response

log = logging.getLogger(__name__)
EXTENSION_KEY = "materialsearch"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The page loads only its own script, styles and API; pictures may also be blob: (a chosen query picture)
# or data: (the favicon), and map tiles from the one host of MS_MAP_TILE_URL when it is set. Nothing may frame it.
IMAGE_SOURCES = "img-src 'self' blob: data:"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        IMAGE_SOURCES,
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def content_security_policy(tile_url: str = "") -> str:
    """The CSP of every response: ``CONTENT_SECURITY_POLICY``, plus the map tile host as an image source."""
    if not tile_url:
        return CONTENT_SECURITY_POLICY
    from urllib.parse import urlsplit

    parts = urlsplit(tile_url)
    return CONTENT_SECURITY_POLICY.replace(IMAGE_SOURCES, f"{IMAGE_SOURCES} {parts.scheme}://{parts.netloc}")


class InMemoryRequest(Request):
    """Uploads (query pictures) are kept in memory, never spooled to a file: they are bounded by
    MAX_CONTENT_LENGTH, decoded from bytes and dropped with the request."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(settings: Settings | dict[str, Any] | None = None, services: Services | None = None) -> Flask:
    """Build the app. ``settings`` may be a Settings, a dict of overrides on the environment, or None."""
    if settings is None:
        settings = Settings.from_env()
    elif isinstance(settings, dict):
        settings = Settings.from_env(**settings)
    app = Flask(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json.ensure_ascii = False
    built = services is None
    services = services or Services(settings)
    app.extensions[EXTENSION_KEY] = services

    from materialsearch.web import auth, items_api, library_api, people_api, search_api  # noqa: F401 (they add their routes to api)
    from materialsearch.web.api import api
    from materialsearch.web.duplicates_api import duplicates_api
    from materialsearch.web.install import install, message_page, template_values
    from materialsearch.web.pages import pages
    from materialsearch.web.reference import reference

    try:
        authn = Authenticator(settings, services.tokens)
    except Exception:
        if built:
            services.close()  # bad password settings: do not leave the database open behind the error
        raise
    auth.init_app(app, authn)
    app.register_blueprint(api)
    app.register_blueprint(duplicates_api)
    app.register_blueprint(pages)
    app.register_blueprint(reference)
    app.register_blueprint(install)
    app.context_processor(template_values)

    headers = {**SECURITY_HEADERS, "Content-Security-Policy": content_security_policy(settings.map_tile_url)}

    @app.after_request
    def security_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/") or request.path == "/healthz":
            response = error_response(exc.code, exc.description, exc.name)
            # Keep the exception's own headers (Allow on 405, Retry-After …), not its HTML content type.
            response.headers.extend([(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"])
            return response
        if exc.code == 404 and request.method in ("GET", "HEAD"):
            return message_page(404, "not_found")  # a page in both languages, not Flask's English one
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, f"{type(exc).__name__}: {exc}", code=ApiErrorCode.INTERNAL_ERROR)

    return app


def services_of(app: Flask) -> Services:
    """The services an app was built with."""
    return app.extensions[EXTENSION_KEY]

"""The Flask app factory: builds the services once and mounts the blueprints."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from config import Settings

from ..services import Services

log = logging.getLogger(__name__)
EXTENSION_KEY = "materialsearch"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json.ensure_ascii = False
    app.extensions[EXTENSION_KEY] = services or Services(settings)

    from .api import api
    from .pages import pages

    app.register_blueprint(api)
    app.register_blueprint(pages)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/") or request.path == "/healthz":
            return jsonify(error=exc.name, message=exc.description, status=exc.code), exc.code
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error="Internal Server Error", message=f"{type(exc).__name__}: {exc}", status=500), 500

    return app


def services_of(app: Flask) -> Services:
    """The services an app was built with."""
    return app.extensions[EXTENSION_KEY]

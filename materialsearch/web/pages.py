"""The search page (HTML); everything dynamic is fetched from the REST API by static/app.js."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from .. import __version__

pages = Blueprint("pages", __name__)


@pages.get("/")
def index():
    """The single search page."""
    services = current_app.extensions["materialsearch"]
    return render_template("index.html", version=__version__, page_size=services.settings.page_size)

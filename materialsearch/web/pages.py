"""The search page (HTML); everything dynamic is fetched from the REST API by static/app.js."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

pages = Blueprint("pages", __name__)


@pages.get("/")
def index():
    """The single search page."""
    settings = current_app.extensions["materialsearch"].settings
    return render_template(
        "index.html",
        page_size=settings.page_size,
        max_upload_bytes=settings.max_upload_bytes,
    )


@pages.get("/duplicates")
def duplicates():
    """The duplicates review page: groups side by side, the keeper marked; hide the others, export their paths."""
    settings = current_app.extensions["materialsearch"].settings
    return render_template("duplicates.html", page_size=settings.page_size)


@pages.get("/people")
def people():
    """The people page: the people the faces pass found, by face; name, merge, hide them; open a person's photos."""
    return render_template("people.html")

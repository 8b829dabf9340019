"""The REST API blueprint ``api`` and what its route modules share: the refusal handlers, the declarations of an
item route, and the turning of request models into the application's parameters and of its files into responses.

The routes live by area in ``search_api``, ``items_api`` and ``library_api`` (duplicates: ``duplicates_api``), all
on this one blueprint (their endpoints are ``api.<function>``). Each route declares its models with
``api_spec.validate``, parses nothing by hand, calls one application method (``materialsearch.application``) and
turns its answer into a response model.
"""

from __future__ import annotations

from flask import Blueprint, current_app, send_file

from materialsearch.application import FileToSend, Ordering, Page, Scope
from materialsearch.web.models import MAX_INT
from materialsearch.web.problems import Error, answer_refusals
from materialsearch.web.spec import TAGS, Responses, api_spec

api = Blueprint("api", __name__)
answer_refusals(api)

ITEM = f"<int(min=1, max={MAX_INT}):item_id>"  # ids beyond SQLite's integer range name nothing: 404
ITEM_ID = {"item_id": "An item id from a search result."}
NOT_FOUND = (Error, "No such indexed item (or its original is gone / no longer inside the library).")
NOT_MODIFIED = "Not modified (conditional request)."
RANGES = {  # what a video answers besides itself: it is sent with conditional and Range support
    "HTTP_206": ("video/mp4", "The requested byte range."),
    "HTTP_304": (None, NOT_MODIFIED),
    "HTTP_416": (None, "The requested range is not satisfiable."),
}


def use_cases():
    """The services of the app serving this request: its use cases are ``searching``, ``browsing``,
    ``item_files``, ``overview``, ``job_control`` and ``duplicate_review``."""
    return current_app.extensions["materialsearch"]


def item_route(operation_id: str, tag: str, query=None, **responses):
    """The declaration of a route under /api/items/{item_id} (which may always answer 404)."""
    return api_spec.validate(
        query=query,
        tags=[TAGS[tag]],
        operation_id=operation_id,
        path_parameter_descriptions=ITEM_ID,
        resp=Responses(**{"HTTP_404": NOT_FOUND, **responses}),
    )


def scope_of(params) -> Scope:
    """The items a request's filters (``LibraryFilters``) name."""
    return Scope(
        path=params.path,
        name=params.name,
        date_from=params.date_from,
        date_to=params.date_to,
        kind=params.kind,
        place=params.place,
        tags=tuple(params.tag) if params.tag else None,
        people=tuple(params.person) if params.person else None,
        include_hidden=getattr(params, "include_hidden", False),  # a text search may ask for hidden items too
    )


def page_of(params) -> Page:
    """The slice of a ranking a request's ``FilterParams`` ask for."""
    return Page(limit=params.limit, offset=params.offset, min_score=params.min_score)


def ordering_of(params) -> Ordering:
    """How a request's ``NarrowParams`` narrow and order a search."""
    return Ordering(sort=params.sort, match=params.match, exclude=tuple(params.exclude or ()), stack=params.stack)


def send(file: FileToSend):
    """The response that sends ``file`` (conditional requests and HTTP Range supported)."""
    return send_file(
        file.path, mimetype=file.media_type, conditional=True, download_name=file.download_name, max_age=file.max_age
    )

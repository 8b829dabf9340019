"""The duplicates and hidden-items routes (``/api/duplicates``, ``/api/hidden``): their own blueprint, declared
like every API route (``models.py`` → spectree → OpenAPI); the work is in ``materialsearch.organise.duplicates``."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app

from materialsearch.organise import duplicates as dup
from materialsearch.search.service import NotFound, SearchError
from materialsearch.web.api import bad_request, not_found
from materialsearch.web.models import (
    DuplicateExport,
    DuplicateGroup,
    DuplicateList,
    DuplicateMember,
    DuplicateOther,
    DuplicatesQuery,
    Error,
    HiddenList,
    ItemIds,
    ItemView,
)
from materialsearch.web.spec import TAGS, BadRequest, Responses, api_spec

duplicates_api = Blueprint("duplicates_api", __name__)
# The same answers to bad requests as every other API route (a 4xx with the message, never a 500).
duplicates_api.register_error_handler(BadRequest, bad_request)
duplicates_api.register_error_handler(SearchError, bad_request)
duplicates_api.register_error_handler(NotFound, not_found)


def _services():
    return current_app.extensions["materialsearch"]


# --- duplicates -------------------------------------------------------------------------------------------------
def _groups(kind: str = "all") -> tuple[dup.Grouping, list[dup.Group]]:
    grouping = _services().duplicates.grouping()
    return grouping, [g for g in grouping.groups if kind in ("all", g.kind)]


@duplicates_api.get("/api/duplicates")
@api_spec.validate(
    tags=[TAGS["library"]],
    operation_id="listDuplicates",
    resp=Responses(
        HTTP_200=(DuplicateList, "A page of groups."),
        HTTP_400=(Error, "A parameter is missing, malformed or out of range (the message says which)."),
    ),
)
def duplicates(query: DuplicatesQuery):
    """Groups of near-identical photos and videos, each with the best keeper and why

    Photos: copies, re-encodes, resizes, light edits and bursts — proposed by the stored vectors, confirmed by a
    perceptual hash of the thumbnails. Videos: the same video at another size, bitrate or trim, matched frame by
    frame. Computed on the first request after the index changed, then cached. Nothing is ever deleted.
    """
    services = _services()
    grouping, groups = _groups(query.kind)
    page = groups[query.offset : query.offset + query.limit]
    rows = services.store.get_items(i for g in page for i in g.ids)
    hidden = services.store.duplicates.hidden_ids()
    motions = services.store.motions_for([rows[i].path for g in page for i in g.ids if i in rows])
    body = []
    for group in page:
        members = [
            DuplicateMember(**ItemView.fields_of(rows[i], motions.get(rows[i].path)), hidden=i in hidden)
            for i in group.ids
            if i in rows
        ]
        body.append(
            DuplicateGroup(
                ids=list(group.ids),
                keeper=group.keeper,
                why=group.why,
                why_text=dup.REASON_TEXT[group.why],
                kind=group.kind,
                items=members,
            )
        )
    return DuplicateList(
        groups=body,
        total=len(groups),
        others=sum(len(g.others) for g in groups),
        compared=grouping.compared,
        took_ms=round(grouping.took_ms, 1),
    )


def _export_rows() -> list[DuplicateOther]:
    _grouping, groups = _groups()
    rows = _services().store.get_items(i for g in groups for i in g.ids)
    return [
        DuplicateOther(
            group=number,
            id=other,
            path=rows[other].path,
            size=rows[other].size,
            keeper_id=group.keeper,
            keeper_path=rows[group.keeper].path,
            why=group.why,
        )
        for number, group in enumerate(groups, start=1)
        for other in group.others
        if other in rows and group.keeper in rows
    ]


@duplicates_api.get("/api/duplicates/export.json")
@api_spec.validate(
    tags=[TAGS["library"]],
    operation_id="exportDuplicatesJson",
    resp=Responses(HTTP_200=(DuplicateExport, "Every non-keeper, with its keeper.")),
)
def duplicates_export_json():
    """The paths of every duplicate that is not its group's keeper (JSON), for your own tools"""
    return DuplicateExport(others=_export_rows())


@duplicates_api.get("/api/duplicates/export.csv")
@api_spec.validate(
    tags=[TAGS["library"]],
    operation_id="exportDuplicatesCsv",
    resp=Responses(
        HTTP_200=("text/csv", "One row per non-keeper: group, id, path, size, keeper_id, keeper_path, why.")
    ),
)
def duplicates_export_csv():
    """The paths of every duplicate that is not its group's keeper (CSV, UTF-8), for your own tools"""
    out = io.StringIO()
    fields = list(DuplicateOther.model_fields)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for row in _export_rows():
        writer.writerow(row.model_dump(mode="json"))
    return Response(
        "\ufeff" + out.getvalue(),  # a BOM: spreadsheet programs then read the (often Chinese) paths as UTF-8
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="duplicates.csv"'},
    )


def _hidden_list() -> HiddenList:
    ids = sorted(_services().store.duplicates.hidden_ids())
    return HiddenList(ids=ids, total=len(ids))


@duplicates_api.get("/api/hidden")
@api_spec.validate(
    tags=[TAGS["library"]], operation_id="listHidden", resp=Responses(HTTP_200=(HiddenList, "The hidden items."))
)
def hidden():
    """The items hidden from search results and the timeline"""
    return _hidden_list()


def _hide_route(operation_id: str):
    return api_spec.validate(
        json=ItemIds,
        tags=[TAGS["library"]],
        operation_id=operation_id,
        resp=Responses(
            HTTP_200=(HiddenList, "Every hidden item, after the change."),
            HTTP_400=(Error, 'The body is not `{"ids": [item ids]}`.'),
            HTTP_404=(Error, "An id names no item."),
        ),
    )


def _known_ids(body: ItemIds | None) -> list[int]:
    if body is None:
        raise BadRequest('send a JSON body {"ids": [item ids]}')
    found = _services().store.get_items(body.ids)
    missing = sorted(set(body.ids) - set(found))
    if missing:
        raise NotFound(f"no such items: {', '.join(map(str, missing[:20]))}")
    return body.ids


@duplicates_api.post("/api/hidden")
@_hide_route("hideItems")
def hide_items(json: ItemIds):
    """Hide items from search results and the timeline (reversible; the files are not touched)"""
    _services().store.duplicates.hide(_known_ids(json))
    return _hidden_list()


@duplicates_api.post("/api/hidden/restore")
@_hide_route("restoreItems")
def restore_items(json: ItemIds):
    """Show hidden items in results again"""
    _services().store.duplicates.unhide(_known_ids(json))
    return _hidden_list()

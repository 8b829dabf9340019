"""The duplicates and hidden-items routes (``/api/duplicates``, ``/api/hidden``): their own blueprint, declared
like every API route (models → spectree → OpenAPI); the work is ``materialsearch.application``'s ``DuplicateReview``."""

from __future__ import annotations

import csv
import dataclasses
import io

from flask import Blueprint, Response

from materialsearch.application import BadRequest
from materialsearch.web.api import use_cases
from materialsearch.web.item_models import ItemView
from materialsearch.web.library_models import (
    DuplicateExport,
    DuplicateGroup,
    DuplicateList,
    DuplicateMember,
    DuplicateOther,
    HiddenList,
)
from materialsearch.web.problems import Error, answer_refusals
from materialsearch.web.request_models import DuplicatesQuery, ItemIds
from materialsearch.web.spec import TAGS, Responses, api_spec

duplicates_api = Blueprint("duplicates_api", __name__)
answer_refusals(duplicates_api)  # the same answers to bad requests as every other API route


# --- duplicates -------------------------------------------------------------------------------------------------
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
    page = use_cases().duplicate_review.groups(query.kind, query.limit, query.offset)
    groups = [
        DuplicateGroup(
            ids=list(group.ids),
            keeper=group.keeper,
            why=group.why,
            why_text=group.why_text,
            kind=group.kind,
            items=[DuplicateMember(**ItemView.fields_of(m.entry), hidden=m.hidden) for m in group.members],
        )
        for group in page.groups
    ]
    return DuplicateList(
        groups=groups,
        total=page.total,
        others=page.others,
        compared=page.compared,
        took_ms=round(page.took_ms, 1),
    )


def _export_rows() -> list[DuplicateOther]:
    return [DuplicateOther(**dataclasses.asdict(copy)) for copy in use_cases().duplicate_review.copies()]


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


def _hidden_list(ids: list[int]) -> HiddenList:
    return HiddenList(ids=ids, total=len(ids))


@duplicates_api.get("/api/hidden")
@api_spec.validate(
    tags=[TAGS["library"]], operation_id="listHidden", resp=Responses(HTTP_200=(HiddenList, "The hidden items."))
)
def hidden():
    """The items hidden from search results and the timeline"""
    return _hidden_list(use_cases().duplicate_review.hidden())


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


def _ids(body: ItemIds | None) -> list[int]:
    if body is None:
        raise BadRequest('send a JSON body {"ids": [item ids]}')
    return body.ids


@duplicates_api.post("/api/hidden")
@_hide_route("hideItems")
def hide_items(json: ItemIds):
    """Hide items from search results and the timeline (reversible; the files are not touched)"""
    return _hidden_list(use_cases().duplicate_review.hide(_ids(json)))


@duplicates_api.post("/api/hidden/restore")
@_hide_route("restoreItems")
def restore_items(json: ItemIds):
    """Show hidden items in results again"""
    return _hidden_list(use_cases().duplicate_review.restore(_ids(json)))

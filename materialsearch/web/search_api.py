"""The search routes: by words, an example picture, similarity to an item or a file name; the query picture's
preview; zero-shot classification."""

from __future__ import annotations

import dataclasses

from flask import Response

from materialsearch.application import BadRequest, SearchAnswer
from materialsearch.errors import ApiErrorCode as Code
from materialsearch.web.api import api, ordering_of, page_of, scope_of, use_cases
from materialsearch.web.item_models import SearchHit, SearchResult, UnderstoodQuery
from materialsearch.web.library_models import ClassifyResult, LabelScore
from materialsearch.web.problems import Error
from materialsearch.web.request_models import ClassifyItem, ClassifyUpload, ImageSearch, ImageUpload, TextSearch
from materialsearch.web.spec import TAGS, Responses, api_spec


def _result(answer: SearchAnswer) -> SearchResult:
    body = SearchResult(
        results=[SearchHit.of_found(found) for found in answer.results],
        total=answer.total,
        took_ms=answer.took_ms,
        scores=answer.scores,
    )
    if answer.more is not None:
        body.more = answer.more
    if answer.reindexing:  # after a model change: say that results come only from what is re-embedded so far
        body.reindexing = answer.reindexing
    if answer.understood is not None:
        body.understood = UnderstoodQuery.of(answer.understood)
    return body


@api.get("/api/search")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="searchByText",
    resp=Responses(
        HTTP_200=(SearchResult, "Ranked results, best first."),
        HTTP_400=(Error, "A parameter is missing, malformed or out of range (the message says which)."),
        HTTP_404=(Error, "`like` names an item that does not exist or is not indexed."),
    ),
)
def search_get(query: TextSearch):
    """Search by text, by similarity to an indexed item, or by file name / folder

    Give `q` (a sentence, Chinese or English), `text` (words read in photos) or both, or `like` (an item id; the
    item itself is left out of the results). A `q` also looks in the photos' text: a photo whose text contains it
    ranks at or near the top (reciprocal-rank fusion; results found by text carry the line as `snippet`). With
    none of them, `name` and/or `path` alone are a keyword search over file names / paths, ranked by match quality
    (exact name, then prefix, then word start, then anywhere; ties newest first); with them, they only filter.
    `sort`, `match`, `exclude` and `stack` narrow and order any of these.

    `q` is read as a sentence first (`parse=false` turns it off): "去年夏天在伦敦拍的视频", "red bus in London",
    'sign saying "exit"', "beach -people", "2019年的雪景" — its dates, place, quoted words, exclusions, kind, `#tags`
    and file names become the filters above (those given as parameters win), and `understood` says what it read;
    the words left go to the model, and when none are left the filters alone answer, newest first.
    """
    return _result(
        use_cases().searching.find(
            scope_of(query),
            page_of(query),
            ordering_of(query),
            q=query.q,
            text=query.text,
            like=query.like,
            t=query.t,
            parse=query.parse,
        )
    )


@api.post("/api/search")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="searchByImage",
    resp=Responses(
        HTTP_200=(SearchResult, "Ranked results, best first."),
        HTTP_400=(Error, "No `image` field, an unreadable picture, or a bad option."),
        HTTP_413=(Error, "The request is larger than MS_MAX_UPLOAD_BYTES."),
    ),
)
def search_post(form: ImageSearch):
    """Search with an example picture (optionally refined with words)

    Multipart form: the picture in `image`; the same options as the GET search as form fields. The picture is
    decoded in memory (its type is sniffed from its content, decompression bombs are refused) and never stored.
    """
    if form is None:  # not a form at all (spectree validates only form bodies)
        raise BadRequest("send the query picture as a multipart form field named 'image'", Code.MISSING_IMAGE)
    answer = use_cases().searching.find_like_picture(
        form.image.read(), form.q, scope_of(form), page_of(form), ordering_of(form), parse=form.parse
    )
    return _result(answer)


@api.post("/api/query-preview")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="previewQueryImage",
    resp=Responses(
        HTTP_200=("image/jpeg", "A thumbnail-sized JPEG of the picture."),
        HTTP_400=(Error, "No `image` field, or an unreadable picture."),
        HTTP_413=(Error, "The request is larger than MS_MAX_UPLOAD_BYTES."),
    ),
)
def query_preview(form: ImageUpload):
    """A JPEG of a query picture the browser cannot show itself (HEIC, TIFF)

    Multipart form with the picture in `image`; decoded in memory like a search picture, never stored.
    """
    if form is None or form.image is None:
        raise BadRequest("send the picture as a multipart form field named 'image'", Code.MISSING_IMAGE)
    jpeg = use_cases().searching.preview_picture(form.image.read())
    return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


# --- classification --------------------------------------------------------------------------------------------
@api.post("/api/classify")
@api_spec.validate(
    tags=[TAGS["search"]],
    operation_id="classify",
    resp=Responses(
        HTTP_200=(ClassifyResult, "Each label's probability and cosine, most probable first."),
        HTTP_400=(Error, "No or too many labels, a template without `{}`, an unreadable picture, or a bad option."),
        HTTP_404=(Error, "`item_id` names no indexed item, or the video has no indexed frame at `t`."),
        HTTP_413=(Error, "The request is larger than MS_MAX_UPLOAD_BYTES."),
    ),
)
def classify(json: ClassifyItem, form: ClassifyUpload):
    """Zero-shot classification of an indexed item or an uploaded picture

    JSON `{labels, item_id, t?, template?}`, or a multipart form with `image`, `labels` and `template`. The
    probability is cn_clip's own: the softmax over the labels of `exp(logit_scale) × cosine`, as its
    `model(image, text)` gives `logits_per_image`. A video without `t` is classified by its mean frame vector.
    """
    searching = use_cases().searching
    if form is not None:
        classified = searching.classify_picture(form.image.read(), form.labels, form.template)
    elif json is not None:
        classified = searching.classify_item(json.item_id, json.t, json.labels, json.template)
    else:
        raise BadRequest("send JSON {labels, item_id} or a multipart form with image and labels")
    return ClassifyResult(
        results=[LabelScore(**dataclasses.asdict(s)) for s in classified.scores], took_ms=classified.took_ms
    )

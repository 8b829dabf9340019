"""The OpenAPI 3.1 document of the REST API (``/api/openapi.json``) and a readable docs page (``/api/docs``).

The document is plain data built here, in one place: to document a new route, add its entry to ``PATHS`` (and
any new schema to ``SCHEMAS``). ``tests/test_openapi.py`` fails for any route under ``/api`` that is missing,
and a schemathesis run checks the live app against the document. Limits that come from settings (page sizes,
upload size) are filled in from the running app's settings.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template

from .. import __version__

openapi = Blueprint("openapi", __name__)

JSON = "application/json"
MAX_INT = 2**63 - 1  # ids and offsets: SQLite's integer range


def ref(name: str) -> dict:
    """A reference to a schema in ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    """``schema`` or null (OpenAPI 3.1 / JSON Schema style)."""
    return {"anyOf": [schema, {"type": "null"}]}


def json_response(description: str, schema: dict) -> dict:
    """A response with a JSON body."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(description: str) -> dict:
    """An error response: ``{"error", "message", "status"}``."""
    return json_response(description, ref("Error"))


# Every operation may answer these when a password is set (see the security schemes).
AUTH_ERRORS = {
    "401": error("Login is on and the request has no valid session cookie or API token."),
    "403": error("A session-authenticated state-changing request without the right X-CSRF-Token header."),
}
NOT_FOUND = {"404": error("No such indexed item (or its original is gone / no longer inside the library).")}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error", "message", "status"],
        "properties": {
            "error": {"type": "string", "description": "HTTP reason phrase, e.g. `Bad Request`."},
            "message": {"type": "string", "description": "What was wrong, for people."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
        },
    },
    "Item": {
        "type": "object",
        "required": [
            "id",
            "path",
            "name",
            "kind",
            "taken_at",
            "width",
            "height",
            "size",
            "thumbnail_url",
            "file_url",
            "view_url",
        ],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "path": {"type": "string", "description": "Absolute path of the file on the server."},
            "name": {"type": "string", "description": "File name."},
            "kind": {"type": "string", "enum": ["image", "video"]},
            "taken_at": nullable(
                {"type": "string", "description": "Capture time, ISO 8601 camera-local time (no offset)."}
            ),
            "width": nullable({"type": "integer", "minimum": 0}),
            "height": nullable({"type": "integer", "minimum": 0}),
            "size": {"type": "integer", "minimum": 0, "description": "File size in bytes."},
            "thumbnail_url": {"type": "string", "description": "JPEG thumbnail (cacheable; versioned by `v`)."},
            "file_url": {"type": "string", "description": "The original file."},
            "view_url": {
                "type": "string",
                "description": "What a browser should show large: the original, or a JPEG preview for HEIC/TIFF.",
            },
            "duration": nullable({"type": "number", "minimum": 0, "description": "Videos: length in seconds."}),
            "playable": {"type": "boolean", "description": "Videos: whether browsers play the original as is."},
            "play_url": {
                "type": "string",
                "description": "Videos: what a <video> should play — the original, or `/stream` (an H.264 version).",
            },
            "live": {"type": "boolean", "description": "Photos: an iPhone Live Photo (its movie is `motion_url`)."},
            "motion_photo": {"type": "boolean", "description": "Photos: an Android motion photo with a video inside."},
            "motion_url": nullable(
                {"type": "string", "description": "Photos: the Live Photo movie or motion photo video, as MP4."}
            ),
        },
    },
    "SearchHit": {
        "allOf": [
            ref("Item"),
            {
                "type": "object",
                "required": ["score"],
                "properties": {
                    "score": {
                        "type": "number",
                        "minimum": -1,
                        "maximum": 1,
                        "description": "Cosine similarity between the query and the item (a video: the moment's "
                        "best frame).",
                    },
                    "start": {"type": "number", "minimum": 0, "description": "Video moments: start, in seconds."},
                    "end": {"type": "number", "minimum": 0, "description": "Video moments: end, in seconds."},
                    "time": {
                        "type": "number",
                        "minimum": 0,
                        "description": "Video moments: the best frame's time, in seconds (its picture is "
                        "`thumbnail_url`).",
                    },
                    "clip_url": {"type": "string", "description": "Video moments: the moment as an MP4 clip."},
                },
            },
        ]
    },
    "SearchResult": {
        "type": "object",
        "required": ["results", "total", "took_ms"],
        "properties": {
            "results": {"type": "array", "items": ref("SearchHit")},
            "total": {
                "type": "integer",
                "minimum": 0,
                "description": "How many hits (photos and video moments) match in all; while only part of the "
                "ranking was needed, the number of matching items (a lower bound).",
            },
            "took_ms": {"type": "number", "minimum": 0},
            "reindexing": ref("Reindexing"),
        },
    },
    "ProblemFile": {
        "type": "object",
        "required": ["id", "path", "kind", "status", "reason", "size"],
        "properties": {
            "id": {"type": "integer"},
            "path": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string", "enum": ["error", "skipped"]},
            "reason": nullable({"type": "string"}),
            "size": {"type": "integer", "minimum": 0},
        },
    },
    "ProblemList": {
        "type": "object",
        "required": ["errors", "total"],
        "properties": {
            "errors": {"type": "array", "items": ref("ProblemFile")},
            "total": {"type": "integer", "minimum": 0},
        },
    },
    "Reindexing": {
        "type": "object",
        "description": "After a model change, while items still wait to be embedded with the new model.",
        "required": ["pending", "running", "message"],
        "properties": {
            "pending": {"type": "integer", "minimum": 1},
            "running": {"type": "boolean", "description": "Whether the re-embedding scan is running now."},
            "message": {"type": "string"},
        },
    },
    "ScanStatus": {
        "type": "object",
        "required": ["state", "progress", "last"],
        "properties": {
            "state": {"type": "string", "enum": ["idle", "scanning", "paused"]},
            "paused_reason": nullable(
                {"type": "string", "description": "Why it is paused (by a user, outside MS_SCAN_WINDOW)."}
            ),
            "next_run": nullable({"type": "string", "description": "Next scheduled scan (ISO 8601)."}),
            "schedule": {
                "type": "object",
                "properties": {
                    "active": {"type": "boolean"},
                    "cron": nullable({"type": "string"}),
                    "interval_s": nullable({"type": "integer", "minimum": 1}),
                    "window": nullable({"type": "string"}),
                },
            },
            "can_scan": {"type": "boolean", "description": "False in a process that does not own the data dir."},
            "refusal": nullable({"type": "string", "description": "Why this process cannot scan."}),
            "progress": nullable(
                {
                    "type": "object",
                    "description": "The running scan (null when idle).",
                    "required": ["phase", "done", "total", "current", "errors", "started_at"],
                    "properties": {
                        "phase": {"type": "string"},
                        "done": {"type": "integer", "minimum": 0},
                        "total": {"type": "integer", "minimum": 0},
                        "current": {"type": "string", "description": "File being worked on."},
                        "errors": {"type": "integer", "minimum": 0},
                        "started_at": nullable({"type": "string"}),
                        "found": {"type": "integer", "minimum": 0, "description": "Files seen by the walk."},
                        "rate": nullable({"type": "number", "minimum": 0, "description": "Items/s, last minute."}),
                        "eta_s": nullable({"type": "number", "minimum": 0, "description": "Seconds left."}),
                        "trigger": nullable({"type": "string", "description": "manual, scheduled, startup…"}),
                    },
                }
            ),
            "last": nullable(
                {
                    "type": "object",
                    "description": "The last finished scan (null before the first).",
                    "required": ["finished_at", "seconds", "summary", "stats", "error"],
                    "properties": {
                        "finished_at": {"type": "string"},
                        "seconds": {"type": "number", "minimum": 0},
                        "summary": {"type": "string"},
                        "stats": nullable({"type": "object", "additionalProperties": True}),
                        "error": nullable({"type": "string"}),
                    },
                }
            ),
        },
    },
    "Status": {
        "type": "object",
        "required": ["counts", "scan", "model", "index", "library"],
        "properties": {
            "counts": {
                "type": "object",
                "required": ["images", "videos", "live_photos", "errors", "skipped", "pending"],
                "properties": {
                    name: {"type": "integer", "minimum": 0}
                    for name in ("images", "videos", "live_photos", "errors", "skipped", "pending")
                },
            },
            "scan": ref("ScanStatus"),
            "reindexing": nullable(ref("Reindexing")),
            "model": {
                "type": "object",
                "required": ["name", "arch", "dim", "device", "notice"],
                "properties": {
                    "name": {"type": "string"},
                    "arch": {"type": "string"},
                    "dim": {"type": "integer", "minimum": 1},
                    "device": {"type": "string"},
                    "notice": nullable({"type": "string", "description": "Set after the model changed."}),
                },
            },
            "index": {
                "type": "object",
                "required": ["vectors"],
                "properties": {"vectors": {"type": "integer", "minimum": 0}},
            },
            "library": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ScanStarted": {
        "type": "object",
        "required": ["started", "status"],
        "properties": {"started": {"const": True}, "status": ref("ScanStatus")},
    },
    "Health": {
        "type": "object",
        "required": ["ok"],
        "properties": {"ok": {"const": True}},
    },
}

# Query parameters shared by the search operations; {max_page_size} etc. are filled in from the settings.
FILTER_PARAMS: list[dict] = [
    {
        "name": "limit",
        "in": "query",
        "description": "Results per page (default MS_PAGE_SIZE, at most MS_MAX_PAGE_SIZE).",
        "schema": {"type": "integer", "minimum": 1, "maximum": "{max_page_size}", "default": "{page_size}"},
    },
    {
        "name": "offset",
        "in": "query",
        "description": "How many results to skip.",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT, "default": 0},
    },
    {
        "name": "path",
        "in": "query",
        "description": "Only items whose path contains this text.",
        "schema": {"type": "string"},
    },
    {
        "name": "date_from",
        "in": "query",
        "description": "Taken on or after: `YYYY-MM-DD` or an ISO 8601 date-time (camera-local time).",
        "schema": {"type": "string"},
    },
    {
        "name": "date_to",
        "in": "query",
        "description": "Taken on or before (a bare date includes that whole day).",
        "schema": {"type": "string"},
    },
    {
        "name": "kind",
        "in": "query",
        "description": "Which items: all (default), images or videos.",
        "schema": {"type": "string", "enum": ["all", "image", "video"], "default": "all"},
    },
    {
        "name": "min_score",
        "in": "query",
        "description": "Only results at least this similar (cosine); `total` then counts only those.",
        "schema": {"type": "number", "minimum": -1, "maximum": 1},
    },
]

ITEM_ID = {
    "name": "item_id",
    "in": "path",
    "required": True,
    "description": "An item id from a search result.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
}
VERSION_PARAM = {
    "name": "v",
    "in": "query",
    "description": "Cache-busting version from `thumbnail_url` / `view_url` (ignored by the server).",
    "schema": {"type": "string"},
}

SEARCH_ERRORS = {"400": error("A parameter is missing, malformed or out of range (the message says which).")}
FRAME_TIME = {
    "name": "t",
    "in": "query",
    "description": "Videos: the time of one of the video's indexed frames, in milliseconds (a moment's `time` × 1000).",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
}
VIDEO_BODY = {"video/mp4": {}}
RANGE_RESPONSES = {
    "206": {"description": "The requested byte range.", "content": VIDEO_BODY},
    "304": {"description": "Not modified (conditional request)."},
    "416": {"description": "The requested range is not satisfiable."},
}

PATHS: dict[str, dict] = {
    "/api/search": {
        "get": {
            "operationId": "searchByText",
            "summary": "Search by text, or for items similar to an indexed item",
            "description": "Give exactly one of `q` (a sentence, Chinese or English) and `like` (an item id; the "
            "item itself is left out of the results).",
            "tags": ["search"],
            "parameters": [
                {"name": "q", "in": "query", "description": "What to look for.", "schema": {"type": "string"}},
                {
                    "name": "like",
                    "in": "query",
                    "description": "Find items similar to this indexed item (a video: its mean frame).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                },
                {**FRAME_TIME, "description": "With `like` on a video: similar to its frame at `t` ms."},
                *FILTER_PARAMS,
            ],
            "responses": {
                "200": json_response("Ranked results, best first.", ref("SearchResult")),
                **SEARCH_ERRORS,
                "404": error("`like` names an item that does not exist or is not indexed."),
                **AUTH_ERRORS,
            },
        },
        "post": {
            "operationId": "searchByImage",
            "summary": "Search with an example picture (optionally refined with words)",
            "description": "Multipart form: the picture in `image`; the same options as the GET search as form "
            "fields. The picture is decoded in memory (its type is sniffed from its content, decompression "
            "bombs are refused) and never stored.",
            "tags": ["search"],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {"type": "string", "format": "binary", "description": "The picture."},
                                "q": {"type": "string", "description": "Words that refine the picture."},
                                **{p["name"]: p["schema"] for p in FILTER_PARAMS},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": json_response("Ranked results, best first.", ref("SearchResult")),
                "400": error("No `image` field, an unreadable picture, or a bad option."),
                "413": error("The request is larger than MS_MAX_UPLOAD_BYTES ({max_upload_bytes} bytes)."),
                **AUTH_ERRORS,
            },
        },
    },
    "/api/items/{item_id}": {
        "get": {
            "operationId": "getItem",
            "summary": "One indexed item",
            "tags": ["items"],
            "parameters": [ITEM_ID],
            "responses": {"200": json_response("The item.", ref("Item")), **NOT_FOUND, **AUTH_ERRORS},
        }
    },
    "/api/items/{item_id}/thumbnail": {
        "get": {
            "operationId": "getThumbnail",
            "summary": "The item's thumbnail (JPEG, upright, long side MS_THUMBNAIL_SIZE)",
            "tags": ["items"],
            "parameters": [ITEM_ID, VERSION_PARAM, FRAME_TIME],
            "responses": {
                "200": {"description": "JPEG image.", "content": {"image/jpeg": {}}},
                "304": {"description": "Not modified (conditional request)."},
                "400": error("`t` is not a whole number of milliseconds."),
                **NOT_FOUND,
                **AUTH_ERRORS,
            },
        }
    },
    "/api/items/{item_id}/preview": {
        "get": {
            "operationId": "getPreview",
            "summary": "A large JPEG rendition (for HEIC/TIFF, which browsers cannot show)",
            "tags": ["items"],
            "parameters": [ITEM_ID, VERSION_PARAM],
            "responses": {
                "200": {"description": "JPEG image.", "content": {"image/jpeg": {}}},
                "304": {"description": "Not modified (conditional request)."},
                **NOT_FOUND,
                **AUTH_ERRORS,
            },
        }
    },
    "/api/items/{item_id}/file": {
        "get": {
            "operationId": "getFile",
            "summary": "The original file (only for indexed items; never by path)",
            "description": "Supports conditional requests and HTTP Range (`206`).",
            "tags": ["items"],
            "parameters": [ITEM_ID],
            "responses": {
                "200": {"description": "The file, with its own media type.", "content": {"*/*": {}}},
                "206": {"description": "The requested byte range.", "content": {"*/*": {}}},
                "304": {"description": "Not modified (conditional request)."},
                **NOT_FOUND,
                "416": {"description": "The requested range is not satisfiable."},
                **AUTH_ERRORS,
            },
        }
    },
    "/api/items/{item_id}/clip": {
        "get": {
            "operationId": "getClip",
            "summary": "An MP4 (H.264/AAC) of exactly [start, end) seconds of a video",
            "description": "Re-encoded so it starts on the first frame at or after `start` (a keyframe copy would "
            "start early or black); cached under the data dir; at most MS_MAX_CLIP_SECONDS ({max_clip_seconds} s). "
            "`end` past the end of the video is cut to it.",
            "tags": ["videos"],
            "parameters": [
                ITEM_ID,
                {"name": "start", "in": "query", "required": True, "schema": {"type": "number", "minimum": 0}},
                {"name": "end", "in": "query", "required": True, "schema": {"type": "number", "minimum": 0}},
            ],
            "responses": {
                "200": {"description": "The clip.", "content": VIDEO_BODY},
                **RANGE_RESPONSES,
                "400": error("Not a video, or `start`/`end` missing, malformed, reversed or too far apart."),
                **NOT_FOUND,
                "422": error("ffmpeg could not cut this video."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/items/{item_id}/stream": {
        "get": {
            "operationId": "getPlayableVideo",
            "summary": "The video in a form browsers play (the original, or an H.264 rendition made on demand)",
            "description": "For HEVC, MPEG-4, MKV…: `202` with `Retry-After` while the rendition is being made, "
            "then the MP4 (cached).",
            "tags": ["videos"],
            "parameters": [ITEM_ID, VERSION_PARAM],
            "responses": {
                "200": {"description": "The video.", "content": {"video/*": {}}},
                "202": json_response(
                    "A browser-playable version is being made; ask again after `Retry-After` seconds.",
                    {
                        "type": "object",
                        "required": ["state", "message"],
                        "properties": {"state": {"const": "working"}, "message": {"type": "string"}},
                    },
                ),
                **RANGE_RESPONSES,
                "400": error("The item is not a video."),
                **NOT_FOUND,
                "422": error("ffmpeg could not convert this video."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/items/{item_id}/motion": {
        "get": {
            "operationId": "getMotion",
            "summary": "The motion of a Live Photo or Android motion photo, as a video browsers play",
            "tags": ["videos"],
            "parameters": [ITEM_ID, VERSION_PARAM],
            "responses": {
                "200": {"description": "The motion.", "content": VIDEO_BODY},
                **RANGE_RESPONSES,
                "404": error("No such indexed item, or it has no motion."),
                "422": error("ffmpeg could not convert the motion."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/errors": {
        "get": {
            "operationId": "listProblems",
            "summary": "Files that could not be indexed or were skipped, each with its reason",
            "tags": ["library"],
            "parameters": FILTER_PARAMS[:2],
            "responses": {
                "200": json_response("A page of problem files.", ref("ProblemList")),
                **SEARCH_ERRORS,
                **AUTH_ERRORS,
            },
        }
    },
    "/api/status": {
        "get": {
            "operationId": "getStatus",
            "summary": "Counts, scan state and progress, last scan, model and index size",
            "tags": ["library"],
            "responses": {"200": json_response("The status.", ref("Status")), **AUTH_ERRORS},
        }
    },
    "/api/scan": {
        "post": {
            "operationId": "startScan",
            "summary": "Start a background scan of the library",
            "tags": ["library"],
            "responses": {
                "202": json_response("The scan started.", ref("ScanStarted")),
                "400": error("No library is configured (MS_LIBRARY is empty)."),
                "409": error("A scan is already running, or another process owns the data dir."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/scan/pause": {
        "post": {
            "operationId": "pauseScan",
            "summary": "Pause the running scan after its current batch (the index is saved first)",
            "tags": ["library"],
            "responses": {
                "200": json_response("The scan status, now paused.", ref("ScanStatus")),
                "409": error("No scan is running."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/scan/resume": {
        "post": {
            "operationId": "resumeScan",
            "summary": "Resume a paused scan (also outside the scan window)",
            "tags": ["library"],
            "responses": {
                "200": json_response("The scan status, now scanning.", ref("ScanStatus")),
                "409": error("No scan is running."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/scan/cancel": {
        "post": {
            "operationId": "cancelScan",
            "summary": "Stop the running scan after its current batch, keeping what is done",
            "tags": ["library"],
            "responses": {
                "202": json_response("The scan is stopping.", ref("ScanStatus")),
                "409": error("No scan is running."),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "tags": ["meta"],
            "responses": {
                "200": json_response("The OpenAPI document.", {"type": "object"}),
                **AUTH_ERRORS,
            },
        }
    },
    "/api/docs": {
        "get": {
            "operationId": "getApiDocs",
            "summary": "This document as a readable page",
            "tags": ["meta"],
            "responses": {
                "200": {"description": "HTML page.", "content": {"text/html": {}}},
                "302": {"description": "Login is on and there is no session: redirect to the login page."},
            },
        }
    },
    "/healthz": {
        "get": {
            "operationId": "health",
            "summary": "Liveness: 200 when the app and its database answer (no login needed; reveals nothing)",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": json_response("Alive.", ref("Health"))},
        }
    },
}


def _fill(node: Any, values: dict[str, Any]) -> Any:
    """Replace "{name}" strings (whole values) by settings values, and format them inside descriptions."""
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, str) and node.startswith("{") and node.endswith("}") and node[1:-1] in values:
        return values[node[1:-1]]
    if isinstance(node, str) and "{" in node:
        for name, value in values.items():
            node = node.replace("{" + name + "}", str(value))
    return node


def openapi_document(settings) -> dict:
    """The whole OpenAPI document, with the limits of these ``settings``."""
    values = {
        "page_size": settings.page_size,
        "max_page_size": settings.max_page_size,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_clip_seconds": settings.max_clip_seconds,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "materialsearch",
            "version": __version__,
            "description": "Search your own photos by a sentence or an example picture. JSON everywhere; errors "
            "are `{error, message, status}` with a 4xx status for bad input. When a password is set "
            "(MS_PASSWORD), every operation except `/healthz` needs a session cookie (log in at `/login`) or "
            "an API token (`python -m materialsearch token create NAME`) sent as `Authorization: Bearer …`.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "search", "description": "Find items by words, pictures or similarity."},
            {"name": "items", "description": "Indexed items and their files."},
            {"name": "videos", "description": "Video clips, playable renditions and Live Photo motion."},
            {"name": "library", "description": "Scanning and what it found."},
            {"name": "meta", "description": "The API itself and health."},
        ],
        "paths": _fill(copy.deepcopy(PATHS), values),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `python -m materialsearch token create NAME`.",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "materialsearch_session",
                    "description": "Set by logging in at /login. State-changing requests also need the "
                    "`X-CSRF-Token` header (the page's `<meta name=csrf-token>`).",
                },
            },
        },
        # Either scheme, or none when no password is set.
        "security": [{"bearerToken": []}, {"sessionCookie": []}, {}],
    }


@openapi.get("/api/openapi.json")
def document():
    """The OpenAPI document."""
    return jsonify(openapi_document(current_app.extensions["materialsearch"].settings))


@openapi.get("/api/docs")
def docs():
    """The API reference as a page (self-contained: no CDN, so it works offline and under the CSP)."""
    spec = openapi_document(current_app.extensions["materialsearch"].settings)
    operations = [
        {"path": path, "method": method.upper(), **operation}
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    return render_template("api_docs.html", spec=spec, operations=operations, schema_text=_schema_text)


def _schema_text(schema: dict | None) -> str:
    """A one-line description of a schema for the docs page."""
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_text(s) for s in schema["anyOf"])
    if "allOf" in schema:
        return " + ".join(_schema_text(s) for s in schema["allOf"])
    if "const" in schema:
        return repr(schema["const"]).lower()
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_schema_text(schema.get('items'))}"
    bounds = []
    if "enum" in schema:
        bounds.append(" | ".join(str(v) for v in schema["enum"]))
    if "minimum" in schema:
        bounds.append(f"≥ {schema['minimum']}")
    if "maximum" in schema:
        bounds.append(f"≤ {schema['maximum']}")
    if "default" in schema:
        bounds.append(f"default {schema['default']}")
    if schema.get("format") == "binary":
        kind = "file"
    return kind + (f" ({', '.join(bounds)})" if bounds else "")

"""Problem answers: the ``Error`` body every failed API request gets, and the error handlers that turn the
application's refusals (``BadRequest``, ``NotFound``, ``ApiError``, a bad cursor or query) into it. Every API
blueprint installs them with ``answer_refusals``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from flask import Blueprint, current_app
from flask import Response as FlaskResponse
from pydantic import Field

from materialsearch.application import ApiError, BadRequest, CursorError, NotFound, SearchError
from materialsearch.errors import ApiErrorCode
from materialsearch.web.models import Body


class Error(Body):
    """Every error: ``{error, code, message, status}`` with the HTTP status."""

    error: Annotated[str, Field(description="HTTP reason phrase, e.g. `Bad Request`.")]
    code: Annotated[
        ApiErrorCode,
        Field(
            description="What went wrong, as a stable code (for translations and scripts):\n" + ApiErrorCode.described()
        ),
    ]
    message: Annotated[str, Field(description="What was wrong, for people.")]
    status: Annotated[int, Field(ge=400, le=599)]


def error_response(
    status: int, message: str, name: str | None = None, code: ApiErrorCode | None = None
) -> FlaskResponse:
    """The JSON answer to a failed request (``name``: the reason phrase, by default the standard one; ``code``:
    by default the status's general code)."""
    body = Error(
        error=name or HTTPStatus(status).phrase,
        code=code or ApiErrorCode.for_status(status),
        message=message,
        status=status,
    )
    return current_app.response_class(body.model_dump_json(), status=status, mimetype="application/json")


def bad_request(exc):
    """A refusal of bad input: 400 with its code (``bad_request`` unless it names a more precise one)."""
    return error_response(400, str(exc), code=getattr(exc, "code", ApiErrorCode.BAD_REQUEST))


def not_found(exc):
    """An item asked for does not exist or is not indexed: 404."""
    return error_response(404, str(exc), code=ApiErrorCode.NOT_FOUND)


def api_error(exc: ApiError):
    """A request the application cannot answer: its own status and code."""
    return error_response(exc.status, str(exc), code=exc.code)


def answer_refusals(blueprint: Blueprint) -> None:
    """Answer the application's refusals on ``blueprint``'s routes as JSON errors (a 4xx with the message, never
    a 500)."""
    for refusal in (BadRequest, SearchError, CursorError):
        blueprint.register_error_handler(refusal, bad_request)
    blueprint.register_error_handler(NotFound, not_found)
    blueprint.register_error_handler(ApiError, api_error)

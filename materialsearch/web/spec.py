"""How the REST API is validated and documented: one spectree instance, from the routes' models and docstrings.

A route declares its query/form model and its responses with ``@api_spec.validate(...)``; spectree validates each
request against the model (invalid input becomes a JSON 400, see ``_refuse_invalid``) and generates the OpenAPI
document from the same declarations. The route's docstring is its summary (first line) and description (rest).
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Response as FlaskResponse
from pydantic import ValidationError
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree, Tag
from spectree.plugins.flask_plugin import FlaskPlugin
from spectree.utils import parse_code

from materialsearch import __version__
from materialsearch.application import BadRequest
from materialsearch.errors import ApiErrorCode
from materialsearch.web.models import fill_settings
from materialsearch.web.problems import Error

JSON = "application/json"
_GENERATING = threading.Lock()


class Responses(Response):
    """spectree's responses of a route, where a body may also be a file: ``HTTP_200=("image/jpeg", "meaning")``.

    Every status a route answers is declared with it; spectree's automatic validation-error entry is not added
    (routes that validate input declare their 400). ``auth`` adds the 401/403 that login may answer.
    """

    def __init__(self, *, auth: bool = True, **responses):
        if auth:
            responses.setdefault(
                "HTTP_401", (Error, "Login is on and the request has no valid session cookie or API token.")
            )
            responses.setdefault(
                "HTTP_403",
                (Error, "A session-authenticated state-changing request without the right X-CSRF-Token header."),
            )
        self.files = {code: value for code, value in responses.items() if isinstance(value[0], str)}
        super().__init__(**{code: value for code, value in responses.items() if code not in self.files})

    def add_model(self, code: int, model: Any, replace: bool = True, description: str | None = None) -> None:
        """Ignored: spectree calls this to add its validation-error model; ours is declared per route."""

    def generate_spec(self, naming_strategy=None) -> dict[str, Any]:
        """The responses object, with the file bodies."""
        spec = super().generate_spec(naming_strategy) if naming_strategy else super().generate_spec()
        for code, (media, description) in self.files.items():
            spec[parse_code(code)] = {"description": description, "content": {media: {}}}
        return dict(sorted(spec.items()))


def _one_or_all(values: list):
    """A field sent once is its value; sent several times (``exclude``), the list of them."""
    return values[0] if len(values) == 1 else values


class _FlaskPlugin(FlaskPlugin):
    """spectree's Flask plugin, adapted to this API."""

    def parse_path(self, route, path_parameter_descriptions):
        """Path parameters; integer ids are 64-bit (SQLite's), not spectree's default int32."""
        path, parameters = super().parse_path(route, path_parameter_descriptions)
        for parameter in parameters:
            parameter["schema"].pop("format", None)
        return path, parameters

    def request_validation(self, request, *args, **kwargs):
        """An invalid request is a BadRequest at once: spectree's own error list would repeat the input, which
        cannot be serialised when it holds an uploaded file (a form with a file and a missing field)."""
        try:
            super().request_validation(request, *args, **kwargs)
        except ValidationError as error:
            raise BadRequest(validation_message(error), validation_code(error)) from None

    def fill_form(self, request) -> dict:
        """A form's fields may also come in the query string (as they always could)."""
        values = {key: _one_or_all(request.values.getlist(key)) for key in request.values}
        return values | {key: request.files.get(key) for key in request.files}

    def validate_response(self, resp, resp_model, skip_validation, force_resp_serialize):
        """JSON responses are checked against their model; files (streamed, ranged) pass untouched, unread."""
        if isinstance(resp, FlaskResponse) and resp.mimetype != JSON:
            return resp, None
        return super().validate_response(resp, resp_model, skip_validation, force_resp_serialize)


def validation_message(error: ValidationError) -> str:
    """One sentence per problem, naming the parameter (``limit: Input should be …, got 'ten'``); a rule across
    parameters (``give either q or like, not both``) is its own sentence."""
    parts = []
    for problem in error.errors(include_url=False, include_context=False):
        where = ".".join(str(p) for p in problem["loc"])
        text = problem["msg"].removeprefix("Value error, ")
        if problem["type"] != "value_error" and isinstance(problem.get("input"), (str, int, float)):
            text += f", got {problem['input']!r}"
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)


def validation_code(error: ValidationError) -> ApiErrorCode:
    """The code of a refused request: a validator's own (``CodedValueError``), else ``invalid_parameter``."""
    for problem in error.errors(include_url=False):
        code = getattr((problem.get("ctx") or {}).get("error"), "code", None)
        if isinstance(code, ApiErrorCode):
            return code
    return ApiErrorCode.INVALID_PARAMETER


def _refuse_invalid(req, resp, error, instance, model_adapter) -> None:
    # spectree calls this after validating a request; an invalid one is answered like every other bad request.
    if error is not None:
        raise BadRequest(validation_message(error), validation_code(error))


def _refuse_unfaithful(req, resp, error, instance, model_adapter) -> None:
    # A response that does not match its own model is a bug: answer it as one (a logged JSON 500), not with
    # spectree's own error list.
    if error is not None:
        raise TypeError(f"the response does not match its declared model: {validation_message(error)}")


# In this order in the document, whichever route module declares its routes first.
TAGS = {
    name: Tag(name=name, description=description)
    for name, description in [
        ("search", "Find items by words, pictures or similarity."),
        ("library", "Scanning and what it found."),
        ("items", "Indexed items and their files."),
        ("videos", "Video clips, playable renditions and Live Photo motion."),
        ("people", "Faces found in photos, grouped into people."),
        ("meta", "The API itself and health."),
    ]
}

api_spec = SpecTree(
    backend=_FlaskPlugin,
    mode="strict",  # only the routes declared with api_spec.validate are part of the API
    before=_refuse_invalid,
    after=_refuse_unfaithful,
    validation_error_status=400,
    validation_error_model=Error,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    title="materialsearch",
    version=__version__,
    description="Search your own photos by a sentence or an example picture. JSON everywhere; errors are "
    "`{error, code, message, status}` with a 4xx status for bad input; `code` is stable (see the `Error` schema). "
    "When a password is set (MS_PASSWORD), every "
    "operation except `/healthz` needs a session cookie (log in at `/login`) or an API token "
    "(`python -m materialsearch token create NAME`) sent as `Authorization: Bearer …`.",
    servers=[{"url": "/"}],
    security_schemes=[
        SecurityScheme(
            name="bearerToken",
            data=SecuritySchemeData(
                type="http",
                scheme="bearer",
                description="An API token from `python -m materialsearch token create NAME`.",
            ),
        ),
        SecurityScheme(
            name="sessionCookie",
            data=SecuritySchemeData(
                type="apiKey",
                field_in="cookie",
                name="materialsearch_session",
                description="Set by logging in at /login. State-changing requests also need the `X-CSRF-Token` "
                "header (the page's `<meta name=csrf-token>`).",
            ),
        ),
    ],
    security=[{"bearerToken": []}, {"sessionCookie": []}, {}],  # either scheme, or none when no password is set
    page_templates={},  # the docs page is ours (self-contained, see reference.py), not a CDN-loaded UI
)


def openapi_document(settings) -> dict:
    """The OpenAPI document of the app serving this request, with the limits of its ``settings``."""
    with _GENERATING:  # spectree builds the document once, rearranging its models as it goes: one thread at a time
        generated = api_spec.spec
    document = fill_settings(generated, settings)
    document["paths"] = {path: document["paths"][path] for path in sorted(document["paths"])}
    document["tags"] = sorted(document["tags"], key=lambda tag: list(TAGS).index(tag["name"]))
    return document

"""The API's reference: the OpenAPI document (``/api/openapi.json``) and a readable page of it (``/api/docs``).

Both are generated from the routes' declarations (see ``spec.py``); the page renders their Markdown on the server
and loads nothing from elsewhere (it works offline and under the strict CSP).
"""

from __future__ import annotations

from functools import cache

from flask import Blueprint, current_app, render_template
from markdown_it import MarkdownIt
from markupsafe import Markup

from materialsearch.web.models import Document
from materialsearch.web.spec import TAGS, Responses, api_spec, openapi_document

reference = Blueprint("reference", __name__)


def _settings():
    return current_app.extensions["materialsearch"].settings


@reference.get("/api/openapi.json")
@api_spec.validate(
    tags=[TAGS["meta"]],
    operation_id="getOpenApi",
    resp=Responses(HTTP_200=(Document, "The OpenAPI document.")),
)
def document():
    """This document"""
    return openapi_document(_settings())


@reference.get("/api/docs")
@api_spec.validate(
    tags=[TAGS["meta"]],
    operation_id="getApiDocs",
    resp=Responses(
        auth=False,
        HTTP_200=("text/html", "HTML page."),
        HTTP_302=(None, "Login is on and there is no session: redirect to the login page."),
    ),
)
def docs():
    """This document as a readable page"""
    spec = openapi_document(_settings())
    operations = [
        {"path": path, "method": method.upper(), **operation}
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    return render_template(
        "api_docs.html",
        spec=spec,
        operations=operations,
        schema_text=schema_text,
        markdown=markdown,
        markdown_inline=markdown_inline,
        resolve=lambda schema: resolve(spec, schema),
    )


@cache
def _renderer() -> MarkdownIt:
    # CommonMark with tables; raw HTML in a description is shown as text, never passed through.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str | None) -> Markup:
    """A description rendered as HTML blocks (paragraphs, lists, tables)."""
    return Markup(_renderer().render(text or ""))


def markdown_inline(text: str | None) -> Markup:
    """A short description rendered inline (for table cells): `code`, emphasis, links."""
    return Markup(_renderer().renderInline(text or ""))


def resolve(spec: dict, schema: dict | None) -> dict:
    """``schema`` itself, or the component it refers to."""
    if schema and "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema or {}


def schema_text(schema: dict | None) -> str:
    """A one-line description of a schema for the docs page."""
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(schema_text(s) for s in schema["anyOf"])
    if "const" in schema:
        return repr(schema["const"]).lower()
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {schema_text(schema.get('items'))}"
    bounds = []
    if "enum" in schema:
        bounds.append(" | ".join(str(v) for v in schema["enum"]))
    if "minimum" in schema:
        bounds.append(f"≥ {schema['minimum']}")
    if "maximum" in schema:
        bounds.append(f"≤ {schema['maximum']}")
    if schema.get("default") is not None:
        bounds.append(f"default {schema['default']}")
    if schema.get("format") == "binary":
        kind = "file"
    return kind + (f" ({', '.join(bounds)})" if bounds else "")

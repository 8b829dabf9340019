"""The REST API's models, their shared base: what every request and response model builds on.

The models are the one declaration of what each route takes and gives: requests are validated against them (by
spectree, see ``spec.py``), responses are built from them, and ``/api/openapi.json`` is generated from them. A
bound that is a setting (the page size) names the setting with ``FromSetting``: it is checked against the running
app's settings, and the document shows that app's values. By area: ``request_models`` (what routes take),
``item_models`` (items and search results), ``library_models`` (the library, jobs, tags, places, duplicates),
``problems`` (errors).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from flask import current_app
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from materialsearch.errors import ApiErrorCode

# Ids, offsets and times beyond SQLite's integer range cannot name anything: refused as bad input.
MAX_INT = 2**63 - 1
# Formats a browser shows directly; others (HEIC, TIFF) get a JPEG rendition for the large view.
BROWSER_IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "avif"}
MAX_EXCLUSIONS = 10  # `exclude` texts per search: each costs one text encoding and a pass over the results
SETTINGS_KEY = "x-from-settings"  # in a generated schema: {"maximum": "max_page_size", …}, filled in per app

ItemId = Annotated[int, Field(ge=1, le=MAX_INT)]
TimeMs = Annotated[int, Field(ge=0, le=MAX_INT)]
ItemKind = Literal["image", "video"]
MAX_TAG_FILTERS = 16  # tag= parameters one search takes (each is one more SQL condition)
MAX_CLASSIFY_LABELS = 200  # labels one classify request takes (each is a sentence through the text tower)
MAX_LABEL_LENGTH = 200  # characters per label (cn_clip's context is 52 tokens anyway)
MAX_IDS = 10000  # ids per hide/restore request
Count = Annotated[int, Field(ge=0)]
OptionalName = Annotated[str | None, Field(description="Absent (null) where the data has no such name.")]


def current_settings():
    """The settings of the app serving this request."""
    return current_app.extensions["materialsearch"].settings


@dataclasses.dataclass(frozen=True)
class FromSetting:
    """A field's default and/or maximum is a setting (by its ``Settings`` attribute name)."""

    maximum: str | None = None
    default: str | None = None

    def __get_pydantic_json_schema__(self, core_schema, handler) -> dict:
        schema = handler(core_schema)
        schema[SETTINGS_KEY] = {k: v for k, v in dataclasses.asdict(self).items() if v}
        return schema

    def apply(self, name: str, value: Any, settings) -> Any:
        """``value``, or the default setting when it is None; ValueError when above the maximum setting."""
        if value is None and self.default:
            value = getattr(settings, self.default)
        if self.maximum and value is not None and value > getattr(settings, self.maximum):
            limit = getattr(settings, self.maximum)
            raise ValueError(f"{name} must be at most {limit} (MS_{self.maximum.upper()}), got {value}")
        return value


def fill_settings(node: Any, settings) -> Any:
    """A generated schema with every ``FromSetting`` marker replaced by the values of ``settings``."""
    if isinstance(node, list):
        return [fill_settings(v, settings) for v in node]
    if not isinstance(node, dict):
        return node
    filled = {k: fill_settings(v, settings) for k, v in node.items() if k != SETTINGS_KEY}
    for key, setting in node.get(SETTINGS_KEY, {}).items():
        filled[key] = getattr(settings, setting)
    return filled


class CodedValueError(ValueError):
    """A validator's refusal with a more precise code than ``invalid_parameter`` (spec.validation_code reads it)."""

    def __init__(self, message: str, code: ApiErrorCode):
        super().__init__(message)
        self.code = code


def _absent_is_not_null(schema: dict) -> None:
    # A parameter left out is None here, but a client cannot send null: the document shows no null default.
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]


class Params(BaseModel):
    """Query or form parameters: a blank value counts as absent (None), and ``FromSetting`` bounds are applied."""

    model_config = ConfigDict(json_schema_extra=_absent_is_not_null)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @model_validator(mode="after")
    def _settings_bounds(self):
        settings = current_settings()
        for name, field in type(self).model_fields.items():
            for bound in field.metadata:
                if isinstance(bound, FromSetting):
                    setattr(self, name, bound.apply(name, getattr(self, name), settings))
        return self


class Body(BaseModel):
    """A JSON response: fields it was not given are left out (a photo has no ``duration``, a video no ``live``)."""

    @model_serializer(mode="wrap")
    def _given_fields_only(self, handler: SerializerFunctionWrapHandler):  # no return type: keeps the schema
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class Document(RootModel[dict[str, Any]]):
    """An OpenAPI document."""

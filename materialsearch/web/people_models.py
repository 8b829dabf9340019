"""The people routes' request and response models (``/api/people``, ``/api/faces``), and a face as an item's
details list it."""

from __future__ import annotations

from typing import Annotated

from flask import url_for
from pydantic import BaseModel, Field

from materialsearch.web.models import MAX_INT, Body

PersonId = Annotated[int, Field(ge=1, le=MAX_INT)]


class FaceView(Body):
    """A face found in a photo."""

    id: Annotated[int, Field(description="The face's id (for `POST /api/faces/{face_id}/move`).")]
    box: Annotated[
        list[Annotated[float, Field(ge=0, le=1)]],
        Field(
            min_length=4,
            max_length=4,
            description="[left, top, right, bottom] as fractions of the upright picture's width and height.",
        ),
    ]
    person_id: Annotated[int | None, Field(description="The person it belongs to (null: nobody yet).")]
    person_name: Annotated[str | None, Field(description="That person's name (null: unnamed or nobody).")]
    time_ms: Annotated[
        int | None, Field(ge=0, description="In a video: the time of the sampled frame it is in (null: a photo).")
    ] = None

    @classmethod
    def of(cls, face) -> FaceView:
        """From the catalog's stored face."""
        return cls(
            id=face.id, box=list(face.box), person_id=face.person_id, person_name=face.person_name, time_ms=face.time_ms
        )


class PersonView(Body):
    """A person: faces the faces pass grouped as one."""

    id: int
    name: Annotated[str | None, Field(description="The name the user gave (null: unnamed).")]
    hidden: Annotated[bool, Field(description="Hidden by the user from the people list.")]
    face_count: Annotated[int, Field(ge=0)]
    item_count: Annotated[int, Field(ge=0, description="Photos and videos they are in.")]
    cover_url: Annotated[str | None, Field(description="A square JPEG crop of their face (null: no face left).")]

    @classmethod
    def of(cls, person) -> PersonView:
        """From the catalog's person row."""
        cover = None
        if person.cover_face_id is not None:
            cover = url_for("api.person_cover", person_id=person.id, v=person.cover_face_id)
        return cls(
            id=person.id,
            name=person.name,
            hidden=person.hidden,
            face_count=person.face_count,
            item_count=person.item_count,
            cover_url=cover,
        )


class PersonList(Body):
    """Every person with faces: named first (by name), then by how many photos they are in."""

    people: list[PersonView]


class PersonChange(BaseModel):
    """A JSON body changing a person: a new name (any language; empty: unnamed) and/or hidden."""

    name: Annotated[str | None, Field(max_length=100, description='The new name; `""` makes them unnamed.')] = None
    hidden: Annotated[bool | None, Field(description="Hide from (true) or show in (false) the people list.")] = None


class PersonMerge(BaseModel):
    """A JSON body naming the person merged into the one in the path."""

    person_id: Annotated[PersonId, Field(description="The person whose faces move; they are gone afterwards.")]


class FaceMove(BaseModel):
    """A JSON body naming where a face goes."""

    person_id: Annotated[PersonId | None, Field(description="The person it belongs to; null: nobody.")] = None


class FaceName(BaseModel):
    """A JSON body answering "who is this?" for a face."""

    name: Annotated[
        str, Field(min_length=1, max_length=100, description="The person's name, any language; matched ignoring case.")
    ]

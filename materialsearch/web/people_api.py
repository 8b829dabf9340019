"""The people routes: the people list, a person's cover face, naming, hiding and merging people, and moving a face
(the work is ``materialsearch.application``'s ``PeopleDirectory``)."""

from __future__ import annotations

from flask import Response

from materialsearch.application import BadRequest
from materialsearch.web.api import api, use_cases
from materialsearch.web.models import MAX_INT
from materialsearch.web.people_models import (
    FaceMove,
    FaceName,
    FaceView,
    PersonChange,
    PersonList,
    PersonMerge,
    PersonView,
)
from materialsearch.web.problems import Error
from materialsearch.web.spec import TAGS, Responses, api_spec

PERSON = f"<int(min=1, max={MAX_INT}):person_id>"
FACE = f"<int(min=1, max={MAX_INT}):face_id>"
NO_PERSON = (Error, "No such person.")
BAD_BODY = (Error, "The JSON body is missing or malformed (the message says which field).")


def _route(operation_id: str, **responses):
    return api_spec.validate(
        tags=[TAGS["people"]],
        operation_id=operation_id,
        path_parameter_descriptions={"person_id": "A person id from `/api/people`.", "face_id": "A face id."},
        resp=Responses(**responses),
    )


def _body(body):
    if body is None:
        raise BadRequest("send a JSON body")
    return body


@api.get("/api/people")
@_route("listPeople", HTTP_200=(PersonList, "Every person with faces."))
def list_people():
    """The people found in the photos (faces grouped by the faces pass), with their counts and a cover face"""
    return PersonList(people=[PersonView.of(person) for person in use_cases().people.people()])


@api.get(f"/api/people/{PERSON}/cover")
@_route("getPersonCover", HTTP_200=("image/jpeg", "A square JPEG around their face."), HTTP_404=NO_PERSON)
def person_cover(person_id: int):
    """A person's cover: a square crop around their face, read from the original"""
    cover = use_cases().people.cover(person_id)
    response = Response(cover.jpeg, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=3600"  # the URL carries the face's id as its version
    return response


@api.patch(f"/api/people/{PERSON}")
@_route("updatePerson", HTTP_200=(PersonView, "The person as changed."), HTTP_400=BAD_BODY, HTTP_404=NO_PERSON)
def update_person(person_id: int, json: PersonChange):
    """Name (any language) or hide a person; names survive rescans and regroupings"""
    change = _body(json)
    return PersonView.of(use_cases().people.update(person_id, change.name, change.hidden))


@api.post(f"/api/people/{PERSON}/merge")
@_route("mergePeople", HTTP_200=(PersonView, "The person merged into."), HTTP_400=BAD_BODY, HTTP_404=NO_PERSON)
def merge_people(person_id: int, json: PersonMerge):
    """Merge another person into this one (their faces move here; they are gone)"""
    return PersonView.of(use_cases().people.merge(person_id, _body(json).person_id))


@api.post(f"/api/faces/{FACE}/move")
@_route(
    "moveFace", HTTP_200=(FaceView, "The face where it now is."), HTTP_400=BAD_BODY, HTTP_404=(Error, "No such face.")
)
def move_face(face_id: int, json: FaceMove):
    """Move a face into a person, or out to nobody; the grouping never moves it again"""
    return FaceView.of(use_cases().people.move_face(face_id, _body(json).person_id))


@api.post(f"/api/faces/{FACE}/name")
@_route(
    "nameFace", HTTP_200=(FaceView, "The face with its person."), HTTP_400=BAD_BODY, HTTP_404=(Error, "No such face.")
)
def name_face(face_id: int, json: FaceName):
    """Say who a face is ("who is this?")

    A face of an unnamed person names that person (all their faces), or joins them to the person who already has
    that name; any other face moves alone into the person of that name (made when there is none). Names match
    whatever their case; the face is placed by the user, so the grouping never moves it again.
    """
    return FaceView.of(use_cases().people.name_face(face_id, _body(json).name))

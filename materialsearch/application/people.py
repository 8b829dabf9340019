"""People: the people the faces pass found (names, counts, a cover face), and the user's changes to them (name,
hide, merge, move a face out or into another person)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import threading

from PIL import Image

from materialsearch.application.entries import ItemLookup
from materialsearch.application.errors import BadRequest
from materialsearch.catalog.faces import FaceRepository, PersonRow, StoredFace
from materialsearch.media.decode import DecodeError, decode_image, encode_jpeg
from materialsearch.media.video import VideoError, frame_at
from materialsearch.search.service import NotFound

log = logging.getLogger(__name__)

COVER_SIDE = 256  # the cover crop's side in pixels
_COVER_MARGIN = 0.25  # the face's box grown by this share of its size on every side
MAX_NAME = 100


@dataclasses.dataclass(frozen=True)
class CoverCrop:
    """A person's cover: a square JPEG crop around their face, and the face it shows (its id is its version)."""

    jpeg: bytes
    face_id: int


class PeopleDirectory:
    """The people and their faces, as the web layer and the CLI see them."""

    def __init__(self, faces: FaceRepository, lookup: ItemLookup, max_pixels: int, covers: str | None = None):
        self.faces, self.lookup, self.max_pixels = faces, lookup, max_pixels
        self.covers = covers  # where cut covers are kept (None: cut each time)

    def people(self) -> list[PersonRow]:
        """Every person with faces (hidden ones too: they carry ``hidden``). Covers no person shows any more (a
        photo deleted, a person merged) are deleted on the way."""
        rows = self.faces.people()
        self._prune_covers(rows)
        return rows

    def _prune_covers(self, rows: list[PersonRow]) -> None:
        if self.covers is None or not os.path.isdir(self.covers):
            return
        kept = {name for name in os.listdir(self.covers) if name.endswith(".jpg")}
        if len(kept) <= len(rows):
            return  # no more covers than people: nothing to look at (one left over goes with the next change)
        wanted = set()
        for row in rows:
            face = self.faces.face(row.cover_face_id) if row.cover_face_id is not None else None
            item = self.lookup.store.get_item(face.item_id) if face is not None else None
            if item is not None:
                wanted.add(os.path.basename(self._kept_cover(face, item)))
        for name in kept - wanted:
            with contextlib.suppress(OSError):  # gone meanwhile
                os.remove(os.path.join(self.covers, name))

    def person(self, person_id: int) -> PersonRow:
        """One person; NotFound when there is no such person."""
        person = self.faces.person(person_id)
        if person is None:
            raise NotFound(f"person {person_id} does not exist")
        return person

    def update(self, person_id: int, name: str | None, hidden: bool | None) -> PersonRow:
        """Rename (any language; an empty name: unnamed) and/or hide a person."""
        if name is not None:
            name = _clean(name)
        if not self.faces.update_person(person_id, name=name, hidden=hidden):
            raise NotFound(f"person {person_id} does not exist")
        return self.person(person_id)

    def merge(self, into: int, other: int) -> PersonRow:
        """Every face of ``other`` becomes ``into``'s; ``other`` is gone."""
        if into == other:
            raise BadRequest("a person cannot be merged into themselves")
        if not self.faces.merge(into, other):
            missing = other if self.faces.person(into) is not None else into
            raise NotFound(f"person {missing} does not exist")
        return self.person(into)

    def move_face(self, face_id: int, person_id: int | None) -> StoredFace:
        """Put a face into a person, or into nobody (``None``); the grouping never moves it again."""
        if self.faces.face(face_id) is None:
            raise NotFound(f"face {face_id} does not exist")
        if not self.faces.move_face(face_id, person_id):
            raise NotFound(f"person {person_id} does not exist")
        return self.faces.face(face_id)

    def name_face(self, face_id: int, name: str) -> StoredFace:
        """ "Who is this?" answered for one face. A face of an unnamed person names that person (all their faces),
        or, when someone already has that name, joins them with all their faces (a merge). Any other face (of
        nobody, or of someone named otherwise) moves alone into the person of that name, made when there is
        none. A name matches whatever its case; the face is then placed by the user (the grouping leaves it)."""
        name = _clean(name)
        if not name:
            raise BadRequest("a name cannot be empty (move the face out instead)")
        face = self.faces.face(face_id)
        if face is None:
            raise NotFound(f"face {face_id} does not exist")
        wanted = name.casefold()
        match = next((person for known, person in self.faces.named().items() if known.casefold() == wanted), None)
        if face.person_id is not None and face.person_name is None:
            if match is None:
                self.faces.update_person(face.person_id, name=name)
            else:
                self.faces.merge(match, face.person_id)
        elif match is not None:
            self.faces.move_face(face_id, match)
        else:
            self.faces.new_person(face_id, name)
        return self.faces.face(face_id)

    def forget_all(self) -> None:
        """Delete every face, person and name, and the covers cut from them (the next pass reads every photo)."""
        self.faces.delete_all()
        if self.covers is not None:
            shutil.rmtree(self.covers, ignore_errors=True)

    def faces_of(self, item_id: int) -> list[StoredFace]:
        """The faces of one item, left to right."""
        return self.faces.faces_of(item_id)

    def cover(self, person_id: int) -> CoverCrop:
        """A square JPEG around the person's cover face, read from the original now."""
        person = self.person(person_id)
        face = self.faces.face(person.cover_face_id) if person.cover_face_id is not None else None
        if face is None:
            raise NotFound(f"person {person_id} has no face to show")
        item = self.lookup.indexed(face.item_id)
        kept = self._kept_cover(face, item)
        if kept is not None:
            try:
                with open(kept, "rb") as handle:
                    return CoverCrop(handle.read(), face.id)
            except OSError:
                pass  # not cut yet (or removed): cut it now
        source = self.lookup.source(item)
        try:
            if face.time_ms is not None:  # a video's frame
                picture = frame_at(source, face.time_ms, min_side=COVER_SIDE * 2)
            else:
                with open(source, "rb") as handle:
                    data = handle.read()
                picture = decode_image(data, min_side=COVER_SIDE * 2, max_pixels=self.max_pixels).image
        except (DecodeError, VideoError) as exc:
            raise NotFound(f"the picture of person {person_id}'s face cannot be read now: {exc}") from None
        jpeg = encode_jpeg(_crop(picture, face.box))
        if kept is not None:
            _keep(kept, jpeg)
        return CoverCrop(jpeg, face.id)

    def _kept_cover(self, face: StoredFace, item) -> str | None:
        """Where this face's cover is kept: named by the face, its box and its file's version, so a face read
        again (or a reused id) never shows another's crop."""
        if self.covers is None:
            return None
        key = f"{face.id}:{face.item_id}:{face.box}:{face.time_ms}:{item.size}:{item.mtime_ns}:{COVER_SIDE}"
        return os.path.join(self.covers, hashlib.sha256(key.encode()).hexdigest()[:32] + ".jpg")


def _keep(path: str, jpeg: bytes) -> None:
    """Write a cover through a temporary file (a reader never sees half of one); a failure costs only the cache."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(jpeg)
        os.replace(tmp, path)
    except OSError:
        log.warning("cannot keep a person's cover at %s", path)


def _clean(name: str) -> str:
    """A name as kept: its runs of white space one space, at most ``MAX_NAME`` characters (BadRequest)."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise BadRequest(f"a name has at most {MAX_NAME} characters")
    return name


def _crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    width, height = image.size
    left, top, right, bottom = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    side = max(right - left, bottom - top) * (1 + 2 * _COVER_MARGIN)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    square = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    crop = image.crop(square)  # outside the picture: black
    crop.thumbnail((COVER_SIDE, COVER_SIDE), Image.Resampling.LANCZOS)
    return crop

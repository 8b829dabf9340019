"""Where faces and people are kept: ``faces`` (each face found in a photo), ``people`` and ``face_state`` (which
version of a photo was read, by which models).

A photo's faces belong to one version of its file and one model version: ``waiting`` lists the indexed photos whose
state is missing or of another (size, mtime, model), and ``store`` replaces their faces in one transaction (a photo
the scan changed meanwhile is left waiting). Faces and state go with their item (foreign keys, ``ON DELETE
CASCADE``); a deleted person leaves its faces with nobody. The grouping rule lives in ``organise.people``: this
module only reads and writes what it decides, and never moves a face the user placed (``manual``) nor renames a
person.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import Field
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from materialsearch.catalog.records import ItemStatus, Kind
from materialsearch.catalog.schema import Face, FaceState, Person
from materialsearch.catalog.sql import Qmark, chunked


@dataclasses.dataclass(frozen=True)
class FaceJob:
    """A photo or video whose faces are to be looked for: its item and the file version the catalog knows."""

    item_id: int
    path: str
    size: int
    mtime_ns: int
    kind: str = Kind.IMAGE


@dataclasses.dataclass(frozen=True)
class NewFace:
    """A face to store: box and landmarks as fractions of the upright picture, score, normalised embedding, and for
    a video the time of the sampled frame it is in."""

    box: tuple[float, float, float, float]
    landmarks: tuple[float, ...]
    score: float
    embedding: np.ndarray
    time_ms: int | None = None


@dataclasses.dataclass(frozen=True)
class FaceRead:
    """One photo's faces (or why it could not be read), ready to be stored."""

    job: FaceJob
    faces: Sequence[NewFace]
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class StoredFace:
    """A stored face: where it is, and who it belongs to (``person_id`` None: nobody yet)."""

    id: int
    item_id: int
    box: tuple[float, float, float, float]
    score: float
    person_id: int | None
    person_name: str | None
    manual: bool
    time_ms: int | None = None  # a video's frame (None: a photo)


@dataclasses.dataclass(frozen=True)
class PersonRow:
    """A person with their counts and the face to show them by (None when they have no face left)."""

    id: int
    name: str | None
    hidden: bool
    face_count: int
    item_count: int
    cover_face_id: int | None


@dataclasses.dataclass(frozen=True)
class FaceVectors:
    """Face ids, their people (-1: nobody), their items, and their embeddings (rows), in face-id order; ``frames``
    numbers the pictures they are in (a photo, or one frame of a video; None: one picture per item)."""

    ids: np.ndarray
    people: np.ndarray
    items: np.ndarray
    embeddings: np.ndarray
    frames: np.ndarray | None = None

    @property
    def pictures(self) -> np.ndarray:
        """The picture each face is in: one face per person in a picture."""
        return self.items if self.frames is None else self.frames


@dataclasses.dataclass(frozen=True)
class FaceCounts:
    """Photos by where their faces stand, and the faces and people found."""

    read: Annotated[int, Field(ge=0, description="Photos and videos whose faces the current models looked for.")]
    errors: Annotated[int, Field(ge=0, description="Of those, files that could not be read (each with a reason).")]
    waiting: Annotated[int, Field(ge=0, description="Indexed photos and videos whose faces are not looked for yet.")]
    faces: Annotated[int, Field(ge=0, description="Faces found.")]
    people: Annotated[int, Field(ge=0, description="People (faces grouped as one), named or not.")]
    named: Annotated[int, Field(ge=0, description="People with a name.")]


_WAITING = (
    "FROM items AS i LEFT JOIN face_state AS s ON s.item_id = i.id WHERE i.kind IN (?, ?) AND i.status = ?"
    " AND (s.item_id IS NULL OR s.size != i.size OR s.mtime_ns != i.mtime_ns OR s.model != ?)"
)
_FACE_COLUMNS = (
    "f.id, f.item_id, f.box_left, f.box_top, f.box_right, f.box_bottom, f.score, f.person_id, p.name, f.manual,"
    " f.time_ms"
)


# A person's counts and cover face, over the faces of indexed photos only (a photo that failed or was skipped since
# keeps its faces, but is not shown). The cover is the face the user chose, else the detector's best.
_PERSON_SELECT = (
    "WITH shown AS (SELECT f.id, f.item_id, f.person_id, f.score FROM faces AS f JOIN items AS i ON i.id = f.item_id"
    f" WHERE i.status = '{ItemStatus.OK}')"
    " SELECT p.id, p.name, p.hidden, count(f.id), count(DISTINCT f.item_id),"
    " coalesce((SELECT c.id FROM shown AS c WHERE c.id = p.cover_face_id AND c.person_id = p.id),"
    " (SELECT b.id FROM shown AS b WHERE b.person_id = p.id ORDER BY b.score DESC, b.id LIMIT 1))"
    " FROM people AS p {join} shown AS f ON f.person_id = p.id"
)


def _now() -> str:
    return dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")


def _stored(row) -> StoredFace:
    return StoredFace(row[0], row[1], tuple(row[2:6]), row[6], row[7], row[8], bool(row[9]), row[10])


class FaceRepository:
    """Reads and writes of faces, people and the face state, on the catalog's database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.engine.connect() as conn:
            return Qmark(conn).execute(sql, tuple(params)).fetchall()

    # --- the faces job ------------------------------------------------------------------------------------------
    def waiting(self, model: str, after_id: int, limit: int) -> list[FaceJob]:
        """Photos and videos whose faces are missing or of another file version or model, by item id after
        ``after_id``."""
        rows = self._read(
            f"SELECT i.id, i.path, i.size, i.mtime_ns, i.kind {_WAITING} AND i.id > ? ORDER BY i.id LIMIT ?",
            (Kind.IMAGE, Kind.VIDEO, ItemStatus.OK, model, after_id, limit),
        )
        return [FaceJob(*row) for row in rows]

    def waiting_count(self, model: str) -> int:
        """How many photos and videos still wait for their faces."""
        return int(self._read(f"SELECT count(*) {_WAITING}", (Kind.IMAGE, Kind.VIDEO, ItemStatus.OK, model))[0][0])

    def counts(self, model: str) -> FaceCounts:
        """Photos read and failed (by ``model``), waiting; faces, people and named people."""
        with self.engine.connect() as conn:
            read, errors = conn.execute(
                select(func.count(), func.count(FaceState.error)).where(FaceState.model == model)
            ).one()
            faces = conn.execute(select(func.count()).select_from(Face)).scalar_one()
            people, named = conn.execute(select(func.count(), func.count(Person.name))).one()
        return FaceCounts(read, errors, self.waiting_count(model), faces, people, named)

    def store(self, reads: Sequence[FaceRead], model: str) -> int:
        """Each read's faces replace its photo's, with its state, in one transaction; returns how many photos were
        stored (a photo whose file changed meanwhile is left out and waits again)."""
        if not reads:
            return 0
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            marks = ",".join("?" * len(reads))
            current = {
                row[0]: (row[1], row[2])
                for row in raw.execute(
                    f"SELECT id, size, mtime_ns FROM items WHERE status = ? AND id IN ({marks})",
                    [ItemStatus.OK, *(read.job.item_id for read in reads)],
                )
            }
            kept = [read for read in reads if current.get(read.job.item_id) == (read.job.size, read.job.mtime_ns)]
            for read in kept:
                _replace_faces(raw, read, model)
        return len(kept)

    def all_faces(self) -> FaceVectors:
        """Every face's id, person, item, embedding and picture (for the grouping)."""
        rows = self._read(
            "SELECT id, coalesce(person_id, -1), item_id, embedding, coalesce(time_ms, -1) FROM faces ORDER BY id"
        )
        if not rows:
            empty = np.empty(0, np.int64)
            return FaceVectors(empty, empty, empty, np.empty((0, 128), np.float32), empty)
        embeddings = np.frombuffer(b"".join(row[3] for row in rows), dtype="<f4").reshape(len(rows), -1)
        columns = [np.fromiter((row[i] for row in rows), np.int64, len(rows)) for i in (0, 1, 2, 4)]
        pictures = np.unique(np.stack([columns[2], columns[3]], axis=1), axis=0, return_inverse=True)[1]
        return FaceVectors(*columns[:3], embeddings, pictures.reshape(-1).astype(np.int64))

    def apply_grouping(self, joins: dict[int, int], new_people: Sequence[Sequence[int]]) -> int:
        """Put faces into existing people (face id → person id) and make a person of each group of faces, in one
        transaction. Only faces that still belong to nobody and were not placed by the user move; returns how
        many people were made."""
        made = 0
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            existing = {row[0] for row in raw.execute("SELECT id FROM people")}
            raw.executemany(
                "UPDATE faces SET person_id = ? WHERE id = ? AND person_id IS NULL AND NOT manual",
                [(person, face) for face, person in joins.items() if person in existing],
            )
            for group in new_people:
                free = _free_faces(raw, group)
                if len(free) < 2:
                    continue
                person = raw.execute(
                    "INSERT INTO people (name, hidden, cover_face_id, created_at) VALUES (NULL, ?, NULL, ?)"
                    " RETURNING id",
                    (False, _now()),
                ).fetchone()[0]
                raw.executemany("UPDATE faces SET person_id = ? WHERE id = ?", [(person, face) for face in free])
                made += 1
        return made

    def delete_all(self) -> None:
        """Forget every face, person and face state (the photos are read again by the next faces pass)."""
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            raw.execute("DELETE FROM faces")
            raw.execute("DELETE FROM people")
            raw.execute("DELETE FROM face_state")

    # --- reading ------------------------------------------------------------------------------------------------
    def faces_of(self, item_id: int) -> list[StoredFace]:
        """The faces of one item, left to right (a video's: frame by frame)."""
        rows = self._read(
            f"SELECT {_FACE_COLUMNS} FROM faces AS f LEFT JOIN people AS p ON p.id = f.person_id"
            " WHERE f.item_id = ? ORDER BY coalesce(f.time_ms, -1), f.box_left",
            (item_id,),
        )
        return [_stored(row) for row in rows]

    def face(self, face_id: int) -> StoredFace | None:
        """One face, or None."""
        rows = self._read(
            f"SELECT {_FACE_COLUMNS} FROM faces AS f LEFT JOIN people AS p ON p.id = f.person_id WHERE f.id = ?",
            (face_id,),
        )
        return _stored(rows[0]) if rows else None

    def people(self, include_hidden: bool = True) -> list[PersonRow]:
        """Every person with faces in indexed photos: named ones first (by name), then by how many photos."""
        rows = self._read(
            _PERSON_SELECT.format(join="JOIN")
            + (" WHERE NOT p.hidden" if not include_hidden else "")
            + " GROUP BY p.id ORDER BY p.name IS NULL, p.name, count(DISTINCT f.item_id) DESC, p.id"
        )
        return [PersonRow(row[0], row[1], bool(row[2]), *row[3:]) for row in rows]

    def person(self, person_id: int) -> PersonRow | None:
        """One person (with or without faces), or None."""
        rows = self._read(_PERSON_SELECT.format(join="LEFT JOIN") + " WHERE p.id = ? GROUP BY p.id", (person_id,))
        return PersonRow(rows[0][0], rows[0][1], bool(rows[0][2]), *rows[0][3:]) if rows else None

    def frames_with(self, item_id: int, people: Sequence[int]) -> set[int]:
        """The times of a video's sampled frames in which every one of ``people`` was found."""
        wanted = set(people)
        query = (
            select(Face.time_ms)
            .where(Face.item_id == item_id, Face.person_id.in_(wanted), Face.time_ms.is_not(None))
            .group_by(Face.time_ms)
            .having(func.count(Face.person_id.distinct()) == len(wanted))
        )
        with self.engine.connect() as conn:
            return {int(row[0]) for row in conn.execute(query)}

    def named(self) -> dict[str, int]:
        """Every named person: name → id (the lowest id of a name given twice)."""
        return {
            name: person
            for name, person in self._read("SELECT name, id FROM people WHERE name IS NOT NULL ORDER BY id DESC")
        }

    # --- the user's changes -------------------------------------------------------------------------------------
    def update_person(self, person_id: int, *, name: str | None = None, hidden: bool | None = None) -> bool:
        """Rename (an empty name: unnamed) and/or hide a person; False when there is no such person."""
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            if raw.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is None:
                return False
            if name is not None:
                raw.execute("UPDATE people SET name = ? WHERE id = ?", (name or None, person_id))
            if hidden is not None:
                raw.execute("UPDATE people SET hidden = ? WHERE id = ?", (bool(hidden), person_id))
        return True

    def merge(self, into: int, other: int) -> bool:
        """Every face of ``other`` becomes ``into``'s (as placed by the user) and ``other`` is deleted; ``into``
        takes ``other``'s name when it has none. False when either person does not exist."""
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            names = dict(raw.execute("SELECT id, name FROM people WHERE id IN (?, ?)", (into, other)).fetchall())
            if into not in names or other not in names:
                return False
            raw.execute("UPDATE faces SET person_id = ?, manual = ? WHERE person_id = ?", (into, True, other))
            if names[into] is None and names[other] is not None:
                raw.execute("UPDATE people SET name = ? WHERE id = ?", (names[other], into))
            raw.execute("DELETE FROM people WHERE id = ?", (other,))
        return True

    def new_person(self, face_id: int, name: str) -> int | None:
        """A new person named ``name`` holding this one face (placed by the user); None when there is no such face."""
        with self.engine.begin() as conn:
            if conn.execute(select(Face.id).where(Face.id == face_id)).first() is None:
                return None
            created = dt.datetime.now().replace(microsecond=0)
            person = conn.execute(
                insert(Person).values(name=name, hidden=False, cover_face_id=None, created_at=created)
            ).inserted_primary_key[0]
            conn.execute(update(Face).where(Face.id == face_id).values(person_id=person, manual=True))
        return int(person)

    def move_face(self, face_id: int, person_id: int | None) -> bool:
        """Put a face into a person, or into nobody (``None``), as placed by the user: the grouping never moves
        it again. False when the face or the person does not exist."""
        with self.engine.begin() as conn:
            raw = Qmark(conn)
            if raw.execute("SELECT 1 FROM faces WHERE id = ?", (face_id,)).fetchone() is None:
                return False
            if (
                person_id is not None
                and raw.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone() is None
            ):
                return False
            raw.execute("UPDATE faces SET person_id = ?, manual = ? WHERE id = ?", (person_id, True, face_id))
        return True


def _free_faces(raw: Qmark, face_ids: Sequence[int]) -> list[int]:
    """Those of ``face_ids`` that still belong to nobody and were not placed by the user."""
    found: list[int] = []
    for chunk in chunked(face_ids):
        marks = ",".join("?" * len(chunk))
        found += [
            row[0]
            for row in raw.execute(
                f"SELECT id FROM faces WHERE id IN ({marks}) AND person_id IS NULL AND NOT manual", chunk
            )
        ]
    return found


KEEP_PERSON_IOU = 0.5  # a face read again keeps the person of the old face its box overlaps this much


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _replace_faces(raw: Qmark, read: FaceRead, model: str) -> None:
    """One photo's faces and state replace what was stored (inside the caller's transaction). A face read again
    (the file changed, or a new model) keeps the person, and whether the user placed it there, of the old face in
    the same place, so names and moves outlive re-reading."""
    item_id = read.job.item_id
    old = raw.execute(
        "SELECT box_left, box_top, box_right, box_bottom, person_id, manual, time_ms FROM faces WHERE item_id = ?"
        " AND (person_id IS NOT NULL OR manual)",
        (item_id,),
    ).fetchall()
    raw.execute("DELETE FROM faces WHERE item_id = ?", (item_id,))
    rows = []
    for face in read.faces:
        same_frame = [row for row in old if row[6] == face.time_ms]
        best = max(same_frame, key=lambda row: _overlap(face.box, row[:4]), default=None)
        person, manual = (
            (best[4], bool(best[5])) if best and _overlap(face.box, best[:4]) >= KEEP_PERSON_IOU else (None, False)
        )
        if person is not None or manual:
            old.remove(best)  # one new face per old one
        rows.append(
            (
                item_id,
                *(float(v) for v in face.box),
                np.asarray(face.landmarks, "<f4").tobytes(),
                float(face.score),
                np.asarray(face.embedding, "<f4").tobytes(),
                model,
                person,
                manual,
                face.time_ms,
            )
        )
    raw.executemany(
        "INSERT INTO faces (item_id, box_left, box_top, box_right, box_bottom, landmarks, score, embedding, model,"
        " person_id, manual, time_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    raw.execute(
        "INSERT INTO face_state (item_id, size, mtime_ns, model, face_count, error) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (item_id) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " model = excluded.model, face_count = excluded.face_count, error = excluded.error",
        (item_id, read.job.size, read.job.mtime_ns, model, len(read.faces), read.error),
    )

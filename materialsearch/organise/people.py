"""People: the faces pass (find and embed the faces of indexed photos) and the grouping of faces into people.

The faces pass is a background job (``jobs.job.BackgroundJob``) that follows each scan, off the scan's own
pipeline (a scan is no slower with faces on): it walks the photos and videos whose faces are missing for this file
version and model version (``FaceRepository.waiting``), re-decodes each photo with the product's decoder (upright;
HEIC, RAW) and each video's sampled frames with the scan's own sampler and interval (so every frame a moment can
show has its faces, stored with the frame's time), stores the faces a committed batch at a time, then groups. In
the grouping a video's frame is a picture of its own (one face per person in it), and the frames of one video
count as one item towards ``MIN_PHOTOS``.

PeopleGrouping (``group``), incremental and deterministic:

1. A face that belongs to nobody joins the nearest person (cosine similarity to the mean of their faces), when it
   is at least ``faces.SAME_PERSON`` and that person has no face in the same photo.
2. The faces still belonging to nobody are grouped by their means the same way (``_link``); each group spanning at
   least ``MIN_PHOTOS`` photos becomes a new, unnamed person ("two photos of one face make a person"). A lone
   face waits for a later photo of the same face.

The grouping only ever places faces that belong to nobody and were not placed by the user: names, merges and
manual moves are never undone (``FaceRepository.apply_grouping``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from materialsearch.catalog.faces import FaceCounts, FaceJob, FaceRead, FaceRepository, FaceVectors, NewFace
from materialsearch.catalog.records import Kind
from materialsearch.jobs.job import BackgroundJob
from materialsearch.media.decode import DecodeError
from materialsearch.media.video import VideoError, sample_frames
from materialsearch.organise.faces import EMBED_SIDE, MODEL_VERSION, SAME_PERSON, FaceReader

log = logging.getLogger(__name__)

BATCH = 16  # photos per committed transaction
MIN_PHOTOS = 2  # a new person needs the same face in this many photos
_CHUNK = 256  # faces compared at a time: 256 × 100k faces is a 100 MB similarity block


@dataclasses.dataclass
class FacesStats:
    """What one faces pass did."""

    photos: int = 0
    faces: int = 0
    errors: int = 0
    joined: int = 0
    new_people: int = 0
    cancelled: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        text = f"{self.photos} photos read, {self.faces} faces, {self.errors} unreadable; "
        text += f"{self.joined} faces joined a person, {self.new_people} new people"
        return text + f" in {self.seconds:.1f}s" + (" (cancelled)" if self.cancelled else "")


@dataclasses.dataclass(frozen=True)
class FacesProgress:
    """The running faces pass."""

    done: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=0, description="Photos and videos waiting when the pass started.")]
    started_at: Annotated[str | None, Field(description="ISO 8601 local time.")]
    trigger: Annotated[str | None, Field(description="manual, after scan, start-up…")]
    rate: Annotated[float | None, Field(ge=0, description="Photos/s, last minute.")] = None


@dataclasses.dataclass(frozen=True)
class LastFacesPass:
    """The last finished faces pass."""

    finished_at: str
    seconds: Annotated[float, Field(ge=0)]
    summary: str
    cancelled: bool
    error: Annotated[str | None, Field(description="Why it failed.")]


@dataclasses.dataclass(frozen=True)
class FacesStatus:
    """The faces pass: whether it is on, its state and progress, the counts, the last finished pass."""

    enabled: Annotated[bool, Field(description="MS_FACES.")]
    state: Literal["idle", "reading", "paused"]
    paused_reason: Annotated[str | None, Field(description="By a user, while a scan runs, outside MS_SCAN_WINDOW.")]
    progress: Annotated[FacesProgress | None, Field(description="The running pass (null when idle).")]
    counts: FaceCounts
    last: Annotated[LastFacesPass | None, Field(description="The last finished pass (null before the first).")]


@dataclasses.dataclass(frozen=True)
class PeopleGrouping:
    """What a grouping decided: faces that join existing people, and groups of faces that make new people."""

    joins: dict[int, int]
    new_people: list[list[int]]


def _centroids(embeddings: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """The normalised mean embedding of each label 0..count-1."""
    sums = np.zeros((count, embeddings.shape[1]), np.float32)
    np.add.at(sums, labels, embeddings)
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def group(faces: FaceVectors, threshold: float = SAME_PERSON) -> PeopleGrouping:
    """The grouping of the faces that belong to nobody (see the module's docstring)."""
    free = np.flatnonzero(faces.people < 0)
    placed = np.flatnonzero(faces.people >= 0)
    joins: dict[int, int] = {}
    if len(free) and len(placed):
        person_ids, labels = np.unique(faces.people[placed], return_inverse=True)
        centres = _centroids(faces.embeddings[placed], labels, len(person_ids))
        pictures = faces.pictures  # a photo, or one frame of a video
        in_photo = {(int(pictures[i]), int(faces.people[i])) for i in placed}
        for start in range(0, len(free), _CHUNK):
            rows = free[start : start + _CHUNK]
            sims = faces.embeddings[rows] @ centres.T
            best = sims.argmax(axis=1)
            for row, pick, sim in zip(rows, best, sims[np.arange(len(rows)), best], strict=True):
                person = int(person_ids[pick])
                if sim >= threshold and (int(pictures[row]), person) not in in_photo:
                    joins[int(faces.ids[row])] = person
                    in_photo.add((int(pictures[row]), person))  # one face per person in a picture
    rest = np.array([i for i in free if int(faces.ids[i]) not in joins], np.int64)
    return PeopleGrouping(joins, _link(faces, rest, threshold))


def _link(faces: FaceVectors, rows: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of the given faces by their centre (leader clustering, in face-id order: a face joins the group whose
    mean is nearest when at least ``threshold`` and the group has no face of its picture, else starts one; a mean,
    unlike single linkage, does not chain two people together through in-between faces), keeping the groups that
    span at least ``MIN_PHOTOS`` items (the frames of one video count as one), as lists of face ids."""
    dim = faces.embeddings.shape[1]
    sums = np.zeros((len(rows), dim), np.float32)
    centres = np.zeros((len(rows), dim), np.float32)
    members: list[list[int]] = []
    pictures: list[set[int]] = []
    items: list[set[int]] = []
    for row in rows:
        embedding, picture = faces.embeddings[row], int(faces.pictures[row])
        pick = -1
        if members:
            sims = centres[: len(members)] @ embedding
            best = int(sims.argmax())
            if sims[best] >= threshold and picture not in pictures[best]:
                pick = best
        if pick < 0:
            pick = len(members)
            members.append([])
            pictures.append(set())
            items.append(set())
        members[pick].append(int(faces.ids[row]))
        pictures[pick].add(picture)
        items[pick].add(int(faces.items[row]))
        sums[pick] += embedding
        centres[pick] = sums[pick] / max(float(np.linalg.norm(sums[pick])), 1e-12)
    return [group for group, seen in zip(members, items, strict=True) if len(seen) >= MIN_PHOTOS]


def _go_on() -> None:
    """A pause point that never pauses (a read outside a job)."""


class FacesPass:
    """Finds the faces of every photo waiting for them, then groups; no state between passes."""

    def __init__(self, settings, repository: FaceRepository, reader: FaceReader | None = None):
        self.settings = settings
        self.repository = repository
        self._reader = reader

    @property
    def reader(self) -> FaceReader:
        """The models, loaded on first use (a process that never reads faces never loads them)."""
        if self._reader is None:
            self._reader = FaceReader()
        return self._reader

    def run(self, live: dict, should_stop: Callable[[], bool], pause_point: Callable[[], None]) -> FacesStats:
        """One sweep over the waiting photos, a committed batch at a time, then one grouping."""
        started = time.monotonic()
        stats = FacesStats()
        live["total"] = self.repository.waiting_count(MODEL_VERSION)
        after = 0
        while True:
            pause_point()
            if should_stop():
                stats.cancelled = True
                break
            jobs = self.repository.waiting(MODEL_VERSION, after, BATCH)
            if not jobs:
                break
            after = jobs[-1].item_id
            reads, looked_at = [], 0
            for job in jobs:
                if should_stop():  # a stop waits for one photo, not the batch (a container's grace period)
                    stats.cancelled = True
                    break
                read = self.read(job, should_stop, pause_point)
                looked_at += 1
                if read is not None:
                    reads.append(read)
            self.repository.store(reads, MODEL_VERSION)
            for read in reads:
                stats.photos += 1
                stats.faces += len(read.faces)
                stats.errors += read.error is not None
            live["done"] = live.get("done", 0) + looked_at
            if stats.cancelled:
                break
        if not stats.cancelled:
            decided = group(self.repository.all_faces())
            stats.joined = len(decided.joins)
            stats.new_people = self.repository.apply_grouping(decided.joins, decided.new_people)
        stats.seconds = time.monotonic() - started
        return stats

    def read(
        self, job: FaceJob, should_stop: Callable[[], bool] = lambda: False, pause_point: Callable[[], None] = _go_on
    ) -> FaceRead | None:
        """One photo's or video's faces, or why it cannot be read; None when the file cannot be opened now, or the
        pass stopped inside a video (it waits). A video pauses between its frames (a scan starting, by hand)."""
        if job.kind == Kind.VIDEO:
            return self.read_video(job, should_stop, pause_point)
        try:
            with open(job.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            log.warning("faces: cannot open %s now: %s", job.path, exc)
            return None
        try:
            found = self.reader.read_file(data, self.settings.max_image_pixels)
        except DecodeError as exc:
            return FaceRead(job, [], str(exc))
        except Exception as exc:  # a crash inside OpenCV on one file costs that file only
            log.exception("faces failed on %s", job.path)
            return FaceRead(job, [], f"faces failed: {type(exc).__name__}: {str(exc)[:200]}")
        return FaceRead(job, [NewFace(f.box, f.landmarks, f.score, f.embedding) for f in found])

    def read_video(
        self, job: FaceJob, should_stop: Callable[[], bool], pause_point: Callable[[], None] = _go_on
    ) -> FaceRead | None:
        """The faces of every frame the scan samples (the same sampler and interval, so the same times as the
        frames' vectors: whichever frame is a moment's best, its faces are there), each with its frame's time."""
        interval_ms = max(1, round(self.settings.frame_interval * 1000))
        found: list[NewFace] = []
        try:
            for frame in sample_frames(job.path, interval_ms, EMBED_SIDE // 2, EMBED_SIDE):
                pause_point()
                if should_stop():
                    return None
                for face in self.reader.read_image(frame.image):
                    found.append(NewFace(face.box, face.landmarks, face.score, face.embedding, frame.time_ms))
        except OSError as exc:
            log.warning("faces: cannot open %s now: %s", job.path, exc)
            return None
        except VideoError as exc:
            return FaceRead(job, found, None if found else str(exc))  # the frames decoded before it keep theirs
        except Exception as exc:  # a crash inside the decoder or OpenCV on one file costs that file only
            log.exception("faces failed on %s", job.path)
            return FaceRead(job, [], f"faces failed: {type(exc).__name__}: {str(exc)[:200]}")
        return FaceRead(job, found)


class FacesManager(BackgroundJob):
    """The faces pass as a background job: after each scan (never during one), pausable, cancellable."""

    NAME = "faces pass"
    RUNNING_REFUSAL = "a faces pass is already running"
    LAST_KEY = "last_faces_pass"
    PAUSE_POLL_S = 5.0

    def __init__(self, faces_pass: FacesPass, meta, *, enabled: bool, owner: bool, scans, window=None):
        self.faces_pass = faces_pass
        self.enabled = enabled
        self.scans = scans  # the ScanManager: the pass waits while it runs
        not_owner = "this process does not own the data dir and does not look for faces"
        super().__init__(owner=owner, not_owner=not_owner, meta=meta, window=window)

    def _new_progress(self) -> dict:
        return {"done": 0, "total": 0}

    def _units(self) -> tuple[int, int] | None:
        live = self.progress
        return (live["done"], max(live["total"], live["done"])) if live is not None else None

    def _unavailable(self) -> str | None:
        return None if self.enabled else "faces are off (MS_FACES=false)"

    def _waits_for(self) -> str | None:
        if self.scans is not None and self.scans.running:
            return "waiting for the scan to finish"
        return None

    def _work(self, on_progress=None) -> FacesStats:
        return self.faces_pass.run(self.progress, self._cancel.is_set, self._pause_point)

    def status(self) -> FacesStatus:
        """State of the pass, its progress, the counts and the last finished pass."""
        now = self.snapshot()
        progress = None
        if now.progress is not None:
            done, total = self._units()
            progress = FacesProgress(done, total, now.started_at, now.trigger, now.rate)
        last = None
        if now.last:
            fields = {field.name for field in dataclasses.fields(LastFacesPass)}
            last = LastFacesPass(**{key: value for key, value in now.last.items() if key in fields})
        return FacesStatus(
            enabled=self.enabled,
            state="reading" if now.state == "running" else now.state,
            paused_reason=now.paused_reason,
            progress=progress,
            counts=self.faces_pass.repository.counts(MODEL_VERSION),
            last=last,
        )

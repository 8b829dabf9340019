"""Zero-shot tags: a bilingual label set, the rule that gives each item the labels that clearly stand out for it,
and the background job (``Tagger``) that keeps the ``item_tags`` table in step with the stored vectors (never
re-embedding).

The labels come from ``data/tags.tsv`` (shipped) and ``MS_TAGS_FILE`` (the user's, same format; it extends the
shipped set, or replaces it with ``MS_TAGS_REPLACE``). A label's text vector is the normalised mean of its Chinese
and English prompts (prompt ensembling, as the CLIP paper does).

The rule (``assign_tags``): an item's score for a label is the cosine between the item and the label (a video:
the mean of its best third of frames, at least one, so a tag holds for a good part of the video rather than one
frame). Over the library, each label's scores have a median and a spread (MAD × 1.4826, a standard deviation
that the items which *do* show the label cannot inflate); an item's robust z-score for the label says how far
it stands out from the library. An item gets a label when either

1. the label stands out for it: z >= ``Z_MIN`` and the label is among the item's ``TOP_K`` labels by z (an item
   that stands out for everything is not tagged with everything; z needs at least ``MIN_ITEMS_FOR_Z`` items,
   else the spread means nothing), or
2. the model itself is sure: cn_clip's zero-shot softmax over the whole label set (``exp(logit_scale) ·
   cosine``) gives the label at least ``P_MIN``. This tags a library where most items show a label (all cats),
   which z alone cannot, since there the label stands out from nothing.

At most ``TOP_K`` tags an item: the softmax's label first, then by z.

The tags, with the fingerprint of what they were computed from (labels, model identity, rule version, and the
vectors' checksum), are written in one transaction: an interrupted run leaves the previous tags and a stale
fingerprint, so the next start computes them again.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from materialsearch.catalog.store import Store
from materialsearch.encoders import Encoder
from materialsearch.encoders.clip import normalise
from materialsearch.jobs.job import BackgroundJob, WorkDone

log = logging.getLogger(__name__)

SHIPPED_TAGS = Path(__file__).parent / "data" / "tags.tsv"
DEFAULT_PROMPTS = ("一张{}的照片", "a photo of a {}")  # zh, en, where a label gives none (CLIP's template)
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RULE_VERSION = 1  # bump when the rule or its constants change: tags are recomputed
TOP_K = 3  # at most this many tags per item
Z_MIN = 3.0  # robust z-score from which a label stands out from the library
P_MIN = 0.5  # zero-shot probability (softmax over the label set) from which a label clearly applies
MIN_ITEMS_FOR_Z = 20  # below this many items the library's spread says nothing: only the softmax route tags
VIDEO_TOP_FRACTION = 1 / 3  # a video's score for a label: the mean of its best third of frames
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation
STATS_SAMPLE = 20_000  # items the library's per-label median and spread are estimated from
STATE_KEY = "tags_state"  # meta: the fingerprint of what the stored tags were computed from
LABEL_VECTORS_KEY = "tags_label_vectors"  # meta: "fingerprint:base64 of the labels' float32 text vectors"


class LabelError(ValueError):
    """A label file cannot be used; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Label:
    """One tag: its key (in URLs), its names, and the prompts its text vector is made of."""

    key: str
    zh: str
    en: str
    prompt_zh: str
    prompt_en: str

    @property
    def prompts(self) -> tuple[str, str]:
        """The sentences embedded for this label."""
        return self.prompt_zh, self.prompt_en


def read_labels(path: str | os.PathLike) -> list[Label]:
    """The labels of a TSV file (``key zh en [prompt_zh] [prompt_en]``, ``#`` comments); LabelError if malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"cannot read the tag file {path}: {exc}") from None
    labels: dict[str, Label] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("\t")]
        where = f"{path} line {number}"
        if not 3 <= len(fields) <= 5 or not all(fields[:3]):
            raise LabelError(f"{where}: expected key, zh, en (and optionally prompt_zh, prompt_en), tab-separated")
        key, zh, en, *prompts = fields
        if not KEY_PATTERN.match(key):
            raise LabelError(f"{where}: the key {key!r} may only have letters, digits, - and _ (at most 64)")
        if key in labels:
            raise LabelError(f"{where}: the key {key!r} appears twice")
        prompt_zh, prompt_en = [*prompts, "", ""][:2]
        labels[key] = Label(
            key,
            zh,
            en,
            (prompt_zh or DEFAULT_PROMPTS[0]).replace("{}", zh),
            (prompt_en or DEFAULT_PROMPTS[1]).replace("{}", en),
        )
    return list(labels.values())


def label_set(tags_file: str = "", replace: bool = False) -> tuple[Label, ...]:
    """The labels in use: the shipped set, extended (same key: replaced) or replaced by ``tags_file``."""
    labels = {} if replace and tags_file else {label.key: label for label in read_labels(SHIPPED_TAGS)}
    if tags_file:
        labels.update((label.key, label) for label in read_labels(tags_file))
    if not labels:
        raise LabelError(f"the tag file {tags_file} has no labels")
    return tuple(labels.values())


def label_vectors(encoder: Encoder, labels: Sequence[Label]) -> np.ndarray:
    """(labels, dim): each label's normalised mean prompt vector."""
    texts = [prompt for label in labels for prompt in label.prompts]
    vectors = encoder.encode_texts(texts).reshape(len(labels), len(DEFAULT_PROMPTS), -1)
    return normalise(vectors.mean(axis=1))


@dataclasses.dataclass(frozen=True)
class Assigned:
    """The tags of a library: row i tags item ``item_ids[i]`` with label ``labels[i]`` (index), standing out by
    ``z[i]``."""

    item_ids: np.ndarray
    labels: np.ndarray
    z: np.ndarray


def item_scores(owners: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, their per-label scores) from per-vector scores whose rows are grouped by item (``owners``).

    One vector: its scores. Several (a video's frames): per label, the mean of the best third of the frames."""
    if len(owners) == 0:
        return owners, scores
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    ends = np.r_[starts[1:], len(owners)]
    result = scores[starts].copy()
    for row in np.flatnonzero(ends - starts > 1):
        frames = scores[starts[row] : ends[row]]
        best = max(1, int(np.ceil(len(frames) * VIDEO_TOP_FRACTION)))
        result[row] = np.partition(frames, len(frames) - best, axis=0)[-best:].mean(axis=0)
    return owners[starts], result


def assign_tags(item_ids: np.ndarray, scores: np.ndarray, logit_scale: float) -> Assigned:
    """The module's rule (see its docstring) on ``scores``: (items, labels) cosines, one row per item."""
    if scores.size == 0:
        return Assigned(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    z = robust_z(scores)
    k = min(TOP_K, scores.shape[1])
    if len(scores) >= MIN_ITEMS_FOR_Z:
        kth_z = -np.partition(-z, k - 1, axis=1)[:, k - 1 : k]  # each item's k-th highest z
        chosen = z >= np.maximum(kth_z, Z_MIN)
    else:
        chosen = np.zeros(scores.shape, bool)
    logits = np.float32(np.exp(logit_scale)) * scores
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    sure = logits >= P_MIN * logits.sum(axis=1, keepdims=True)  # softmax >= P_MIN (at most one label per item)
    chosen |= sure
    for row in np.flatnonzero(chosen.sum(axis=1) > k):  # a sure label outside the top k by z, or ties: trim
        columns = np.flatnonzero(chosen[row])
        keep = columns[np.argsort(-np.where(sure[row, columns], np.inf, z[row, columns]), kind="stable")[:k]]
        chosen[row] = False
        chosen[row, keep] = True
    rows, columns = np.nonzero(chosen)
    return Assigned(item_ids[rows], columns, z[rows, columns].astype(np.float32))


def robust_z(scores: np.ndarray) -> np.ndarray:
    """Each score's distance from its label's median over the items, in robust standard deviations (MAD ×
    1.4826); the median and MAD come from at most ``STATS_SAMPLE`` items drawn at random (seeded: the same
    library gives the same tags), which estimates them to well under a percent."""
    sample = scores
    if len(scores) > STATS_SAMPLE:
        sample = scores[np.random.default_rng(0).choice(len(scores), STATS_SAMPLE, replace=False)]
    median = np.median(sample, axis=0)
    spread = np.median(np.abs(sample - median), axis=0) * MAD_TO_SIGMA
    return (scores - median) / np.maximum(spread, np.float32(1e-6))


@dataclasses.dataclass(frozen=True)
class TagCount:
    """A label and how many items carry it."""

    label: Label
    count: int


class Tagger(BackgroundJob):
    """Keeps the ``item_tags`` table computed from the stored vectors for the current labels and model.

    ``refresh`` computes when stale (synchronously). As a background job (``jobs.job.BackgroundJob``) a run is one
    ``refresh``, started at start-up and ``request``ed after each scan; it does not start while ``busy()`` (a scan
    runs: its end requests it).
    """

    NAME = "tags"
    RUNNING_REFUSAL = "the tags are already being computed"
    STOP_WAIT_S = 30.0  # a computation in flight cannot stop early; closing does not wait longer for it

    def __init__(self, store: Store, encoder: Encoder, labels: Sequence[Label], busy: Callable[[], bool]):
        super().__init__()
        self.store = store
        self.encoder = encoder
        self.labels = tuple(labels)
        self.by_key = {label.key: label for label in self.labels}
        self._busy = busy
        self._vectors: np.ndarray | None = None  # the labels' text vectors, made once
        self._refreshing = threading.Lock()
        self.computing = False
        self.last_error: str | None = None
        self.last_seconds: float | None = None

    # --- freshness --------------------------------------------------------------------------------------------
    @functools.cached_property
    def fingerprint(self) -> str:
        """What the tags depend on besides the vectors: the labels, the model, the rule."""
        digest = hashlib.sha256(json.dumps([RULE_VERSION, self.encoder.describe().identity]).encode())
        for label in self.labels:
            digest.update(json.dumps(dataclasses.astuple(label), ensure_ascii=False).encode())
        return digest.hexdigest()[:32]

    def _state(self) -> str:
        return json.dumps({"labels_model": self.fingerprint, "vectors": self.store.vectors_version()})

    def stale(self) -> bool:
        """Whether the stored tags were computed from other labels, another model or other vectors."""
        return self.store.get_meta(STATE_KEY) != self._state()

    # --- computing --------------------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Recompute the tags if stale (or ``force``); returns whether it computed."""
        with self._refreshing:
            state = self._state()  # read before the vectors: a scan writing meanwhile leaves the tags stale
            if not force and self.store.get_meta(STATE_KEY) == state:
                return False
            self.computing = True
            started = time.perf_counter()
            try:
                self._write(self.compute(), state)
                self.last_error = None
            finally:
                self.computing = False
            self.last_seconds = time.perf_counter() - started
            log.info("tags computed for %d labels in %.2f s", len(self.labels), self.last_seconds)
            return True

    def compute(self) -> Assigned:
        """The tags of every indexed item, from its stored vectors."""
        if self._vectors is None:
            self._vectors = self._label_vectors()
        owners, vectors = self._stored_vectors()
        if len(owners) == 0:
            return assign_tags(owners, np.empty((0, len(self.labels)), np.float32), self.encoder.describe().logit_scale)
        item_ids, scores = item_scores(owners, vectors @ self._vectors.T)
        return assign_tags(item_ids, scores, self.encoder.describe().logit_scale)

    def _label_vectors(self) -> np.ndarray:
        """The labels' text vectors: kept in the meta table under the fingerprint, so a restart (a scan from the
        command line, then the server) does not run the text tower again for the same labels and model."""
        kept = self.store.get_meta(LABEL_VECTORS_KEY)
        if kept:
            fingerprint, _, blob = kept.partition(":")
            if fingerprint == self.fingerprint:
                vectors = np.frombuffer(base64.b64decode(blob), dtype="<f4")
                return vectors.reshape(len(self.labels), -1).copy()
        vectors = label_vectors(self.encoder, self.labels)
        encoded = base64.b64encode(vectors.astype("<f4").tobytes()).decode("ascii")
        self.store.set_meta(LABEL_VECTORS_KEY, f"{self.fingerprint}:{encoded}")
        return vectors

    def _stored_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(item id per vector, vectors) of the indexed items, grouped by item."""
        return self.store.tags.indexed_vectors(self.encoder.describe().dim)

    def _write(self, assigned: Assigned, state: str) -> None:
        keys = [label.key for label in self.labels]
        rows = [
            (int(item), keys[label], round(float(z), 4))
            for item, label, z in zip(assigned.item_ids, assigned.labels, assigned.z, strict=True)
        ]
        self.store.tags.replace_all(rows, STATE_KEY, state)  # tags and their fingerprint together, or neither

    # --- reading ----------------------------------------------------------------------------------------------
    def counts(self) -> list[TagCount]:
        """Every label in use with its number of items, most frequent first (then in the label set's order)."""
        found = self.store.tags.counts()
        order = {label.key: i for i, label in enumerate(self.labels)}
        counted = [TagCount(label, int(found.get(label.key, 0))) for label in self.labels]
        return sorted(counted, key=lambda c: (-c.count, order[c.label.key]))

    def tags_of(self, item_ids: Iterable[int]) -> dict[int, list[str]]:
        """Item id → its tag keys, most standing-out first (items without tags are left out)."""
        found = {}
        for item_id, keys in self.store.tags.tags_of(item_ids).items():
            # A label dropped from the set shows until the next refresh: not here.
            kept = [key for key in keys if key in self.by_key]
            if kept:
                found[item_id] = kept
        return found

    def unknown(self, keys: Iterable[str]) -> list[str]:
        """The keys that name no label in use."""
        return [key for key in keys if key not in self.by_key]

    # --- in the background ------------------------------------------------------------------------------------
    def _unavailable(self) -> str | None:
        return "a scan is writing vectors" if self._busy() else None  # the scan's end requests a run

    def _work(self, on_progress=None) -> WorkDone:
        started = time.monotonic()
        self._pause_point()
        try:
            computed = self.refresh()
        except Exception as exc:  # reported in the tag list until a refresh succeeds
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        return WorkDone("computed" if computed else "up to date", time.monotonic() - started)

"""What every encoder is: the ``Encoder`` Protocol and its ``EncoderDescription``, the backend and precision
names, the choice made for this machine; and for the local backends the weights they load (``WeightsSpec``) and
``LoadedWeights``, the load-once lifecycle and preprocessing they share.

Nothing here imports torch, cn_clip or ONNX Runtime: callers that only need the types stay light.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import threading
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from materialsearch.encoders.clip import clip_preprocess

if TYPE_CHECKING:
    from PIL import Image

    from config import Settings

AUTO = "auto"  # the setting value that lets the machine decide (MS_BACKEND, MS_PRECISION, MS_DEVICE)


class ModelError(RuntimeError):
    """The model cannot be found, loaded or run as asked; the message says what to do."""


class Backend(StrEnum):
    """What runs the model."""

    TORCH = "torch"
    ONNX = "onnx"  # ONNX Runtime on the CPU


class Precision(StrEnum):
    """The number format the model's weights run in."""

    FP32 = "fp32"
    BF16 = "bf16"  # torch; LayerNorms stay fp32
    FP16 = "fp16"  # torch on CUDA
    INT8 = "int8"  # ONNX Runtime, dynamic int8 weights


class Tower(StrEnum):
    """The two halves of CLIP."""

    IMAGE = "image"
    TEXT = "text"


class Use(StrEnum):
    """What the model is run for: each use may run on its own backend/precision when ``auto`` measured them
    (``measure``). Only the scan's pictures are stored; query vectors are compared with them and thrown away."""

    SCAN = "scan pictures"  # batches of the scan's size; stored, so they carry the encoder's identity
    SENTENCES = "query sentences"  # one search sentence at a time
    QUERY_PICTURES = "query pictures"  # one uploaded picture at a time


BACKEND_SETTINGS = (AUTO, *Backend)  # the values MS_BACKEND accepts
PRECISION_SETTINGS = (AUTO, *Precision)  # the values MS_PRECISION accepts


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    """Where the weights are and what architecture they have."""

    name: str  # what the user asked for (a cn_clip name or a path)
    path: str
    model_info: dict[str, Any]
    input_resolution: int
    arch: str  # human-readable architecture label

    @property
    def embed_dim(self) -> int:
        """Length of the vectors this model produces."""
        return int(self.model_info["embed_dim"])


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One backend/precision timed on the probe batch when ``auto`` chose by measuring (``measure``)."""

    backend: Backend
    precision: Precision
    images_per_s: float  # on the probe batch, best timed run (0 where it could not run)
    min_cosine: float | None  # worst cosine to torch fp32 over the probe pictures and sentences; None: not reached
    runs: int  # timed runs of the probe batch (0: stopped after the warm-up; 1 where it missed the fidelity gate)
    load_s: float  # loading it (first time: the ONNX export and int8 quantization)
    note: str = ""  # why it stopped early, or what failed

    @property
    def passed(self) -> bool:
        """Whether it was timed and its vectors passed the fidelity gate."""
        return self.runs > 0 and self.min_cosine is not None and passes_gate(self.min_cosine)


@dataclasses.dataclass(frozen=True)
class QueryTiming:
    """One backend/precision timed at batch 1 for a query use (``measure``): what ``Use.SENTENCES`` and
    ``Use.QUERY_PICTURES`` are chosen from."""

    backend: Backend
    precision: Precision
    use: Use
    ms: float | None  # best timed run, per sentence or picture (None: not timed, see ``note``)
    cosine: float | None  # worst cosine of that tower's probe vectors to torch fp32's (the fidelity gate)
    runs: int
    note: str = ""

    @property
    def passed(self) -> bool:
        """Whether it was timed and that tower's vectors passed the fidelity gate."""
        return self.ms is not None and self.runs > 0 and self.cosine is not None and passes_gate(self.cosine)


FIDELITY_MIN_COSINE = 0.999  # the fidelity bar for any path that is not fp32 (worst cosine to fp32)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. a container's cpuset), at least 1."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1


def passes_gate(cosine: float) -> bool:
    """Whether vectors whose worst cosine to fp32 is ``cosine`` are close enough to stand in for fp32's."""
    return cosine >= FIDELITY_MIN_COSINE


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """Which backend and precision run the model on which device, and why (shown in the status and the log)."""

    backend: str  # a registered backend's name: a ``Backend`` for the local ones
    precision: str  # a ``Precision`` for the local ones; another backend is given MS_PRECISION as set
    device: str  # "cpu", "cuda", "cuda:1" ...
    reason: str
    measurements: tuple[Measurement, ...] = ()  # when ``auto`` chose by measuring: every candidate's numbers
    measure_cost_s: float | None = None  # what measuring cost at the start it happened (None: not measured)
    # When ``auto`` measured: the backend/precision chosen for each query use (absent: the scan's own), and every
    # candidate's batch-1 timings they were chosen from. Stored vectors never come from these (see ``measure``).
    queries: Mapping[Use, BackendChoice] = dataclasses.field(default_factory=dict)
    query_timings: tuple[QueryTiming, ...] = ()
    # The towers the encoder built for this choice opens (a query-only encoder needs one; the scan's both).
    towers: frozenset[Tower] = frozenset(Tower)


PreparedPicture = object  # what an encoder's ``prepare`` made of a picture: opaque to everyone but its encoder


@dataclasses.dataclass(frozen=True)
class EncoderDescription:
    """What an encoder is (``Encoder.describe``): what its vectors' users need (identity, length, input size,
    ``logit_scale``) and the facts the status shows."""

    identity: str  # changes whenever the vectors would (architecture, weights, dim, int8): a model change
    dim: int  # vector length
    input_size: int  # side of the image tower's square input, in pixels (pictures are decoded at least this big)
    # The weights' learned ``logit_scale`` (cn_clip's parameter, the log of the factor applied to cosines before
    # the softmax: ``logits = exp(logit_scale) · cosine``).
    logit_scale: float
    arch: str  # human-readable architecture
    backend: str  # the registered backend that runs it (``Backend`` for the local ones)
    device: str  # "cpu", "cuda", "cuda:1" ... (or where a remote encoder runs)
    precision: str  # the image tower's (what stored vectors depend on)
    tower_precision: Mapping[Tower, str]  # each tower's (ONNX int8 may keep a tower fp32)
    fidelity: Mapping[Tower, float]  # worst cosine to fp32 per tower measured at load; empty where none was
    choice: BackendChoice  # how backend and precision were chosen (with the measurements when ``auto`` measured)


@runtime_checkable
class Encoder(Protocol):
    """The one door to a model: decoded pictures (PIL images, upright RGB) and sentences in, L2-normalised
    float32 vectors out. Each encoder does its own preprocessing, split in two so that the scan's decode threads
    run the first half: ``prepare`` one picture, then ``encode_prepared`` a batch of them. A local backend
    prepares the model's input array; a remote one would prepare a small JPEG at the model's input size."""

    def load(self) -> None:
        """Make the model ready once (later calls return at once); raises ModelError with an actionable message."""

    def describe(self) -> EncoderDescription:
        """What this encoder is (loading it first)."""

    def prepare(self, image: Image.Image) -> PreparedPicture:
        """One picture → what ``encode_prepared`` takes (safe to call from several threads at once)."""

    def encode_prepared(self, batch: Sequence[PreparedPicture]) -> np.ndarray:
        """Pictures this encoder prepared → (n, dim) float32, L2-normalised."""

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pictures (any size and mode) → (n, dim) float32, L2-normalised: ``prepare`` then ``encode_prepared``."""

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Sentences → (n, dim) float32, L2-normalised."""


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What ``load`` established: the weights, the identity of their vectors, and per-tower precision/fidelity."""

    spec: WeightsSpec
    identity: str
    tower_precision: Mapping[Tower, Precision]
    fidelity: Mapping[Tower, float]
    logit_scale: float  # the weights' own, as a Python float (fp32 arithmetic reproduces cn_clip's)


class LoadedWeights(abc.ABC):
    """What the local backends share: ``load`` once under a lock (``_load`` does the work), cn_clip's
    preprocessing as ``prepare`` (the model's input array), and the description of the loaded weights.
    Subclasses add ``encode_prepared``/``encode_texts``."""

    backend: Backend

    def __init__(self, settings: Settings, choice: BackendChoice):
        if choice.backend != self.backend:
            raise ModelError(f"{type(self).__name__} runs {self.backend}, not {choice.backend}")
        self._settings = settings
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None
        self._description: EncoderDescription | None = None
        self.device = choice.device
        self.choice = choice

    @abc.abstractmethod
    def _load(self) -> Loaded:
        """Read the weights and make the model runnable (called once, under the lock)."""

    def load(self) -> None:
        """Load the model once; later calls return at once."""
        if self._loaded is not None:  # every prepare and encode asks: no lock once loaded
            return
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()

    @property
    def loaded(self) -> Loaded:
        """What ``load`` established (loading first if needed)."""
        self.load()
        assert self._loaded is not None
        return self._loaded

    def describe(self) -> EncoderDescription:
        """The loaded weights, their vectors and how they run."""
        if self._description is None:
            loaded = self.loaded
            self._description = EncoderDescription(
                identity=loaded.identity,
                dim=loaded.spec.embed_dim,
                input_size=loaded.spec.input_resolution,
                logit_scale=loaded.logit_scale,
                arch=loaded.spec.arch,
                backend=self.backend,
                device=self.device,
                precision=loaded.tower_precision[Tower.IMAGE],
                tower_precision=loaded.tower_precision,
                fidelity=loaded.fidelity,
                choice=self.choice,
            )
        return self._description

    def prepare(self, image: Image.Image) -> np.ndarray:
        """cn_clip's own transform (bicubic squash to the input size, normalise): the (C, H, W) float32 input,
        the same in every local backend."""
        return clip_preprocess(image, self.loaded.spec.input_resolution)

    @abc.abstractmethod
    def encode_prepared(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """A batch of ``prepare``'s arrays → (n, dim) float32, L2-normalised."""

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pictures → (n, dim) float32, L2-normalised."""
        return self.encode_prepared([self.prepare(image) for image in images])

    @abc.abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Sentences → (n, dim) float32, L2-normalised."""

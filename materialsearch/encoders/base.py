"""What every encoder backend is: the ``Encoder`` Protocol, the backend and precision names, the weights it
loaded (``WeightsSpec``), the choice made for this machine, and ``LoadedWeights``, the load-once lifecycle both
backends share.

Nothing here imports torch, cn_clip or ONNX Runtime: callers that only need the types stay light.
"""

from __future__ import annotations

import abc
import dataclasses
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


FIDELITY_MIN_COSINE = 0.999  # the fidelity bar for any path that is not fp32 (worst cosine to fp32)


def passes_gate(cosine: float) -> bool:
    """Whether vectors whose worst cosine to fp32 is ``cosine`` are close enough to stand in for fp32's."""
    return cosine >= FIDELITY_MIN_COSINE


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """Which backend and precision run the model on which device, and why (shown in the status and the log)."""

    backend: Backend
    precision: Precision
    device: str  # "cpu", "cuda", "cuda:1" ...
    reason: str
    measurements: tuple[Measurement, ...] = ()  # when ``auto`` chose by measuring: every candidate's numbers
    measure_cost_s: float | None = None  # what measuring cost at the start it happened (None: not measured)


@runtime_checkable
class Encoder(Protocol):
    """What the scanner, search and status need from a model backend. Every property but ``backend`` and
    ``device`` loads the model first (``load`` is idempotent)."""

    backend: Backend
    device: str
    choice: BackendChoice  # what ran the model and why (with the measurements when ``auto`` measured)

    def load(self) -> None:
        """Load weights once; raises ModelError with an actionable message."""

    @property
    def precision(self) -> Precision:
        """The image tower's precision (what stored vectors depend on)."""

    @property
    def tower_precision(self) -> Mapping[Tower, Precision]:
        """The precision each tower runs in (ONNX int8 may keep a tower fp32)."""

    @property
    def fidelity(self) -> Mapping[Tower, float]:
        """Worst cosine to fp32 per tower as measured at load (ONNX int8); empty where nothing was measured."""

    @property
    def spec(self) -> WeightsSpec:
        """The loaded weights: where they are and their architecture."""

    @property
    def identity(self) -> str:
        """A string that changes whenever vectors would change (architecture, weights, dim, int8)."""

    @property
    def dim(self) -> int:
        """Vector length."""

    @property
    def input_resolution(self) -> int:
        """Square input size of the image tower, in pixels."""

    @property
    def logit_scale(self) -> float:
        """The weights' learned ``logit_scale`` (cn_clip's parameter, the log of the factor applied to cosines
        before the softmax: ``logits = exp(logit_scale) · cosine``)."""

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """PIL image → the model's input array (C, H, W), float32."""

    def encode_images(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Preprocessed images → (n, dim) float32, L2-normalised."""

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
    """The lifecycle both backends share: ``load`` once under a lock (``_load`` does the work), then report
    the loaded weights. Subclasses add ``encode_images``/``encode_texts``."""

    backend: Backend

    def __init__(self, settings: Settings, choice: BackendChoice):
        if choice.backend != self.backend:
            raise ModelError(f"{type(self).__name__} runs {self.backend}, not {choice.backend}")
        self._settings = settings
        self._choice = choice
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None
        self.device = choice.device
        self.choice = choice

    @abc.abstractmethod
    def _load(self) -> Loaded:
        """Read the weights and make the model runnable (called once, under the lock)."""

    def load(self) -> None:
        """Load the model once; later calls return at once."""
        if self._loaded is not None:  # every preprocess and encode asks: no lock once loaded
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

    @property
    def precision(self) -> Precision:
        """The image tower's precision (what stored vectors depend on)."""
        return self.loaded.tower_precision[Tower.IMAGE]

    @property
    def tower_precision(self) -> Mapping[Tower, Precision]:
        """The precision each tower runs in."""
        return self.loaded.tower_precision

    @property
    def fidelity(self) -> Mapping[Tower, float]:
        """Worst cosine to fp32 per tower measured at load; empty where nothing was measured."""
        return self.loaded.fidelity

    @property
    def spec(self) -> WeightsSpec:
        """The loaded weights."""
        return self.loaded.spec

    @property
    def identity(self) -> str:
        """Architecture, resolution, dim and weights fingerprint (plus ``|int8`` for int8 vectors)."""
        return self.loaded.identity

    @property
    def dim(self) -> int:
        """Vector length of the loaded model."""
        return self.spec.embed_dim

    @property
    def input_resolution(self) -> int:
        """Square input size of the image tower."""
        return self.spec.input_resolution

    @property
    def logit_scale(self) -> float:
        """The weights' learned ``logit_scale`` (log of the cosine → logit factor)."""
        return self.loaded.logit_scale

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """cn_clip's own transform (bicubic squash to the input size, normalise), the same in every backend."""
        return clip_preprocess(image, self.input_resolution)

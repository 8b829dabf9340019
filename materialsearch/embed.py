"""Turn pixels and sentences into L2-normalised vectors.

``Encoder`` is the narrow interface the rest of the app uses; ``CnClipEncoder`` runs cn_clip's torch model (fp32,
bf16 with LayerNorms kept fp32, or fp16 on CUDA) and ``onnx_backend.OnnxEncoder`` runs the same towers exported
to ONNX Runtime (fp32 or dynamic int8). ``make_encoder`` picks one from the settings; ``resolve_backend`` decides
what ``auto`` means on this machine.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .model import ModelError, WeightsSpec, build_clip, resolve_weights, weights_fingerprint

if TYPE_CHECKING:
    from PIL import Image

    from config import Settings

log = logging.getLogger(__name__)

CONTEXT_LENGTH = 52  # cn_clip's tokenizer context; all released models were trained with it
# cn_clip's image normalisation (its image_transform's Normalize)
CLIP_MEAN = np.array((0.48145466, 0.4578275, 0.40821073), np.float32)
CLIP_STD = np.array((0.26862954, 0.26130258, 0.27577711), np.float32)
BACKENDS = ("auto", "torch", "onnx")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


class Encoder(Protocol):
    """What the scanner and search need from a model backend."""

    def load(self) -> None:
        """Load weights (idempotent); raises ModelError with an actionable message."""

    @property
    def identity(self) -> str:
        """A string that changes whenever vectors would change (architecture, weights, dim)."""

    @property
    def dim(self) -> int:
        """Vector length."""

    @property
    def input_resolution(self) -> int:
        """Square input size of the image tower, in pixels."""

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image → the model's input array (C, H, W), float32."""

    def encode_images(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Preprocessed images → (n, dim) float32, L2-normalised."""

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Sentences → (n, dim) float32, L2-normalised."""


def clip_preprocess(image: Image.Image, resolution: int) -> np.ndarray:
    """cn_clip's ``image_transform`` in numpy, equal to it bit for bit (a test proves it): RGB first (cn_clip
    converts after resizing, which gives palette images nearest-neighbour resizing), bicubic squash to the square
    input, /255, normalise, CHW float32.

    It runs in the decode threads: torchvision's tensor ops there would start torch's intra-op threads on top
    of the model's, and on a 2-core machine those fights cost more than the work itself.
    """
    from PIL import Image as PILImage

    if image.mode != "RGB":
        image = image.convert("RGB")
    resized = image.resize((resolution, resolution), PILImage.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.uint8).astype(np.float32) / np.float32(255)
    pixels = (pixels - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (cn_clip's encode_* return unnormalised features)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def pick_device(requested: str) -> str:
    """Resolve ``auto`` to ``cuda`` when a GPU is usable, else ``cpu``."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"MS_DEVICE={requested} but torch sees no CUDA device; use MS_DEVICE=cpu or auto")
    return requested


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX). Without it bf16 matmuls are emulated and run
    slower than fp32, so ``auto`` never picks bf16 there."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """Which backend and precision run the model, and why (shown in the status and the log)."""

    backend: str  # torch | onnx
    precision: str  # fp32 | bf16 | fp16 | int8
    device: str
    reason: str


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and onnx (needed to export and quantize) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(
    backend: str, precision: str, device: str, flags: frozenset[str] | None = None, onnx_ok: bool | None = None
) -> BackendChoice:
    """Turn the MS_BACKEND / MS_PRECISION settings (``auto`` or explicit) into one runnable choice.

    ``auto`` picks, measured on our machines: fp16 on CUDA (torch); bf16 on a CPU with native bf16 (torch,
    20-32 img/s vs 6-8 fp32 for ViT-B-16); elsewhere ONNX Runtime with int8 weights (about 2.8x torch fp32 on an
    AVX2-only CPU), which the ONNX backend itself turns down to fp32 when int8 misses the fidelity bar for the
    loaded weights. Raises ModelError for combinations that cannot run.
    """
    if backend not in BACKENDS:
        raise ModelError(f"MS_BACKEND={backend!r}: use one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ModelError(f"MS_PRECISION={precision!r}: use one of {', '.join(PRECISIONS)}")
    cuda = device.startswith("cuda")
    onnx_ok = onnxruntime_available() if onnx_ok is None else onnx_ok
    native_bf16 = cpu_has_native_bf16(flags)
    if backend == "onnx" or (backend == "auto" and precision == "int8"):
        if cuda:
            raise ModelError("MS_BACKEND=onnx runs on the CPU only; use MS_DEVICE=cpu, or MS_BACKEND=torch on CUDA")
        if not onnx_ok:
            raise ModelError("MS_BACKEND=onnx needs the onnxruntime and onnx packages (pip install onnxruntime onnx)")
        if precision in {"bf16", "fp16"}:
            raise ModelError(f"MS_PRECISION={precision} is for MS_BACKEND=torch; the ONNX backend runs fp32 or int8")
        if precision == "auto":
            return BackendChoice("onnx", "int8", device, "onnx backend: int8 weights (fp32 if int8 misses fidelity)")
        return BackendChoice("onnx", precision, device, f"MS_PRECISION={precision}")
    if precision == "int8":
        raise ModelError("MS_PRECISION=int8 needs MS_BACKEND=onnx (or auto)")
    if precision == "fp16" and not cuda:
        raise ModelError("MS_PRECISION=fp16 is for CUDA; on a CPU use bf16 (native on AVX512-BF16/AMX) or int8")
    if precision != "auto":
        reason = f"MS_PRECISION={precision}"
        if precision == "bf16" and not cuda and not native_bf16:
            reason += " (this CPU has no native bf16: slower than fp32)"
        return BackendChoice("torch", precision, device, reason)
    if cuda:
        return BackendChoice("torch", "fp16", device, "CUDA: fp16")
    if native_bf16:
        return BackendChoice("torch", "bf16", device, "CPU with native bf16 (AVX512-BF16/AMX)")
    if backend == "auto" and onnx_ok:
        return BackendChoice(
            "onnx", "int8", device, "CPU without native bf16: ONNX Runtime int8 (fp32 if int8 misses fidelity)"
        )
    return BackendChoice("torch", "fp32", device, "CPU without native bf16: fp32")


def base_identity(spec: WeightsSpec) -> str:
    """What the fp32 vectors of these weights are named by: architecture, resolution, dim, weights fingerprint."""
    return f"{spec.arch}|{spec.input_resolution}|{spec.embed_dim}|{weights_fingerprint(spec.path)}"


def identity_for(spec: WeightsSpec, precision: str) -> str:
    """The identity stored with the vectors. fp16/bf16 and ONNX fp32 reproduce fp32 vectors (cosine >= 0.9999,
    tested), so they share its identity and a database moves freely between them; int8 weights shift vectors
    measurably (cosine ~0.9998 on ViT-B-16), so int8 vectors carry their own identity and are re-embedded when the
    precision changes."""
    identity = base_identity(spec)
    return f"{identity}|int8" if precision == "int8" else identity


def make_encoder(settings: Settings) -> Encoder:
    """The encoder the settings ask for (``auto`` resolved for this machine), not yet loaded."""
    choice = resolve_backend(settings.backend, settings.precision, pick_device(settings.device))
    if choice.backend == "onnx":
        from .onnx_backend import OnnxEncoder

        return OnnxEncoder(settings, choice)
    return CnClipEncoder(settings, choice)


def to_precision(model, precision: str, device: str = "cpu"):
    """Cast a built cn_clip model for inference at ``precision``.

    On CUDA, fp16 is the layout ``build_clip`` already gives, cn_clip's own (``convert_weights``: fp16 weights,
    visual LayerNorms fp32). Otherwise bf16/fp16 cast everything except LayerNorms, which stay fp32: cn_clip's
    visual LayerNorm upcasts its input to fp32 and fails against low-precision weights ("mixed dtype"), and fp32
    normalisation keeps the vectors within cosine 0.9999 of fp32.
    """
    import torch

    if precision == "fp32":
        return model.float()
    if precision == "fp16" and device.startswith("cuda"):
        return model
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    model.to(dtype)
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.float()
    return model


class WeightsFacts:
    """What every backend reports about its loaded weights; subclasses set ``_spec``/``_identity`` in ``load``."""

    _spec: WeightsSpec | None
    _identity: str

    def load(self) -> None:  # pragma: no cover - every backend defines it
        raise NotImplementedError

    @property
    def spec(self) -> WeightsSpec:
        """The resolved weights (after ``load``)."""
        self.load()
        assert self._spec is not None
        return self._spec

    @property
    def identity(self) -> str:
        """Architecture, resolution, dim and weights fingerprint."""
        self.load()
        return self._identity

    @property
    def dim(self) -> int:
        """Vector length of the loaded model."""
        return self.spec.embed_dim

    @property
    def input_resolution(self) -> int:
        """Square input size of the image tower."""
        return self.spec.input_resolution


class CnClipEncoder(WeightsFacts):
    """cn_clip's CLIP in torch, batched under ``torch.inference_mode``, at the chosen precision."""

    def __init__(self, settings: Settings, choice: BackendChoice | None = None):
        self._settings = settings
        self._lock = threading.Lock()
        self._model = None
        self._spec: WeightsSpec | None = None
        self._identity = ""
        self._choice = choice
        self.device = "cpu"
        self.backend = "torch"
        self.precision = choice.precision if choice else "fp32"

    def load(self) -> None:
        """Resolve, read and build the model once; later calls return at once."""
        with self._lock:
            if self._model is not None:
                return
            import torch

            settings = self._settings
            if settings.torch_threads:
                torch.set_num_threads(settings.torch_threads)
            self.device = pick_device(settings.device)
            choice = self._choice or resolve_backend("torch", settings.precision, self.device)
            if choice.backend != "torch":
                raise ModelError(f"CnClipEncoder runs torch, not {choice.backend}")
            spec, checkpoint = resolve_weights(
                settings.model, settings.models_dir, settings.model_arch, settings.offline
            )
            model = to_precision(build_clip(spec, checkpoint, self.device), choice.precision, self.device)
            del checkpoint
            self.precision = choice.precision
            self._identity = identity_for(spec, choice.precision)
            self._spec = spec
            self._model = model
            log.info("model %s: torch %s on %s (%s)", spec.arch, choice.precision, self.device, choice.reason)

    @property
    def loaded(self) -> bool:
        """Whether ``load`` has finished."""
        return self._model is not None

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """cn_clip's own transform (bicubic squash to the input size, normalise) on an RGB image."""
        return clip_preprocess(image, self.input_resolution)

    def encode_images(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Encode a batch of preprocessed images."""
        import torch

        self.load()
        batch = torch.from_numpy(np.stack(pixels)).to(self.device)
        # cn_clip casts the input to the first conv's dtype itself.
        with torch.inference_mode():
            features = self._model.encode_image(batch)
        return normalise(features.float().cpu().numpy())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenize (context 52) and encode sentences."""
        import torch

        self.load()
        tokens = torch.from_numpy(tokenize_trimmed(texts)).to(self.device)
        with torch.inference_mode():
            features = self._model.encode_text(tokens)
        return normalise(features.float().cpu().numpy())


def tokenize_trimmed(texts: Sequence[str]) -> np.ndarray:
    """cn_clip token ids (context 52) as int64, without the trailing columns that are padding in every row.

    cn_clip masks padding out of attention, so those columns change nothing but cost about half of a short
    query's encode time.
    """
    from cn_clip.clip import _tokenizer, tokenize

    tokens = tokenize(list(texts), context_length=CONTEXT_LENGTH).numpy().astype(np.int64)
    used = int((tokens != _tokenizer.vocab["[PAD]"]).sum(axis=1).max())
    return np.ascontiguousarray(tokens[:, : max(used, 1)])

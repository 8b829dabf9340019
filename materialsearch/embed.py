"""Turn pixels and sentences into L2-normalised vectors.

``Encoder`` is the narrow interface the rest of the app uses (a second backend, e.g. ONNX Runtime, slots in
behind it); ``CnClipEncoder`` runs cn_clip's torch model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .model import ModelError, WeightsSpec, build_clip, resolve_weights, weights_fingerprint

if TYPE_CHECKING:
    from PIL import Image

    from config import Settings

CONTEXT_LENGTH = 52  # cn_clip's tokenizer context; all released models were trained with it


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


class CnClipEncoder:
    """cn_clip's CLIP in torch, fp32, batched under ``torch.inference_mode``."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._model = None
        self._spec: WeightsSpec | None = None
        self._identity = ""
        self.device = "cpu"
        self._transform = None

    def load(self) -> None:
        """Resolve, read and build the model once; later calls return at once."""
        with self._lock:
            if self._model is not None:
                return
            import torch
            from cn_clip.clip import image_transform

            settings = self._settings
            if settings.torch_threads:
                torch.set_num_threads(settings.torch_threads)
            self.device = pick_device(settings.device)
            spec, checkpoint = resolve_weights(
                settings.model, settings.models_dir, settings.model_arch, settings.offline
            )
            model = build_clip(spec, checkpoint, self.device)
            del checkpoint
            self._transform = image_transform(spec.input_resolution)
            self._identity = f"{spec.arch}|{spec.input_resolution}|{spec.embed_dim}|{weights_fingerprint(spec.path)}"
            self._spec = spec
            self._model = model

    @property
    def loaded(self) -> bool:
        """Whether ``load`` has finished."""
        return self._model is not None

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

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """cn_clip's own transform (bicubic squash to the input size, normalise) on an RGB image."""
        self.load()
        if image.mode != "RGB":
            # cn_clip resizes before converting; converting first keeps palette images from nearest-neighbour.
            image = image.convert("RGB")
        return self._transform(image).numpy()

    def encode_images(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """Encode a batch of preprocessed images."""
        import torch

        self.load()
        batch = torch.from_numpy(np.stack(pixels)).to(self.device)
        with torch.inference_mode():
            features = self._model.encode_image(batch)
        return normalise(features.float().cpu().numpy())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenize (context 52) and encode sentences."""
        import torch
        from cn_clip.clip import _tokenizer, tokenize

        self.load()
        tokens = tokenize(list(texts), context_length=CONTEXT_LENGTH)
        # cn_clip masks padding out of attention, so trailing all-padding columns change nothing but cost ~half
        # of a short query's encode time: cut them.
        used = int((tokens != _tokenizer.vocab["[PAD]"]).sum(dim=1).max())
        tokens = tokens[:, : max(used, 1)].to(self.device)
        with torch.inference_mode():
            features = self._model.encode_text(tokens)
        return normalise(features.float().cpu().numpy())

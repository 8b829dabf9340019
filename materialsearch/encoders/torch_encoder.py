"""The torch backend: cn_clip's CLIP in torch, batched under ``torch.inference_mode``, in fp32, bf16 (LayerNorms
kept fp32) or fp16 on CUDA."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from materialsearch.encoders.base import Backend, BackendChoice, Loaded, LoadedWeights, Precision, Tower
from materialsearch.encoders.clip import normalise, tokenize_trimmed
from materialsearch.encoders.registry import register_backend
from materialsearch.encoders.weights import build_clip, identity_for, logit_scale_of, resolve_weights

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)


def to_precision(model, precision: Precision, device: str = "cpu"):
    """Cast a built cn_clip model for inference at ``precision``.

    On CUDA, fp16 is the layout ``build_clip`` already gives, cn_clip's own (``convert_weights``: fp16 weights,
    visual LayerNorms fp32). Otherwise bf16/fp16 cast everything except LayerNorms, which stay fp32: cn_clip's
    visual LayerNorm upcasts its input to fp32 and fails against low-precision weights ("mixed dtype"), and fp32
    normalisation keeps the vectors within cosine 0.9999 of fp32.
    """
    import torch

    if precision == Precision.FP32:
        return model.float()
    if precision == Precision.FP16 and device.startswith("cuda"):
        return model
    dtype = {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[precision]
    model.to(dtype)
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.float()
    return model


class TorchEncoder(LoadedWeights):
    """cn_clip's CLIP in torch at the chosen precision, on the chosen device."""

    backend = Backend.TORCH

    def __init__(self, settings: Settings, choice: BackendChoice):
        super().__init__(settings, choice)
        self._model = None  # cn_clip's CLIP, once loaded

    def _load(self) -> Loaded:
        import torch

        settings, choice = self._settings, self.choice
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        spec, checkpoint = resolve_weights(
            settings.model, settings.models_dir, settings.model_arch, settings.offline, settings.model_source
        )
        model = build_clip(spec, checkpoint, self.device)
        # An encoder for query pictures alone drops the text tower (cn_clip's encode_image uses ``visual`` only),
        # so its weights are not held twice. The image tower stays even for sentences alone: cn_clip's ``dtype``,
        # which encode_text casts with, is read from ``visual``'s first convolution.
        if Tower.TEXT not in choice.towers:
            model.bert = None
        self._model = to_precision(model, choice.precision, self.device)
        logit_scale = logit_scale_of(checkpoint, spec)
        del checkpoint
        log.info("model %s: torch %s on %s (%s)", spec.arch, choice.precision, self.device, choice.reason)
        precisions = dict.fromkeys(Tower, choice.precision)
        return Loaded(spec, identity_for(spec, choice.precision), precisions, {}, logit_scale)

    def encode_prepared(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Encode a batch of ``prepare``'s arrays."""
        import torch

        self.load()
        pixels = torch.from_numpy(np.stack(batch)).to(self.device)
        # cn_clip casts the input to the first conv's dtype itself.
        with torch.inference_mode():
            features = self._model.encode_image(pixels)
        return normalise(features.float().cpu().numpy())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenize (context 52, padding trimmed) and encode sentences."""
        import torch

        self.load()
        tokens = torch.from_numpy(tokenize_trimmed(texts)).to(self.device)
        with torch.inference_mode():
            features = self._model.encode_text(tokens)
        return normalise(features.float().cpu().numpy())


register_backend(Backend.TORCH, TorchEncoder)

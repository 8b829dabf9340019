"""Find and load Chinese-CLIP weights: cn_clip model names or checkpoint files, one loading path for both.

A cn_clip name (``ViT-B-16`` …) resolves to ``$MS_DATA_DIR/models/<cn_clip's file name>``, downloaded there by
cn_clip's own downloader when absent and the network allows; a path is a checkpoint file in cn_clip's format
(``{"state_dict": …}``, keys optionally ``module.``-prefixed). Either way the architecture becomes a cn_clip
``model_info`` dict and the weights load through ``build_clip``, which does exactly what cn_clip's
``create_model`` + ``load_from_name`` do (a test proves the outputs match).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from .base import ModelError, Precision, WeightsSpec

# Keys a checkpoint of ours may carry to record its architecture (cn_clip's own checkpoints have neither).
ARCH_KEY = "model_name"  # "VISION@TEXT" config names, e.g. "ViT-B-16@RoBERTa-wwm-ext-base-chinese"
INFO_KEY = "model_info"  # a full cn_clip model_info dict (vision + text config merged), for custom sizes
RESOLUTION_KEY = "input_resolution"


def _cn_clip_utils():
    # Imported lazily: cn_clip pulls in torch and torchvision.
    from cn_clip.clip import utils

    return utils


def config_dir() -> Path:
    """cn_clip's folder of architecture configs (the only place its loader looks)."""
    return Path(_cn_clip_utils().__file__).parent / "model_configs"


def model_info_for(arch: str) -> tuple[dict[str, Any], int, str]:
    """Turn ``ViT-B-16`` or ``VISION@TEXT`` into (cn_clip model_info, input resolution, struct name)."""
    utils = _cn_clip_utils()
    if arch in utils._MODEL_INFO:
        struct = utils._MODEL_INFO[arch]["struct"]
        resolution = utils._MODEL_INFO[arch]["input_resolution"]
    elif "@" in arch:
        struct = arch
        resolution = None
    else:
        known = ", ".join(utils._MODEL_INFO)
        raise ModelError(f"unknown architecture {arch!r}: use one of {known}, or VISION@TEXT config names")
    vision, text = struct.split("@", 1)
    info: dict[str, Any] = {}
    for part in (vision, text):
        config_file = config_dir() / f"{part.replace('/', '-')}.json"
        if not config_file.is_file():
            raise ModelError(f"cn_clip has no architecture config named {part!r} (looked for {config_file})")
        info.update(json.loads(config_file.read_text()))
    if isinstance(info.get("vision_layers"), str):
        # cn_clip stores ResNet layer counts as a string like "[3,4,6,3]".
        info["vision_layers"] = json.loads(info["vision_layers"])
    return info, int(resolution or info["image_resolution"]), struct


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub's host answers at all (so a missing file fails fast offline)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    from huggingface_hub import constants

    host = urllib.parse.urlparse(constants.ENDPOINT).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(
    model: str, models_dir: str, model_arch: str = "", offline: bool = False
) -> tuple[WeightsSpec, dict[str, Any]]:
    """Find and read the weights for ``model`` (a cn_clip name or a checkpoint path).

    A named model missing from ``models_dir`` is downloaded there when allowed. Returns the spec and the
    checkpoint dict (read once, since real checkpoints are hundreds of MB).
    """
    utils = _cn_clip_utils()
    if model in utils._MODELS:
        path = os.path.join(models_dir, utils._MODELS[model][1])
        if not os.path.isfile(path):
            _download_named(model, models_dir, path, offline)
        checkpoint = _read_checkpoint(path)
        info, resolution, struct = _recorded_arch(checkpoint) or model_info_for(model)
        return WeightsSpec(model, path, info, resolution, struct), checkpoint
    if not os.path.isfile(model):
        names = ", ".join(utils._MODELS)
        raise ModelError(f"MS_MODEL={model!r} is neither a cn_clip model name ({names}) nor an existing file")
    checkpoint = _read_checkpoint(model)
    recorded = _recorded_arch(checkpoint)
    if model_arch:
        info, resolution, struct = model_info_for(model_arch)
    elif recorded is not None:
        info, resolution, struct = recorded
    else:
        raise ModelError(
            f"{model} does not record its architecture: set MS_MODEL_ARCH (e.g. ViT-B-16) to the model it was "
            "trained as"
        )
    return WeightsSpec(model, os.path.abspath(model), info, resolution, struct), checkpoint


def _download_named(model: str, models_dir: str, path: str, offline: bool) -> None:
    where = (
        f"Put the weights file there by hand: copy {os.path.basename(path)} (from the Chinese-CLIP release) to {path}"
    )
    if offline or not _hub_reachable():
        reason = "MS_OFFLINE is set" if offline else "the model hub cannot be reached"
        raise ModelError(f"model weights for {model} are missing and {reason}. {where}")
    os.makedirs(models_dir, exist_ok=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _cn_clip_utils()._download(model, models_dir)
    except Exception as exc:
        raise ModelError(f"downloading {model} failed ({type(exc).__name__}: {exc}). {where}") from exc


def _read_checkpoint(path: str) -> dict[str, Any]:
    import torch

    try:
        with open(path, "rb") as handle:
            checkpoint = torch.load(handle, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ModelError(f"{path} is not a cn_clip checkpoint (expected a dict with a 'state_dict')")
    return checkpoint


def _recorded_arch(checkpoint: dict[str, Any]) -> tuple[dict[str, Any], int, str] | None:
    if INFO_KEY in checkpoint:
        info = dict(checkpoint[INFO_KEY])
        resolution = int(checkpoint.get(RESOLUTION_KEY) or info["image_resolution"])
        return info, resolution, str(checkpoint.get(ARCH_KEY) or "custom")
    if ARCH_KEY in checkpoint:
        return model_info_for(str(checkpoint[ARCH_KEY]))
    return None


def build_clip(spec: WeightsSpec, checkpoint: dict[str, Any], device: str = "cpu"):
    """Build cn_clip's ``CLIP`` from ``spec`` exactly as cn_clip's ``create_model``/``load_from_name`` do."""
    from cn_clip.clip.model import CLIP, convert_weights

    model = CLIP(**spec.model_info)
    convert_weights(model)
    state_dict = checkpoint["state_dict"]
    if next(iter(state_dict)).startswith("module"):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items() if "bert.pooler" not in k}
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ModelError(f"{spec.path} does not fit architecture {spec.arch}: {str(exc)[:300]}") from exc
    if device == "cpu":
        model.float()
    else:
        model.to(device)
    model.eval()
    return model


def weights_fingerprint(path: str) -> str:
    """A cheap identity for a weights file: size plus a hash of its first and last MiB."""
    size = os.path.getsize(path)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


def base_identity(spec: WeightsSpec) -> str:
    """What the fp32 vectors of these weights are named by: architecture, resolution, dim, weights fingerprint."""
    return f"{spec.arch}|{spec.input_resolution}|{spec.embed_dim}|{weights_fingerprint(spec.path)}"


def identity_for(spec: WeightsSpec, precision: Precision) -> str:
    """The identity stored with the vectors. fp16/bf16 and ONNX fp32 reproduce fp32 vectors (cosine >= 0.9999,
    tested), so they share its identity and a database moves freely between them; int8 weights shift vectors
    measurably (cosine ~0.9998 on ViT-B-16), so int8 vectors carry their own identity and are re-embedded when the
    precision changes."""
    identity = base_identity(spec)
    return f"{identity}|int8" if precision == Precision.INT8 else identity

"""Find and load Chinese-CLIP weights: cn_clip model names or checkpoint files, one loading path for both.

A cn_clip name (``ViT-B-16`` …) resolves to ``$MS_DATA_DIR/models/<cn_clip's file name>``, downloaded there by
cn_clip's own downloader when absent and the network allows; a path is a weights file or folder in any format
``checkpoints`` reads (cn_clip's, its training checkpoints, bare state dicts, Hugging Face Chinese-CLIP). Either
way the architecture becomes a cn_clip ``model_info`` dict and the weights load through ``build_clip``, which
builds cn_clip's own ``CLIP`` as its ``create_model`` + ``load_from_name`` do (a test proves the outputs match).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import urllib.parse
from typing import Any

from materialsearch.encoders.architectures import model_info_for
from materialsearch.encoders.base import ModelError, Precision, WeightsSpec
from materialsearch.encoders.checkpoints import HF_WEIGHT_FILES, read_checkpoint
from materialsearch.encoders.cn_clip_tables import hub_organisations, named_models

# Where named models are downloaded from (MS_MODEL_SOURCE).
HUGGINGFACE, MODELSCOPE = "huggingface", "modelscope"


def _cn_clip_utils():
    # Imported lazily, for downloading only: cn_clip pulls in torch and torchvision.
    from cn_clip.clip import utils

    return utils


def _hub_host(source: str) -> str | None:
    """The host a download from ``source`` talks to (Hugging Face honours ``HF_ENDPOINT``, a mirror)."""
    if source == MODELSCOPE:
        from modelscope.hub import constants

        return os.environ.get("MODELSCOPE_DOMAIN") or constants.DEFAULT_MODELSCOPE_DOMAIN
    from huggingface_hub import constants

    return urllib.parse.urlparse(constants.ENDPOINT).hostname


def _hub_reachable(source: str, timeout: float = 3.0) -> bool:
    """Whether the model hub's host answers at all (so a missing file fails fast offline)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    host = _hub_host(source)
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(
    model: str, models_dir: str, model_arch: str = "", offline: bool = False, source: str = HUGGINGFACE
) -> tuple[WeightsSpec, dict[str, Any]]:
    """Find and read the weights for ``model`` (a cn_clip name or a checkpoint path).

    A named model missing from ``models_dir`` is downloaded there when allowed. Returns the spec and the
    checkpoint dict (read once, since real checkpoints are hundreds of MB).
    """
    models = named_models()
    if model in models:
        path = os.path.join(models_dir, models[model][1])
        if not os.path.isfile(path):
            _download_named(model, models_dir, path, offline, source)
        read = read_checkpoint(path, trusted=True, infer=False)  # our own download of cn_clip's release file
        if read.model_info is not None:
            info, resolution, struct = read.model_info, read.input_resolution, read.arch
        else:  # cn_clip's release files record no architecture: the name says it
            info, resolution, struct = model_info_for(model)
        return WeightsSpec(model, path, info, resolution, struct), {"state_dict": read.state_dict}
    if not os.path.exists(model):
        names = ", ".join(models)
        raise ModelError(f"MS_MODEL={model!r} is neither a cn_clip model name ({names}) nor an existing file or folder")
    read = read_checkpoint(model, infer=not model_arch)
    if model_arch:
        info, resolution, struct = model_info_for(model_arch)
    else:
        info, resolution, struct = read.model_info, read.input_resolution, read.arch
    return WeightsSpec(model, os.path.abspath(model), info, resolution, struct), {"state_dict": read.state_dict}


def download_weights(settings) -> str:
    """Fetch MS_MODEL's weights into the models folder where they are not there yet; where they are now."""
    spec, _checkpoint = resolve_weights(settings.model, settings.models_dir, settings.model_arch, settings.offline)
    return spec.path


def where_to_get(model: str, path: str) -> str:
    """The two ways to get a named model's weights file by hand, for the "missing" error."""
    repo, filename = named_models()[model]
    huggingface_org, modelscope_org = hub_organisations()
    return (
        f"Put {filename} at {path}: download it from https://huggingface.co/{huggingface_org}/{repo} "
        f"(or a mirror: set HF_ENDPOINT) or https://modelscope.cn/models/{modelscope_org}/{repo} "
        "(or set MS_MODEL_SOURCE=modelscope to download from there)"
    )


def _download_named(model: str, models_dir: str, path: str, offline: bool, source: str) -> None:
    where = where_to_get(model, path)
    if offline or not _hub_reachable(source):
        reason = "MS_OFFLINE is set" if offline else f"{_hub_host(source)} ({source}) cannot be reached"
        raise ModelError(f"model weights for {model} are missing and {reason}. {where}")
    os.makedirs(models_dir, exist_ok=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            _cn_clip_utils()._download(model, models_dir, use_modelscope=source == MODELSCOPE)
    except Exception as exc:
        raise ModelError(f"downloading {model} from {source} failed ({type(exc).__name__}: {exc}). {where}") from exc


def build_clip(spec: WeightsSpec, checkpoint: dict[str, Any], device: str = "cpu"):
    """Build cn_clip's ``CLIP`` from ``spec`` exactly as cn_clip's ``create_model``/``load_from_name`` do."""
    from cn_clip.clip.model import CLIP, convert_weights

    model = CLIP(**spec.model_info)
    if device != "cpu":
        # cn_clip runs fp16 on GPUs; on the CPU the weights stay as the file holds them (fp16 release files load
        # exactly as cn_clip loads them, fp32 files such as Hugging Face exports keep their full precision).
        convert_weights(model)
    state_dict = checkpoint["state_dict"]  # cn_clip's layout, prefixes stripped (checkpoints.read_checkpoint)
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


def logit_scale_of(checkpoint: dict[str, Any], spec: WeightsSpec) -> float:
    """The learned ``logit_scale`` of a checkpoint read by ``resolve_weights``, as cn_clip's fp32 model holds it."""
    value = checkpoint["state_dict"].get("logit_scale")
    if value is None:
        raise ModelError(f"{spec.path} has no logit_scale: not a complete CLIP checkpoint")
    return float(value.float().reshape(()).item())


def weights_fingerprint(path: str) -> str:
    """A cheap identity for a weights file (or a Hugging Face model folder): size plus its first and last MiB."""
    if os.path.isdir(path):
        path = next(os.path.join(path, n) for n in HF_WEIGHT_FILES if os.path.isfile(os.path.join(path, n)))
    size = os.path.getsize(path)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


def weights_path(settings) -> str:
    """Where the weights ``settings`` name are (a named model's file in MS_MODELS_DIR, else MS_MODEL itself), read
    or not."""
    models = named_models()
    model = settings.model
    return os.path.join(settings.models_dir, models[model][1]) if model in models else model


def weights_identity(settings) -> str | None:
    """The identity of the weights ``settings`` name, without reading them: the name, MS_MODEL_ARCH and the
    file's fingerprint; None while a named model is not downloaded yet (or a path holds no weights)."""
    model = settings.model
    path = weights_path(settings)
    try:
        return f"{model}|{settings.model_arch}|{weights_fingerprint(path)}"
    except (OSError, StopIteration):  # missing file, or a folder without weights: loading will say why
        return None


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

"""Read a weights file in any format users have, into cn_clip's layout, with a one-line error for anything else.

Accepted, through one path (``read_checkpoint``):
- cn_clip's release and training checkpoints: ``{"state_dict": …}`` (plus ``epoch``, ``step``, ``optimizer``…),
  keys optionally ``module.``-prefixed (DistributedDataParallel);
- a bare state dict (``torch.save(model.state_dict(), …)``, as the distillation model cards show);
- Hugging Face ``transformers`` Chinese-CLIP (``ChineseCLIPModel``: a folder with ``config.json`` and
  ``model.safetensors``/``pytorch_model.bin``, or either weights file alone), converted to cn_clip's names;
- any of these as ``.safetensors``.
The architecture comes from what the file records, else from its tensor shapes (matched against cn_clip's own
configs: ViT-B-16/B-32/L-14/L-14-336/H-14, RN50; RBT3/RoBERTa base/large text towers).
The file is sniffed before it is unpickled, so a JPEG, an HTML error page or a truncated download fails in
milliseconds with what was found. Files given by path are loaded with ``weights_only=True`` (no code runs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
from enum import StrEnum
from pathlib import Path
from typing import Any

from materialsearch.encoders.architectures import ARCH_KEY, INFO_KEY, RESOLUTION_KEY, model_info_for
from materialsearch.encoders.base import ModelError
from materialsearch.encoders.cn_clip_tables import config_dir

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SNIFF_BYTES = 64


class CheckpointFormat(StrEnum):
    """What kind of file the weights came from (reported in status and errors)."""

    CN_CLIP = "cn_clip"  # {"state_dict": …} as cn_clip releases and our own files
    TRAINING = "cn_clip training"  # cn_clip's training checkpoint (epoch, step, optimizer…)
    STATE_DICT = "state dict"  # a bare model.state_dict()
    HUGGINGFACE = "huggingface"  # transformers' ChineseCLIPModel


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Weights in cn_clip's layout (no ``module.`` prefix) and the architecture they have, if known."""

    state_dict: dict[str, Any]
    format: CheckpointFormat
    model_info: dict[str, Any] | None = None
    input_resolution: int | None = None
    arch: str | None = None
    inferred: bool = False  # the architecture was read off the tensor shapes, not recorded in the file


def read_checkpoint(path: str, trusted: bool = False, infer: bool = True) -> Checkpoint:
    """Read ``path`` (a file, or a Hugging Face model folder) into cn_clip's layout; ModelError on anything else.

    ``trusted`` (our own downloads of cn_clip's release files) allows full unpickling; files a user points at
    are loaded with ``weights_only=True``. ``infer=False`` leaves an unrecorded architecture unknown (the caller
    names it, as ``MS_MODEL_ARCH`` does) instead of reading it off the shapes.
    """
    config: dict[str, Any] | None = None
    if os.path.isdir(path):
        weights = next((os.path.join(path, n) for n in HF_WEIGHT_FILES if os.path.isfile(os.path.join(path, n))), None)
        if weights is None:
            raise ModelError(f"{path} is a folder without {' or '.join(HF_WEIGHT_FILES)} (not a Hugging Face model)")
        config = _read_json(os.path.join(path, "config.json"))
        path = weights
    else:
        beside = os.path.join(os.path.dirname(path), "config.json")
        if os.path.basename(path) in HF_WEIGHT_FILES and os.path.isfile(beside):
            config = _read_json(beside)
    raw = _load(path, trusted)
    return _interpret(raw, path, config, infer)


def _read_json(path: str) -> dict[str, Any] | None:
    if not os.path.isfile(path):
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None


def _sniff(path: str) -> str:
    """'zip', 'pickle' or 'safetensors'; ModelError naming what the file looks like otherwise."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelError(f"{path} is empty (0 bytes): not a model checkpoint")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}:
        return "pickle"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < header_len < size:
            return "safetensors"
    raise ModelError(f"{path} is not a model checkpoint: it looks like {_describe(head)} ({size} bytes)")


def _describe(head: bytes) -> str:
    """A guess at what a non-checkpoint file is, from its first bytes."""
    signatures = {
        b"\xff\xd8\xff": "a JPEG image",
        b"\x89PNG": "a PNG image",
        b"GIF8": "a GIF image",
        b"\x1f\x8b": "a gzip archive",
        b"7z\xbc\xaf": "a 7-Zip archive",
        b"Rar!": "a RAR archive",
        b"%PDF": "a PDF document",
        b"ONNX": "an ONNX model",
    }
    for magic, name in signatures.items():
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "an MP4/HEIC media file"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (a failed download?)"
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer (the weights were never fetched)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown format"
    return "a text file"


def _load(path: str, trusted: bool) -> dict[str, Any]:
    kind = _sniff(path)
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(path, device="cpu"))
        except Exception as exc:
            raise ModelError(f"{path}: damaged safetensors file ({_first_line(exc)})") from exc
    import torch

    try:
        with open(path, "rb") as handle:
            loaded = torch.load(handle, map_location="cpu", weights_only=not trusted)
    except Exception as exc:
        message = _first_line(exc)
        if "weights_only" in message or "Unsupported global" in message:
            raise ModelError(
                f"{path} holds Python objects besides tensors, which are not loaded from files given by path "
                "(they could run code): save it again as torch.save({'state_dict': model.state_dict()}, path)"
            ) from exc
        detail = "truncated or damaged" if kind == "zip" else "not a readable checkpoint"
        raise ModelError(f"{path}: {detail} ({message})") from exc
    if not isinstance(loaded, dict):
        raise ModelError(f"{path} holds a {type(loaded).__name__}, not a state dict or a checkpoint dict")
    return loaded


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _is_tensor_dict(value: Any) -> bool:
    import torch

    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _interpret(raw: dict[str, Any], path: str, config: dict[str, Any] | None, infer: bool) -> Checkpoint:
    if "state_dict" in raw and isinstance(raw["state_dict"], dict):
        state_dict = _strip_prefix(raw["state_dict"])
        fmt = CheckpointFormat.TRAINING if {"optimizer", "epoch", "step"} & raw.keys() else CheckpointFormat.CN_CLIP
        recorded = _recorded_arch(raw)
    elif _is_tensor_dict(raw):
        state_dict, fmt, recorded = _strip_prefix(raw), CheckpointFormat.STATE_DICT, None
    else:
        keys = ", ".join(sorted(map(str, raw))[:6])
        raise ModelError(f"{path} is a dict without model weights (keys: {keys})")
    if any(k.startswith("vision_model.") for k in state_dict):
        state_dict, info, resolution = convert_huggingface(state_dict, config)
        inferred = config is None
        return Checkpoint(state_dict, CheckpointFormat.HUGGINGFACE, info, resolution, _arch_label(info), inferred)
    if not any(k.startswith("visual.") for k in state_dict) or not any(k.startswith("bert.") for k in state_dict):
        sample = ", ".join(list(state_dict)[:4])
        raise ModelError(f"{path} holds no Chinese-CLIP weights (no visual.* and bert.* tensors; found {sample}, …)")
    if recorded is not None:
        info, resolution, arch = recorded
        return Checkpoint(state_dict, fmt, info, resolution, arch)
    if not infer:
        return Checkpoint(state_dict, fmt)
    info, resolution, arch = infer_architecture(state_dict)
    return Checkpoint(state_dict, fmt, info, resolution, arch, inferred=True)


def _strip_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop DistributedDataParallel's ``module.`` prefix and the text pooler cn_clip does not use."""
    out = {}
    for key, value in state_dict.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        if "bert.pooler" in key or key.startswith("text_model.pooler"):
            continue
        out[key] = value
    return out


def _recorded_arch(checkpoint: dict[str, Any]) -> tuple[dict[str, Any], int, str] | None:
    """The architecture a checkpoint of ours records (cn_clip's own files record none)."""
    if INFO_KEY in checkpoint:
        info = dict(checkpoint[INFO_KEY])
        resolution = int(checkpoint.get(RESOLUTION_KEY) or info["image_resolution"])
        return info, resolution, str(checkpoint.get(ARCH_KEY) or "custom")
    if ARCH_KEY in checkpoint:
        return model_info_for(str(checkpoint[ARCH_KEY]))
    return None


# --- architecture from shapes -------------------------------------------------------------------------------


def _configs() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(config_dir().glob("*.json"))}


def _count(state_dict: dict[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state_dict if (m := regex.match(k))})


def _vision_facts(sd: dict[str, Any]) -> dict[str, Any]:
    if "visual.conv1.weight" in sd and "visual.transformer.resblocks.0.ln_1.weight" in sd:
        width, _channels, patch, _ = sd["visual.conv1.weight"].shape
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        return {
            "embed_dim": int(sd["visual.proj"].shape[1]),
            "image_resolution": int(grid * patch),
            "vision_layers": _count(sd, r"visual\.transformer\.resblocks\.(\d+)\."),
            "vision_width": int(width),
            "vision_patch_size": int(patch),
        }
    if "visual.layer1.0.conv1.weight" in sd:
        layers = [_count(sd, rf"visual\.layer{i}\.(\d+)\.") for i in range(1, 5)]
        positions = sd["visual.attnpool.positional_embedding"].shape[0]
        return {
            "embed_dim": int(sd["visual.attnpool.c_proj.weight"].shape[0]),
            "image_resolution": int(round((positions - 1) ** 0.5) * 32),
            "vision_layers": layers,
            "vision_width": int(sd["visual.layer1.0.conv1.weight"].shape[0]),
            "vision_patch_size": None,
        }
    raise ModelError("the vision tower is neither a ViT nor a ResNet that cn_clip knows")


def _text_facts(sd: dict[str, Any], prefix: str = "bert.") -> dict[str, Any]:
    words = sd[f"{prefix}embeddings.word_embeddings.weight"]
    return {
        "vocab_size": int(words.shape[0]),
        "text_hidden_size": int(words.shape[1]),
        "text_num_hidden_layers": _count(sd, rf"{re.escape(prefix)}encoder\.layer\.(\d+)\."),
        "text_intermediate_size": int(sd[f"{prefix}encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "text_max_position_embeddings": int(sd[f"{prefix}embeddings.position_embeddings.weight"].shape[0]),
        "text_type_vocab_size": int(sd[f"{prefix}embeddings.token_type_embeddings.weight"].shape[0]),
    }


def infer_architecture(state_dict: dict[str, Any]) -> tuple[dict[str, Any], int, str]:
    """(cn_clip model_info, input resolution, ``VISION@TEXT``) of a cn_clip-layout state dict, from its shapes.

    The shapes are matched against cn_clip's own configs. What they cannot tell (the attention head count) comes
    from the matching config, so an architecture no config matches is refused rather than guessed: a wrong head
    count still loads and silently gives wrong vectors.
    """
    vision, text = _vision_facts(state_dict), _text_facts(state_dict)
    configs = _configs()
    vision_name = next((n for n, c in configs.items() if "vision_width" in c and _matches(c, vision)), None)
    text_name = next((n for n, c in configs.items() if "text_hidden_size" in c and _matches(c, text)), None)
    if vision_name is None or text_name is None:
        found = (
            f"vision width {vision['vision_width']}, {vision['vision_layers']} layers, patch "
            f"{vision['vision_patch_size']}, {vision['image_resolution']} px; text width {text['text_hidden_size']}, "
            f"{text['text_num_hidden_layers']} layers"
        )
        raise ModelError(
            f"the weights' architecture ({found}) matches no cn_clip config: set MS_MODEL_ARCH to the one it was "
            "trained as (e.g. ViT-B-16)"
        )
    info = {**configs[vision_name], **configs[text_name]}
    if isinstance(info.get("vision_layers"), str):
        info["vision_layers"] = json.loads(info["vision_layers"])
    return info, int(info["image_resolution"]), f"{vision_name}@{text_name}"


def _matches(config: dict[str, Any], found: dict[str, Any]) -> bool:
    """Whether every shape fact found agrees with the config (facts a config does not state must be absent)."""
    return all(_same(config.get(key), value) for key, value in found.items() if key in config or value is not None)


def _same(config_value: Any, found: Any) -> bool:
    if isinstance(config_value, str):  # cn_clip stores ResNet layers as "[3,4,6,3]"
        config_value = json.loads(config_value)
    return config_value == found


def _arch_label(info: dict[str, Any]) -> str:
    return (
        f"huggingface ViT-{info['vision_width']}w-{info['vision_layers']}l-p{info['vision_patch_size']}"
        f"@BERT-{info['text_hidden_size']}w-{info['text_num_hidden_layers']}l"
    )


# --- Hugging Face Chinese-CLIP → cn_clip --------------------------------------------------------------------


def convert_huggingface(
    state_dict: dict[str, Any], config: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Rename (and fuse q/k/v, transpose projections of) a ``ChineseCLIPModel`` state dict into cn_clip's layout.

    Returns (state dict, model_info, input resolution). The architecture comes from ``config.json`` when given,
    else from the shapes matched against cn_clip's configs (the released models).
    """
    import torch

    sd = state_dict
    v, out = "vision_model.", {}
    layers = _count(sd, r"vision_model\.encoder\.layers\.(\d+)\.")
    out["visual.class_embedding"] = sd[f"{v}embeddings.class_embedding"]
    out["visual.conv1.weight"] = sd[f"{v}embeddings.patch_embedding.weight"]
    out["visual.positional_embedding"] = sd[f"{v}embeddings.position_embedding.weight"]
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"visual.{ours}.{p}"] = sd[f"{v}{theirs}.{p}"]
    for i in range(layers):
        src, dst = f"{v}encoder.layers.{i}.", f"visual.transformer.resblocks.{i}."
        for p in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{p}"] = torch.cat([sd[f"{src}self_attn.{n}_proj.{p}"] for n in "qkv"], dim=0)
            out[f"{dst}attn.out_proj.{p}"] = sd[f"{src}self_attn.out_proj.{p}"]
            out[f"{dst}ln_1.{p}"] = sd[f"{src}layer_norm1.{p}"]
            out[f"{dst}ln_2.{p}"] = sd[f"{src}layer_norm2.{p}"]
            out[f"{dst}mlp.c_fc.{p}"] = sd[f"{src}mlp.fc1.{p}"]
            out[f"{dst}mlp.c_proj.{p}"] = sd[f"{src}mlp.fc2.{p}"]
    out["visual.proj"] = sd["visual_projection.weight"].t().contiguous()
    out["text_projection"] = sd["text_projection.weight"].t().contiguous()
    out["logit_scale"] = sd["logit_scale"]
    for key, value in sd.items():
        if key.startswith("text_model."):
            out["bert." + key[len("text_model.") :]] = value
    vision, text = _vision_facts(out), _text_facts(out)
    mlp_width = out["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    if mlp_width != 4 * vision["vision_width"]:
        raise ModelError(f"vision MLP width {mlp_width} is not 4× the width {vision['vision_width']} cn_clip builds")
    if config is None:
        info, resolution, _name = infer_architecture(out)
        return out, info, resolution
    vision_cfg, text_cfg = config.get("vision_config") or {}, config.get("text_config") or {}
    try:
        vision_heads, text_heads = int(vision_cfg["num_attention_heads"]), int(text_cfg["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        raise ModelError("config.json names no attention head counts (vision_config/text_config)") from None
    info = {
        **vision,
        **text,
        "vision_head_width": vision["vision_width"] // vision_heads,
        "text_num_attention_heads": text_heads,
        "text_hidden_act": text_cfg.get("hidden_act", "gelu"),
        "text_attention_probs_dropout_prob": 0.1,
        "text_hidden_dropout_prob": 0.1,
        "text_initializer_range": 0.02,
    }
    if vision_cfg.get("hidden_act", "quick_gelu") != "quick_gelu":
        raise ModelError(f"vision activation {vision_cfg['hidden_act']!r}: cn_clip's ViT uses quick_gelu")
    return out, info, int(info["image_resolution"])

"""cn_clip's architectures: names → model_info dicts, from the configs cn_clip ships (the only ones it builds)."""

from __future__ import annotations

import json
from typing import Any

from materialsearch.encoders.base import ModelError
from materialsearch.encoders.cn_clip_tables import config_dir, model_infos

# Keys a checkpoint of ours may carry to record its architecture (cn_clip's own checkpoints have neither).
ARCH_KEY = "model_name"  # "VISION@TEXT" config names, e.g. "ViT-B-16@RoBERTa-wwm-ext-base-chinese"
INFO_KEY = "model_info"  # a full cn_clip model_info dict (vision + text config merged), for custom sizes
RESOLUTION_KEY = "input_resolution"


def model_info_for(arch: str) -> tuple[dict[str, Any], int, str]:
    """Turn ``ViT-B-16`` or ``VISION@TEXT`` into (cn_clip model_info, input resolution, struct name)."""
    infos = model_infos()
    if arch in infos:
        struct = infos[arch]["struct"]
        resolution = infos[arch]["input_resolution"]
    elif "@" in arch:
        struct = arch
        resolution = None
    else:
        known = ", ".join(infos)
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

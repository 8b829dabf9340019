"""The tiny, seeded, random CN-CLIP checkpoint the tests (and ``make-test-model``) use: cn_clip's own classes and
vocab, a 2-layer ViT and a 2-layer BERT, in cn_clip's checkpoint format with its architecture recorded, so it
loads through the real loading path."""

from __future__ import annotations

import os
from typing import Any

from materialsearch.encoders.architectures import ARCH_KEY, INFO_KEY, RESOLUTION_KEY

# A tiny architecture for tests: cn_clip's own classes and vocab, 2-layer ViT and 2-layer BERT.
TEST_MODEL_INFO: dict[str, Any] = {
    "embed_dim": 64,
    "image_resolution": 224,
    "vision_layers": 2,
    "vision_width": 64,
    "vision_patch_size": 32,
    "vision_head_width": 32,
    "vocab_size": 21128,
    "text_attention_probs_dropout_prob": 0.1,
    "text_hidden_act": "gelu",
    "text_hidden_dropout_prob": 0.1,
    "text_hidden_size": 64,
    "text_initializer_range": 0.02,
    "text_intermediate_size": 128,
    "text_max_position_embeddings": 512,
    "text_num_attention_heads": 2,
    "text_num_hidden_layers": 2,
    "text_type_vocab_size": 2,
}


def make_test_model(path: str, seed: int = 0, embed_dim: int | None = None) -> str:
    """Write a tiny, seeded, random CN-CLIP checkpoint (cn_clip's format) that records its architecture;
    ``embed_dim`` gives it another vector length (tests of a model change)."""
    import torch
    from cn_clip.clip.model import CLIP, convert_weights

    info = TEST_MODEL_INFO if embed_dim is None else {**TEST_MODEL_INFO, "embed_dim": embed_dim}
    torch.manual_seed(seed)
    model = CLIP(**info)
    # Random BERT init leaves LayerNorm at identity and biases at zero; perturb everything a little so
    # every weight matters and distinct inputs give clearly distinct vectors.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    convert_weights(model)
    checkpoint = {
        "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
        ARCH_KEY: "tiny-test-ViT@tiny-test-BERT",
        INFO_KEY: info,
        RESOLUTION_KEY: info["image_resolution"],
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return path

"""Every weights format a user brings loads through one path; anything else fails fast with one line.

Formats: cn_clip's ``{"state_dict"}`` files, cn_clip training checkpoints, bare state dicts, Hugging Face
``ChineseCLIPModel`` folders/files (converted to cn_clip's layout, checked against transformers' own forward).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from materialsearch.encoders.architectures import model_info_for
from materialsearch.encoders.base import ModelError, WeightsSpec
from materialsearch.encoders.checkpoints import CheckpointFormat, infer_architecture, read_checkpoint
from materialsearch.encoders.tiny import TEST_MODEL_INFO
from materialsearch.encoders.weights import build_clip, resolve_weights

VISION_KEYS = ("embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size")


@pytest.fixture
def tiny_configs(monkeypatch):
    """cn_clip's configs plus the tiny test architecture, as if cn_clip shipped it (the matcher then knows it)."""
    from materialsearch.encoders import checkpoints

    shipped = checkpoints._configs()
    vision = {k: v for k, v in TEST_MODEL_INFO.items() if k in VISION_KEYS or k == "vision_head_width"}
    text = {k: v for k, v in TEST_MODEL_INFO.items() if k not in vision}
    monkeypatch.setattr(checkpoints, "_configs", lambda: {**shipped, "tiny-ViT": vision, "tiny-BERT": text})


def _tiny_clip(info=TEST_MODEL_INFO, seed=1):
    from cn_clip.clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(**info)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model.eval()


def _inputs(resolution=224):
    from cn_clip.clip import tokenize

    generator = torch.Generator().manual_seed(7)
    pixels = torch.randn(2, 3, resolution, resolution, generator=generator)
    tokens = tokenize(["海边的日落", "a red car in the snow"], context_length=52)
    return pixels, tokens


def _normalised(x):
    x = x.detach().float()
    return (x / x.norm(dim=-1, keepdim=True)).numpy()


def _our_vectors(path, model_arch=""):
    spec, checkpoint = resolve_weights(str(path), models_dir=str(path) + ".models", model_arch=model_arch)
    model = build_clip(spec, checkpoint)
    pixels, tokens = _inputs(spec.input_resolution)
    with torch.no_grad():
        return spec, _normalised(model.encode_image(pixels)), _normalised(model.encode_text(tokens))


def _reference_vectors(model):
    pixels, tokens = _inputs()
    with torch.no_grad():
        return _normalised(model.encode_image(pixels)), _normalised(model.encode_text(tokens))


def test_a_bare_state_dict_loads_with_its_architecture_read_off_the_shapes(tmp_path, tiny_configs):
    model = _tiny_clip()
    path = tmp_path / "team_distill.pth"
    torch.save(model.state_dict(), path)  # what the distillation model card does
    checkpoint = read_checkpoint(str(path))
    assert checkpoint.format == CheckpointFormat.STATE_DICT and checkpoint.inferred
    assert checkpoint.arch == "tiny-ViT@tiny-BERT" and checkpoint.model_info == TEST_MODEL_INFO
    _spec, images, texts = _our_vectors(path)
    ref_images, ref_texts = _reference_vectors(model)
    assert np.abs(images - ref_images).max() <= 1e-5 and np.abs(texts - ref_texts).max() <= 1e-5


def test_a_cn_clip_training_checkpoint_with_module_prefixes_loads(tmp_path, tiny_configs):
    model = _tiny_clip()
    path = tmp_path / "epoch_latest.pt"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4).state_dict()
    torch.save({"epoch": 3, "step": 1200, "name": "finetune", "state_dict": state, "optimizer": optimizer}, path)
    checkpoint = read_checkpoint(str(path))
    assert checkpoint.format == CheckpointFormat.TRAINING
    assert not any(k.startswith("module.") for k in checkpoint.state_dict)
    _spec, images, texts = _our_vectors(path)
    ref_images, ref_texts = _reference_vectors(model)
    assert np.abs(images - ref_images).max() <= 1e-5 and np.abs(texts - ref_texts).max() <= 1e-5


def test_our_own_checkpoint_keeps_its_recorded_architecture(tiny_model):
    checkpoint = read_checkpoint(tiny_model)
    assert checkpoint.format == CheckpointFormat.CN_CLIP and not checkpoint.inferred
    assert checkpoint.model_info == TEST_MODEL_INFO  # 32-wide heads: recorded, so not guessed


def test_an_architecture_no_config_matches_is_refused_not_guessed(tmp_path):
    """Head counts cannot be read off shapes; guessing them would load fine and give wrong vectors."""
    path = tmp_path / "bare.pt"
    torch.save(_tiny_clip().state_dict(), path)
    with pytest.raises(ModelError, match=r"matches no cn_clip config: set MS_MODEL_ARCH") as caught:
        read_checkpoint(str(path))
    assert "vision width 64, 2 layers, patch 32, 224 px; text width 64, 2 layers" in str(caught.value)


@pytest.mark.parametrize("name", ["ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14", "RN50"])
def test_every_released_architecture_is_recognised_from_its_shapes(name):
    from cn_clip.clip.model import CLIP

    info, resolution, struct = model_info_for(name)
    with torch.device("meta"):  # shapes only: no memory, no time
        state_dict = CLIP(**info).state_dict()
    inferred, inferred_resolution, label = infer_architecture(state_dict)
    assert label == struct and inferred_resolution == resolution
    assert inferred == info


def test_text_towers_are_told_apart():
    from cn_clip.clip.model import CLIP

    for text in ["RBT3-chinese", "RoBERTa-wwm-ext-base-chinese", "RoBERTa-wwm-ext-large-chinese"]:
        info, _resolution, _struct = model_info_for(f"ViT-B-16@{text}")
        with torch.device("meta"):
            state_dict = CLIP(**info).state_dict()
        assert infer_architecture(state_dict)[2] == f"ViT-B-16@{text}"


# --- Hugging Face Chinese-CLIP ------------------------------------------------------------------------------


def _hf_model(seed=3):
    from transformers import ChineseCLIPConfig, ChineseCLIPModel

    torch.manual_seed(seed)
    config = ChineseCLIPConfig(
        text_config={
            "vocab_size": 21128,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
        },
        vision_config={
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 256,
            "patch_size": 32,
            "image_size": 224,
        },
        projection_dim=48,
    )
    model = ChineseCLIPModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model


def _hf_vectors(model):
    pixels, tokens = _inputs()
    with torch.no_grad():
        images = model.get_image_features(pixel_values=pixels).pooler_output
        texts = model.get_text_features(
            input_ids=tokens, attention_mask=(tokens != 0).long(), token_type_ids=torch.zeros_like(tokens)
        ).pooler_output
    return _normalised(images), _normalised(texts)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    model = _hf_model()
    folder = tmp_path_factory.mktemp("hf") / "chinese-clip-vit-tiny"
    model.save_pretrained(folder)
    return folder, _hf_vectors(model)


def test_a_hugging_face_folder_matches_transformers_forward(hf_folder):
    folder, (ref_images, ref_texts) = hf_folder
    checkpoint = read_checkpoint(str(folder))
    assert checkpoint.format == CheckpointFormat.HUGGINGFACE and checkpoint.model_info["embed_dim"] == 48
    _spec, images, texts = _our_vectors(folder)
    assert np.abs(images - ref_images).max() <= 1e-4
    assert np.abs(texts - ref_texts).max() <= 1e-4


def test_a_hugging_face_weights_file_next_to_its_config_loads_too(hf_folder):
    folder, (ref_images, _ref_texts) = hf_folder
    _spec, images, _texts = _our_vectors(folder / "model.safetensors")
    assert np.abs(images - ref_images).max() <= 1e-4


def test_a_hugging_face_file_without_config_needs_a_released_architecture(hf_folder, tmp_path):
    folder, _vectors = hf_folder
    alone = tmp_path / "weights.safetensors"
    alone.write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="matches no cn_clip config"):
        read_checkpoint(str(alone))


def test_a_hugging_face_pytorch_bin_loads(hf_folder, tmp_path):
    from safetensors.torch import load_file

    folder, (ref_images, ref_texts) = hf_folder
    copy = tmp_path / "hf-bin"
    copy.mkdir()
    (copy / "config.json").write_bytes((folder / "config.json").read_bytes())
    torch.save(load_file(folder / "model.safetensors"), copy / "pytorch_model.bin")
    _spec, images, texts = _our_vectors(copy)
    assert np.abs(images - ref_images).max() <= 1e-4 and np.abs(texts - ref_texts).max() <= 1e-4


def test_the_weights_identity_of_a_folder_follows_its_weights_file(hf_folder):
    from materialsearch.encoders.weights import weights_fingerprint

    folder, _vectors = hf_folder
    assert weights_fingerprint(str(folder)) == weights_fingerprint(str(folder / "model.safetensors"))


# --- what is not a checkpoint -------------------------------------------------------------------------------


def _bad_files(tmp_path, media_dir, tiny_model):
    data = Path(tiny_model).read_bytes()
    files = {
        "a JPEG image": (media_dir / "jpg_orient1.jpg").read_bytes(),
        "an HTML page": b"<!DOCTYPE html><html><body>Rate limited</body></html>",
        "empty": b"",
        "a text file": b"just some notes\n",
        "a Git LFS pointer": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
        "truncated or damaged": data[: len(data) // 2],
    }
    paths = {}
    for label, content in files.items():
        path = tmp_path / f"{len(paths)}.pt"
        path.write_bytes(content)
        paths[label] = path
    torch.save([1, 2, 3], tmp_path / "list.pt")
    paths["holds a list"] = tmp_path / "list.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    paths["holds no Chinese-CLIP weights"] = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "args": np.float64(1.0)}, tmp_path / "objects.pt")
    paths["holds Python objects"] = tmp_path / "objects.pt"
    return paths


def test_anything_else_fails_in_one_line_in_under_a_second(tmp_path, media_dir, tiny_model):
    for expected, path in _bad_files(tmp_path, media_dir, tiny_model).items():
        started = time.perf_counter()
        with pytest.raises(ModelError) as caught:
            resolve_weights(str(path), models_dir=str(tmp_path / "models"))
        elapsed = time.perf_counter() - started
        message = str(caught.value)
        assert "\n" not in message and str(path) in message, message
        assert expected.split()[-1].lower() in message.lower(), (expected, message)
        assert elapsed < 1.0, (expected, elapsed)


def test_a_folder_without_weights_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"folder without model\.safetensors or pytorch_model\.bin"):
        read_checkpoint(str(tmp_path))


def test_a_file_that_does_not_fit_its_architecture_says_so(tmp_path, tiny_model):
    spec, checkpoint = resolve_weights(tiny_model, models_dir=str(tmp_path))
    wrong = WeightsSpec(spec.name, spec.path, TEST_MODEL_INFO | {"embed_dim": 32}, 224, "wrong")
    with pytest.raises(ModelError, match="does not fit architecture wrong"):
        build_clip(wrong, checkpoint)

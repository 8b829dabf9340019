"""Model loading: the tiny checkpoint goes through the real loader, which matches cn_clip's own reference path."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
import torch

from materialsearch.decode import decode_image
from materialsearch.embed import CnClipEncoder, normalise
from materialsearch.model import TEST_MODEL_INFO, ModelError, make_test_model, resolve_weights
from tests.conftest import MEDIA

VISION_KEYS = {
    "embed_dim",
    "image_resolution",
    "vision_layers",
    "vision_width",
    "vision_patch_size",
    "vision_head_width",
}


@pytest.fixture
def reference(tiny_model, tmp_path, monkeypatch):
    """cn_clip's own ``load_from_name`` on the tiny checkpoint (its configs placed where cn_clip looks)."""
    from cn_clip.clip import utils

    configs = tmp_path / "cn_clip_home" / "model_configs"
    configs.mkdir(parents=True)
    (configs / "Tiny-ViT.json").write_text(json.dumps({k: v for k, v in TEST_MODEL_INFO.items() if k in VISION_KEYS}))
    (configs / "Tiny-BERT.json").write_text(
        json.dumps({k: v for k, v in TEST_MODEL_INFO.items() if k not in VISION_KEYS})
    )
    # cn_clip reads configs from Path(__file__).parent; point it at our folder for this test only.
    monkeypatch.setattr(utils, "__file__", str(configs.parent / "utils.py"))
    model, preprocess = utils.load_from_name(
        tiny_model, device="cpu", vision_model_name="Tiny-ViT", text_model_name="Tiny-BERT", input_resolution=224
    )
    model.eval()
    return model, preprocess


def test_test_model_is_small_and_seeded(tmp_path):
    a = make_test_model(str(tmp_path / "a.pt"), seed=0)
    b = make_test_model(str(tmp_path / "b.pt"), seed=0)
    c = make_test_model(str(tmp_path / "c.pt"), seed=1)
    assert 2_000_000 < os.path.getsize(a) < 6_000_000
    sd = [torch.load(p, map_location="cpu", weights_only=False)["state_dict"] for p in (a, b, c)]
    key = "module.visual.proj"
    assert torch.equal(sd[0][key], sd[1][key])
    assert not torch.equal(sd[0][key], sd[2][key])


def test_vectors_match_cn_clip_reference(make_settings, reference):
    ref_model, ref_preprocess = reference
    encoder = CnClipEncoder(make_settings())
    encoder.load()
    image = decode_image((MEDIA / "jpg_orient1.jpg").read_bytes(), min_side=384, max_pixels=10**9).image
    with torch.inference_mode():
        expected_image = normalise(ref_model.encode_image(ref_preprocess(image).unsqueeze(0)).numpy())
        from cn_clip.clip import tokenize

        texts = ["海边的日落", "a red car in the snow"]
        expected_text = normalise(ref_model.encode_text(tokenize(texts, context_length=52)).numpy())
    ours_image = encoder.encode_images([encoder.preprocess(image)])
    ours_text = encoder.encode_texts(texts)
    assert np.abs(ours_image - expected_image).max() <= 1e-5
    assert np.abs(ours_text - expected_text).max() <= 1e-5
    assert np.allclose(np.linalg.norm(ours_text, axis=1), 1.0, atol=1e-5)


def test_named_model_is_read_from_the_models_dir_without_network(make_settings, tiny_model, monkeypatch):
    settings = make_settings(model="ViT-B-16")
    os.makedirs(settings.models_dir)
    shutil.copy(tiny_model, os.path.join(settings.models_dir, "clip_cn_vit-b-16.pt"))
    monkeypatch.setattr("socket.create_connection", _no_network)
    encoder = CnClipEncoder(settings)
    encoder.load()
    assert encoder.dim == TEST_MODEL_INFO["embed_dim"]


def _no_network(*_args, **_kwargs):
    raise AssertionError("the network must not be touched when the weights file is present")


def test_missing_weights_fail_fast_with_where_to_put_them(make_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = make_settings(model="ViT-B-16")
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        CnClipEncoder(settings).load()
    assert time.monotonic() - started < 2
    message = str(err.value)
    assert os.path.join(settings.models_dir, "clip_cn_vit-b-16.pt") in message
    assert "missing" in message


def test_missing_weights_with_ms_offline_do_not_probe_the_network(make_settings, monkeypatch):
    monkeypatch.setattr("socket.create_connection", _no_network)
    with pytest.raises(ModelError, match="MS_OFFLINE"):
        CnClipEncoder(make_settings(model="RN50", offline=True)).load()


def test_checkpoint_without_architecture_needs_ms_model_arch(tmp_path, tiny_model):
    checkpoint = torch.load(tiny_model, map_location="cpu", weights_only=False)
    bare = tmp_path / "bare.pt"
    torch.save({"state_dict": checkpoint["state_dict"]}, bare)
    with pytest.raises(ModelError, match="MS_MODEL_ARCH"):
        resolve_weights(str(bare), str(tmp_path))
    # Naming a real architecture that does not fit the weights is a clear error too, not a traceback.
    spec, loaded = resolve_weights(str(bare), str(tmp_path), model_arch="ViT-B-16")
    from materialsearch.model import build_clip

    with pytest.raises(ModelError, match="does not fit"):
        build_clip(spec, loaded)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_unreadable_or_unknown_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "x.pt"
    if content is None:
        torch.save({"weights": 1}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError):
        resolve_weights(str(path), str(tmp_path))
    with pytest.raises(ModelError, match="neither"):
        resolve_weights(str(tmp_path / "nope.pt"), str(tmp_path))

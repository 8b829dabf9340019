"""Model loading: the tiny checkpoint goes through the real loader (its vectors are compared with cn_clip's own
model, once per backend and precision, in test_backends.py), and missing or unfit weights are clear errors."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import torch

from materialsearch.encoders import ModelError, make_encoder
from materialsearch.encoders.tiny import TEST_MODEL_INFO, make_test_model
from materialsearch.encoders.weights import build_clip, resolve_weights


def torch_fp32(settings):
    """The torch fp32 encoder for ``settings`` (loading is what these tests are about, not the choice)."""
    return make_encoder(settings.replace(backend="torch", precision="fp32"))


def test_test_model_is_small_and_seeded(tmp_path):
    a = make_test_model(str(tmp_path / "a.pt"), seed=0)
    b = make_test_model(str(tmp_path / "b.pt"), seed=0)
    c = make_test_model(str(tmp_path / "c.pt"), seed=1)
    assert 2_000_000 < os.path.getsize(a) < 6_000_000
    sd = [torch.load(p, map_location="cpu", weights_only=False)["state_dict"] for p in (a, b, c)]
    key = "module.visual.proj"
    assert torch.equal(sd[0][key], sd[1][key])
    assert not torch.equal(sd[0][key], sd[2][key])


def test_named_model_is_read_from_the_models_dir_without_network(make_settings, tiny_model, monkeypatch):
    settings = make_settings(model="ViT-B-16")
    os.makedirs(settings.models_dir)
    shutil.copy(tiny_model, os.path.join(settings.models_dir, "clip_cn_vit-b-16.pt"))
    monkeypatch.setattr("socket.create_connection", _no_network)
    encoder = torch_fp32(settings)
    assert encoder.describe().dim == TEST_MODEL_INFO["embed_dim"]


def _no_network(*_args, **_kwargs):
    raise AssertionError("the network must not be touched when the weights file is present")


def test_missing_weights_fail_fast_with_where_to_put_them(make_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = make_settings(model="ViT-B-16")
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        torch_fp32(settings).load()
    assert time.monotonic() - started < 2
    message = str(err.value)
    assert os.path.join(settings.models_dir, "clip_cn_vit-b-16.pt") in message
    assert "missing" in message


def test_missing_weights_name_both_ways_to_get_them(make_settings, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        torch_fp32(make_settings(model="ViT-B-16")).load()
    message = str(err.value)
    assert "https://huggingface.co/OFA-Sys/chinese-clip-vit-base-patch16" in message
    assert "https://modelscope.cn/models/AI-ModelScope/chinese-clip-vit-base-patch16" in message
    assert "HF_ENDPOINT" in message and "MS_MODEL_SOURCE=modelscope" in message and "\n" not in message


@pytest.mark.parametrize(
    ("source", "endpoint", "host"),
    [
        ("huggingface", None, "huggingface.co"),
        ("huggingface", "https://hf-mirror.com", "hf-mirror.com"),  # a mirror set through HF_ENDPOINT
        ("modelscope", None, "www.modelscope.cn"),
    ],
)
def test_the_download_source_decides_which_host_is_asked(make_settings, monkeypatch, source, endpoint, host):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if endpoint:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    asked = []

    def unreachable(address, timeout=None):
        asked.append(address[0])
        raise OSError("no network here")

    monkeypatch.setattr("socket.create_connection", unreachable)
    with pytest.raises(ModelError, match=rf"{host} \({source}\) cannot be reached"):
        torch_fp32(make_settings(model="RN50", model_source=source)).load()
    assert asked == [host]


def test_missing_weights_with_ms_offline_do_not_probe_the_network(make_settings, monkeypatch):
    monkeypatch.setattr("socket.create_connection", _no_network)
    with pytest.raises(ModelError, match="MS_OFFLINE"):
        torch_fp32(make_settings(model="RN50", offline=True)).load()


def test_checkpoint_without_architecture_needs_ms_model_arch(tmp_path, tiny_model):
    checkpoint = torch.load(tiny_model, map_location="cpu", weights_only=False)
    bare = tmp_path / "bare.pt"
    torch.save({"state_dict": checkpoint["state_dict"]}, bare)
    with pytest.raises(ModelError, match="MS_MODEL_ARCH"):
        resolve_weights(str(bare), str(tmp_path))
    # Naming a real architecture that does not fit the weights is a clear error too, not a traceback.
    spec, loaded = resolve_weights(str(bare), str(tmp_path), model_arch="ViT-B-16")
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

"""Encoder backends and precisions: what ``auto`` picks, ONNX parity with torch for both towers, int8 and bf16
fidelity against the fp32 reference on the same weights, the export cache, and identities that make a database
re-embed only when the vectors really change."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from materialsearch import onnx_backend
from materialsearch.decode import decode_image
from materialsearch.embed import (
    CnClipEncoder,
    base_identity,
    cpu_flags,
    cpu_has_native_bf16,
    make_encoder,
    resolve_backend,
)
from materialsearch.model import ModelError
from materialsearch.onnx_backend import OnnxEncoder, tower_path

SENTENCES = ["海边的日落", "a dog running on the beach", "城市夜景，高楼大厦灯火通明", "猫"]
PHOTOS = ["jpg_orient1.jpg", "jpeg_nikon_d5000_gps.jpeg", "webp_lossy_photo.webp", "png_rgba_transparent.png"]


def pixels_of(encoder, media_dir):
    decoded = [decode_image((media_dir / name).read_bytes(), min_side=224, max_pixels=10**9).image for name in PHOTOS]
    return [encoder.preprocess(image) for image in decoded]


@pytest.fixture(scope="module")
def reference(tiny_model, tmp_path_factory):
    """The fp32 torch encoder: the reference path."""
    from config import Settings

    settings = Settings.from_env(
        environ={}, model=tiny_model, data_dir=str(tmp_path_factory.mktemp("ref")), backend="torch", precision="fp32"
    )
    encoder = make_encoder(settings)
    encoder.load()
    return encoder


@pytest.fixture(scope="module")
def onnx_settings(tiny_model, tmp_path_factory):
    from config import Settings

    return Settings.from_env(environ={}, model=tiny_model, data_dir=str(tmp_path_factory.mktemp("onnx")))


def pick(*args, **kwargs):
    choice = resolve_backend(*args, **kwargs)
    return choice.backend, choice.precision


def cos(a, b):
    return np.sum(a * b, axis=1)


def test_auto_picks_by_hardware():
    no_bf16 = frozenset({"avx", "avx2", "fma"})
    amx = frozenset({"avx512f", "avx512_bf16", "amx_bf16"})
    assert pick("auto", "auto", "cpu", no_bf16, onnx_ok=True) == ("onnx", "int8")
    assert pick("auto", "auto", "cpu", no_bf16, onnx_ok=False) == ("torch", "fp32")
    assert pick("auto", "auto", "cpu", amx, onnx_ok=True) == ("torch", "bf16")
    assert pick("auto", "auto", "cuda", no_bf16, onnx_ok=True) == ("torch", "fp16")
    assert pick("torch", "auto", "cpu", no_bf16, onnx_ok=True) == ("torch", "fp32")
    assert pick("onnx", "fp32", "cpu", amx, onnx_ok=True) == ("onnx", "fp32")
    assert pick("auto", "int8", "cpu", amx, onnx_ok=True) == ("onnx", "int8")
    # bf16 may be forced on a CPU without it (it runs, slowly), and the reason says so
    forced = resolve_backend("auto", "bf16", "cpu", no_bf16, onnx_ok=True)
    assert (forced.backend, forced.precision) == ("torch", "bf16") and "no native bf16" in forced.reason
    for backend, precision, device in [
        ("onnx", "bf16", "cpu"),
        ("onnx", "auto", "cuda"),
        ("torch", "int8", "cpu"),
        ("torch", "fp16", "cpu"),
        ("tensorrt", "auto", "cpu"),
    ]:
        with pytest.raises(ModelError):
            resolve_backend(backend, precision, device, no_bf16, onnx_ok=True)
    with pytest.raises(ModelError, match="onnxruntime"):
        resolve_backend("onnx", "auto", "cpu", no_bf16, onnx_ok=False)


def test_native_bf16_detection_reads_the_cpu_flags():
    assert not cpu_has_native_bf16(frozenset({"avx2", "avx512f"}))
    assert cpu_has_native_bf16(frozenset({"avx512_bf16"})) and cpu_has_native_bf16(frozenset({"amx_bf16"}))
    flags = cpu_flags()
    assert cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)


@pytest.mark.parametrize("name", [*PHOTOS, "png_palette_trns.png", "jpg_grayscale_concert.jpg", "jpg_cmyk.jpg"])
def test_numpy_preprocess_equals_cn_clips_transform(media_dir, name):
    from cn_clip.clip import image_transform

    from materialsearch.embed import clip_preprocess

    image = decode_image((media_dir / name).read_bytes(), min_side=224, max_pixels=10**9).image
    for resolution in (224, 336):
        expected = image_transform(resolution)(image.convert("RGB")).numpy()
        ours = clip_preprocess(image, resolution)
        assert ours.dtype == np.float32 and ours.shape == expected.shape and ours.flags.c_contiguous
        assert np.array_equal(ours, expected)


def test_onnx_fp32_matches_torch_for_both_towers(reference, onnx_settings, media_dir):
    encoder = make_encoder(onnx_settings.replace(backend="onnx", precision="fp32"))
    assert isinstance(encoder, OnnxEncoder)
    encoder.load()
    assert encoder.tower_precision == {"image": "fp32", "text": "fp32"}
    pixels = pixels_of(reference, media_dir)
    assert np.abs(encoder.encode_images(pixels) - reference.encode_images(pixels)).max() <= 1e-5
    assert np.abs(encoder.encode_texts(SENTENCES) - reference.encode_texts(SENTENCES)).max() <= 1e-5
    # Same vectors, same identity: a database moves between torch fp32 and ONNX fp32 without re-embedding.
    assert encoder.identity == reference.identity == base_identity(reference.spec)
    assert encoder.dim == reference.dim and encoder.input_resolution == reference.input_resolution
    # preprocess is cn_clip's, identical in both backends
    image = decode_image((media_dir / PHOTOS[0]).read_bytes(), min_side=224, max_pixels=10**9).image
    assert np.array_equal(encoder.preprocess(image), reference.preprocess(image))


def test_int8_fidelity_cache_and_identity(reference, onnx_settings, media_dir, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    # Named explicitly: what `auto` picks on each CPU is test_auto_picks_by_hardware's business.
    encoder = make_encoder(onnx_settings.replace(backend="onnx", precision="int8"))
    encoder.load()
    fingerprint = reference.identity.split("|")[-1]
    folder = os.path.join(onnx_settings.models_dir, "onnx")
    for tower in ("image", "text"):
        for precision in ("fp32", "int8"):
            assert os.path.isfile(tower_path(folder, fingerprint, tower, precision))
    record_file = next(p for p in os.scandir(folder) if p.name.endswith(".json"))
    with open(record_file.path, encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["image"] == encoder.fidelity["image"] and record["min_cosine_required"] == 0.999
    print(f"int8 fidelity on the tiny model (worst cosine vs fp32 on the probe set): {encoder.fidelity}")
    assert encoder.tower_precision == {"image": "int8", "text": "int8"}, encoder.fidelity

    pixels = pixels_of(reference, media_dir)
    image_cos = cos(encoder.encode_images(pixels), reference.encode_images(pixels))
    text_cos = cos(encoder.encode_texts(SENTENCES), reference.encode_texts(SENTENCES))
    print(f"int8 vs fp32 on real photos: min {image_cos.min():.6f}; on sentences: min {text_cos.min():.6f}")
    assert image_cos.min() >= 0.999 and text_cos.min() >= 0.999
    assert encoder.identity == reference.identity + "|int8"  # int8 vectors are re-embedded when it changes

    # A picture's int8 vector does not depend on what it is batched with.
    batched = encoder.encode_images(pixels)
    assert np.array_equal(encoder.encode_images(pixels[2:3])[0], batched[2])
    assert np.array_equal(encoder.encode_texts(SENTENCES[1:2])[0], encoder.encode_texts(SENTENCES)[1])

    # A second start loads the cached files: no export, no quantization.
    def fail(*_args, **_kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "export_towers", fail)
    monkeypatch.setattr(onnx_backend, "quantize_int8", fail)
    again = OnnxEncoder(onnx_settings, resolve_backend("onnx", "int8", "cpu"))
    again.load()
    assert again.fidelity == encoder.fidelity and again.identity == encoder.identity
    assert np.array_equal(again.encode_images(pixels[:1]), encoder.encode_images(pixels[:1]))


def test_int8_below_the_fidelity_bar_runs_fp32(reference, tiny_model, tmp_path, monkeypatch, caplog):
    from config import Settings

    monkeypatch.setattr(onnx_backend, "INT8_MIN_COSINE", 1.01)  # no int8 model can meet this
    settings = Settings.from_env(environ={}, model=tiny_model, data_dir=str(tmp_path), backend="onnx")
    encoder = OnnxEncoder(settings, resolve_backend("onnx", "int8", "cpu"))
    with caplog.at_level(logging.WARNING):
        encoder.load()
    assert encoder.tower_precision == {"image": "fp32", "text": "fp32"} and encoder.precision == "fp32"
    assert encoder.identity == reference.identity
    assert sum("below 1.010: running fp32" in r.getMessage() for r in caplog.records) == 2


def test_bf16_keeps_layernorms_fp32_and_fidelity(reference, tiny_model, tmp_path, media_dir):
    import torch

    from config import Settings

    settings = Settings.from_env(environ={}, model=tiny_model, data_dir=str(tmp_path), precision="bf16")
    encoder = make_encoder(settings)  # explicit bf16 runs on any CPU (emulated, slowly, without AVX512-BF16/AMX)
    assert isinstance(encoder, CnClipEncoder)
    encoder.load()
    assert encoder.precision == "bf16"
    norms = [m for m in encoder._model.modules() if isinstance(m, torch.nn.LayerNorm)]
    linears = [m for m in encoder._model.modules() if isinstance(m, torch.nn.Linear)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    assert all(m.weight.dtype == torch.bfloat16 for m in linears)
    pixels = pixels_of(reference, media_dir)
    image_cos = cos(encoder.encode_images(pixels), reference.encode_images(pixels))
    text_cos = cos(encoder.encode_texts(SENTENCES), reference.encode_texts(SENTENCES))
    print(f"bf16 vs fp32: images min {image_cos.min():.6f}, sentences min {text_cos.min():.6f}")
    assert image_cos.min() >= 0.999 and text_cos.min() >= 0.999
    assert encoder.identity == reference.identity


def test_switching_precision_re_embeds_only_when_vectors_change(open_services, library):
    services = open_services(library=str(library), backend="torch", precision="fp32")
    stats = services.scans.run()
    assert stats.added > 0
    services.close()
    same = open_services(library=str(library), backend="onnx", precision="fp32")
    assert same.model_change is None and same.index.ntotal == stats.added
    same.close()
    changed = open_services(library=str(library), backend="onnx", precision="int8")
    # The tiny model's int8 towers pass the fidelity bar (test_int8_fidelity_cache_and_identity asserts it).
    assert changed.encoder.precision == "int8"
    assert changed.model_change and f"{stats.added} items will be re-embedded" in changed.model_change
    assert changed.index.ntotal == 0
    rescan = changed.scans.run()
    assert rescan.updated == stats.added and changed.index.ntotal == stats.added

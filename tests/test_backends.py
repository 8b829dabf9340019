"""Encoder backends and precisions: what ``auto`` picks on each kind of machine (given as CPU flags, whatever this
machine is), every CPU path's fidelity against cn_clip's own fp32 model, the ONNX export cache and int8 bar, and
identities that make a database re-embed only when the vectors really change."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest

from materialsearch.encoders import (
    Backend,
    Encoder,
    Machine,
    ModelError,
    Precision,
    Tower,
    choose_backend,
    make_encoder,
    onnx_encoder,
)
from materialsearch.encoders.choose import read_cpu_flags, read_cpu_model
from materialsearch.encoders.clip import CONTEXT_LENGTH, clip_preprocess, normalise
from materialsearch.encoders.onnx_encoder import OnnxEncoder, tower_path
from materialsearch.encoders.tiny import TEST_MODEL_INFO
from materialsearch.encoders.torch_encoder import TorchEncoder
from materialsearch.encoders.weights import base_identity
from materialsearch.media.decode import decode_image
from tests.conftest import settings_on

SENTENCES = ["海边的日落", "a dog running on the beach", "城市夜景，高楼大厦灯火通明", "猫"]
PHOTOS = ["jpg_orient1.jpg", "jpeg_nikon_d5000_gps.jpeg", "webp_lossy_photo.webp", "png_rgba_transparent.png"]

# The machines we know, by their /proc/cpuinfo flags (see the facts about our machines).
AVX2_ONLY = Machine(frozenset({"avx", "avx2", "fma"}), cuda=False, onnx_runtime=True)
AVX512_BF16 = Machine(frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}), cuda=False, onnx_runtime=True)
AMX = Machine(frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}), False, True)
NO_ONNX = dataclasses.replace(AVX2_ONLY, onnx_runtime=False)
GPU = dataclasses.replace(AVX2_ONLY, cuda=True)


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How close a CPU path's vectors must be to cn_clip's fp32 ones: fp32 element-wise, lower precisions by
    cosine (their error is spread over every element)."""

    max_abs: float | None = None
    min_cosine: float | None = None

    def check(self, ours: np.ndarray, reference: np.ndarray, what: str) -> None:
        assert ours.shape == reference.shape and ours.dtype == np.float32
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        max_abs = float(np.abs(ours - reference).max())
        cosine = float(np.sum(ours * reference, axis=1).min())
        print(f"{what}: max |diff| {max_abs:.2e}, min cosine {cosine:.6f}")
        if self.max_abs is not None:
            assert max_abs <= self.max_abs, what
        if self.min_cosine is not None:
            assert cosine >= self.min_cosine, what


# Measured on the tiny model (AMD EPYC, AVX2): torch fp32 0 difference; ONNX fp32 1.3e-7; torch bf16 min cosine
# 0.99995 (max diff 0.004, which is why fp32's 1e-5 cannot apply to it); ONNX int8 0.99979 (its own bar is 0.999).
FP32 = Tolerance(max_abs=1e-5)
CPU_PATHS = {
    "torch-fp32": (Backend.TORCH, Precision.FP32, FP32),
    "torch-bf16": (Backend.TORCH, Precision.BF16, Tolerance(min_cosine=0.999)),  # forced: emulated without native bf16
    "onnx-fp32": (Backend.ONNX, Precision.FP32, FP32),
    "onnx-int8": (Backend.ONNX, Precision.INT8, Tolerance(min_cosine=onnx_encoder.INT8_MIN_COSINE)),
}


def pixels_of(media_dir, resolution=224):
    decoded = [decode_image((media_dir / name).read_bytes(), min_side=224, max_pixels=10**9).image for name in PHOTOS]
    return [clip_preprocess(image, resolution) for image in decoded]


@pytest.fixture(scope="module")
def reference(tiny_model, media_dir, tmp_path_factory):
    """cn_clip's own ``load_from_name`` on the tiny checkpoint (its configs placed where cn_clip looks), and its
    fp32 vectors for the test photos (preprocessed by ours, bit-equal to cn_clip's transform, see below) and for the
    sentences (cn_clip's untrimmed tokens)."""
    import torch
    from cn_clip.clip import tokenize, utils

    vision = {"embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size"}
    vision.add("vision_head_width")
    configs = tmp_path_factory.mktemp("cn_clip_home") / "model_configs"
    configs.mkdir()
    (configs / "Tiny-ViT.json").write_text(json.dumps({k: v for k, v in TEST_MODEL_INFO.items() if k in vision}))
    (configs / "Tiny-BERT.json").write_text(json.dumps({k: v for k, v in TEST_MODEL_INFO.items() if k not in vision}))
    with pytest.MonkeyPatch.context() as patch:
        # cn_clip reads configs from Path(__file__).parent; point it at our folder while it loads.
        patch.setattr(utils, "__file__", str(configs.parent / "utils.py"))
        model, _preprocess = utils.load_from_name(
            tiny_model, device="cpu", vision_model_name="Tiny-ViT", text_model_name="Tiny-BERT", input_resolution=224
        )
    model.eval()
    pixels = pixels_of(media_dir)
    with torch.inference_mode():
        images = normalise(model.encode_image(torch.from_numpy(np.stack(pixels))).numpy())
        texts = normalise(model.encode_text(tokenize(SENTENCES, context_length=CONTEXT_LENGTH)).numpy())
    return {"pixels": pixels, "images": images, "texts": texts}


@pytest.fixture(scope="module")
def module_data(tmp_path_factory):
    """One data dir for the module, so the ONNX export is made once."""
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def encoder_for(tiny_model, module_data):
    """Loaded encoders by (backend, precision), named explicitly: what ``auto`` picks is tested separately."""

    built = {}

    def get(backend: Backend, precision: Precision):
        if (backend, precision) not in built:
            settings = settings_on(module_data, tiny_model, backend=backend, precision=precision)
            encoder = make_encoder(settings)
            encoder.load()
            built[(backend, precision)] = encoder
        return built[(backend, precision)]

    return get


# --- the choice, per machine --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("machine", "backend", "precision", "device", "expected"),
    [
        # Everything auto on a CPU is measured (tests/test_choose.py), whatever its flags: None here.
        pytest.param(AVX2_ONLY, "auto", "auto", "auto", None, id="avx2-only"),
        pytest.param(NO_ONNX, "auto", "auto", "auto", None, id="avx2-without-onnxruntime"),
        pytest.param(AVX512_BF16, "auto", "auto", "auto", None, id="avx512-bf16-no-amx"),
        pytest.param(AMX, "auto", "auto", "auto", None, id="amx"),
        pytest.param(GPU, "auto", "auto", "auto", ("torch", "fp16", "cuda"), id="cuda"),
        pytest.param(dataclasses.replace(AMX, cuda=True), "auto", "auto", "cpu", None, id="cpu"),
        pytest.param(AVX2_ONLY, "torch", "auto", "auto", ("torch", "fp32", "cpu"), id="torch-on-avx2"),
        pytest.param(AMX, "torch", "auto", "auto", ("torch", "bf16", "cpu"), id="torch-on-amx"),
        pytest.param(AMX, "onnx", "fp32", "auto", ("onnx", "fp32", "cpu"), id="onnx-fp32-on-amx"),
        pytest.param(AMX, "auto", "int8", "auto", ("onnx", "int8", "cpu"), id="int8-means-onnx"),
        pytest.param(AVX2_ONLY, "auto", "bf16", "auto", ("torch", "bf16", "cpu"), id="bf16-forced-on-avx2"),
        pytest.param(GPU, "torch", "fp32", "cuda:1", ("torch", "fp32", "cuda:1"), id="cuda-index"),
    ],
)
def test_the_choice_follows_the_machine(machine, backend, precision, device, expected):
    choice = choose_backend(backend, precision, device, machine)
    if expected is None:
        assert choice is None
        return
    assert (choice.backend, choice.precision, choice.device) == expected
    assert isinstance(choice.backend, Backend) and isinstance(choice.precision, Precision) and choice.reason
    if expected[1] == "bf16" and not machine.native_bf16:
        assert "no native bf16" in choice.reason  # forced bf16 runs, slowly, and the reason says so


@pytest.mark.parametrize(
    ("machine", "backend", "precision", "device", "message"),
    [
        (AVX2_ONLY, "onnx", "bf16", "auto", "fp32 or int8"),
        (GPU, "onnx", "auto", "auto", "CPU only"),
        (AVX2_ONLY, "torch", "int8", "auto", "needs MS_BACKEND=onnx"),
        (AMX, "torch", "fp16", "auto", "for CUDA"),
        (AVX2_ONLY, "tensorrt", "auto", "auto", "MS_BACKEND"),
        (AVX2_ONLY, "auto", "fp8", "auto", "MS_PRECISION"),
        (AVX2_ONLY, "torch", "fp32", "cuda", "no CUDA device"),
        (NO_ONNX, "onnx", "auto", "auto", "onnxruntime"),
    ],
)
def test_impossible_choices_are_clear_errors(machine, backend, precision, device, message):
    with pytest.raises(ModelError, match=message):
        choose_backend(backend, precision, device, machine)


def test_native_bf16_is_avx512_bf16_or_amx():
    assert not AVX2_ONLY.native_bf16 and not Machine(frozenset({"avx512f", "avx512_vnni"}), False, True).native_bf16
    assert AVX512_BF16.native_bf16 and AMX.native_bf16


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert read_cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}
    assert read_cpu_flags(str(arm)) == {"fp", "asimd", "bf16"}
    assert read_cpu_flags(str(tmp_path / "none")) == frozenset()  # no /proc/cpuinfo (macOS)
    assert read_cpu_model(str(x86)) == "Some Xeon"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd\nCPU part\t: 0xd08\n")
    assert read_cpu_model(str(arm)) == "0xd08"
    assert isinstance(read_cpu_model(str(tmp_path / "none")), str)  # platform.processor(), maybe empty


def test_make_encoder_builds_the_choice_for_the_given_machine(make_settings):
    bf16_cpu = make_encoder(make_settings(backend="torch"), machine=AVX512_BF16)
    assert isinstance(bf16_cpu, TorchEncoder) and bf16_cpu.device == "cpu"
    model = bf16_cpu.describe()  # loads it: bf16 runs on any x86 CPU (emulated, slowly, without AVX512-BF16/AMX)
    assert model.precision == Precision.BF16 and bf16_cpu.encode_texts(["猫"]).shape == (1, model.dim)
    assert isinstance(make_encoder(make_settings(precision="int8"), machine=AVX2_ONLY), OnnxEncoder)
    assert isinstance(make_encoder(make_settings(backend="torch"), machine=AVX2_ONLY), TorchEncoder)


# --- fidelity, once per CPU path -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*PHOTOS, "png_palette_trns.png", "jpg_grayscale_concert.jpg", "jpg_cmyk.jpg"])
def test_numpy_preprocess_equals_cn_clips_transform(media_dir, name):
    from cn_clip.clip import image_transform

    image = decode_image((media_dir / name).read_bytes(), min_side=224, max_pixels=10**9).image
    for resolution in (224, 336):
        expected = image_transform(resolution)(image.convert("RGB")).numpy()
        ours = clip_preprocess(image, resolution)
        assert ours.dtype == np.float32 and ours.shape == expected.shape and ours.flags.c_contiguous
        assert np.array_equal(ours, expected)


@pytest.mark.fidelity
@pytest.mark.parametrize("path", list(CPU_PATHS))
def test_fidelity_to_cn_clip_fp32(path, reference, encoder_for, media_dir):
    backend, precision, tolerance = CPU_PATHS[path]
    encoder = encoder_for(backend, precision)
    assert isinstance(encoder, Encoder)  # the whole Protocol, in every backend
    model = encoder.describe()
    # The path asked for is the path that ran, on whatever CPU this is (bf16 is not turned down without AVX512-BF16).
    assert (model.backend, model.precision) == (backend, precision)
    assert model.tower_precision == dict.fromkeys(Tower, precision)
    tolerance.check(encoder.encode_prepared(reference["pixels"]), reference["images"], f"{path} images")
    tolerance.check(encoder.encode_texts(SENTENCES), reference["texts"], f"{path} sentences")
    # Only int8 vectors differ enough to be re-embedded: the others share fp32's identity.
    suffix = "|int8" if precision == Precision.INT8 else ""
    assert model.identity == base_identity(encoder.loaded.spec) + suffix
    assert model.dim == TEST_MODEL_INFO["embed_dim"] and model.input_size == 224
    image = decode_image((media_dir / PHOTOS[0]).read_bytes(), min_side=224, max_pixels=10**9).image
    assert np.array_equal(encoder.prepare(image), reference["pixels"][0])  # cn_clip's, in every backend


@pytest.mark.fidelity
def test_bf16_keeps_layernorms_fp32(encoder_for):
    import torch

    model = encoder_for(Backend.TORCH, Precision.BF16)._model
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)


# --- ONNX: the export cache and the int8 bar ---------------------------------------------------------------------
@pytest.mark.fidelity
def test_int8_record_cache_and_batch_independence(encoder_for, tiny_model, module_data, media_dir, monkeypatch):

    encoder = encoder_for(Backend.ONNX, Precision.INT8)
    model = encoder.describe()
    fingerprint = model.identity.split("|")[-2]
    folder = os.path.join(module_data, "models", "onnx")
    for tower in Tower:
        for precision in (Precision.FP32, Precision.INT8):
            assert os.path.isfile(tower_path(folder, fingerprint, tower, precision))
    record_file = next(p for p in os.scandir(folder) if p.name.endswith("-fidelity.json"))
    with open(record_file.path, encoding="utf-8") as handle:
        record = json.load(handle)
    print(f"int8 fidelity on the tiny model (worst cosine vs fp32 on the probe set): {dict(model.fidelity)}")
    assert record == {**model.fidelity, "min_cosine_required": onnx_encoder.INT8_MIN_COSINE}
    assert min(model.fidelity.values()) >= onnx_encoder.INT8_MIN_COSINE

    # A picture's int8 vector does not depend on what it is batched with.
    pixels = pixels_of(media_dir)
    batched = encoder.encode_prepared(pixels)
    assert np.array_equal(encoder.encode_prepared(pixels[2:3])[0], batched[2])
    assert np.array_equal(encoder.encode_texts(SENTENCES[1:2])[0], encoder.encode_texts(SENTENCES)[1])

    # A second start loads the cached files: no export, no quantization.
    def fail(*_args, **_kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_encoder, "export_towers", fail)
    monkeypatch.setattr(onnx_encoder, "quantize_int8", fail)
    settings = settings_on(module_data, tiny_model, backend="onnx", precision="int8")
    again = make_encoder(settings)
    again_model = again.describe()  # loads it
    assert again_model.fidelity == model.fidelity and again_model.identity == model.identity
    assert np.array_equal(again.encode_prepared(pixels[:1]), encoder.encode_prepared(pixels[:1]))


def test_int8_below_the_fidelity_bar_runs_fp32(tiny_model, tmp_path, monkeypatch, caplog):

    monkeypatch.setattr(onnx_encoder, "INT8_MIN_COSINE", 1.01)  # no int8 model can meet this
    settings = settings_on(tmp_path, tiny_model, backend="onnx", precision="int8")
    encoder = make_encoder(settings)
    with caplog.at_level(logging.WARNING):
        model = encoder.describe()  # loads it
    assert model.tower_precision == dict.fromkeys(Tower, Precision.FP32) and model.precision == Precision.FP32
    assert model.identity == base_identity(encoder.loaded.spec)
    assert sum("below 1.010: running fp32" in r.getMessage() for r in caplog.records) == 2


def test_switching_precision_re_embeds_only_when_vectors_change(open_services, library):
    services = open_services(library=str(library), backend="torch", precision="fp32")
    stats = services.scans.run()
    assert stats.added > 0
    services.close()
    same = open_services(library=str(library), backend="onnx", precision="fp32")
    assert same.model_change is None and same.index.ntotal == stats.added
    same.close()
    changed = open_services(library=str(library), backend="onnx", precision="int8")
    # The tiny model's int8 towers pass the fidelity bar (test_int8_record_cache_and_batch_independence).
    assert changed.encoder.describe().precision == Precision.INT8
    assert changed.model_change and f"{stats.added} items will be re-embedded" in changed.model_change
    assert changed.index.ntotal == 0
    rescan = changed.scans.run()
    assert rescan.updated == stats.added and changed.index.ntotal == stats.added

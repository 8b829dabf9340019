"""The one door to a model (``Encoder``), on the tiny model in both local backends: decoded pictures of any size
and mode in give the vectors of cn_clip's preprocessing followed by the model; ``describe()`` says what the
encoder is (and the status shows it); backends join an open registry by name, and an unknown name is a clear
error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from materialsearch.encoders import (
    Backend,
    BackendChoice,
    Encoder,
    EncoderDescription,
    ModelError,
    Precision,
    Tower,
    make_encoder,
    register_backend,
    registered_backends,
    unregister_backend,
)
from materialsearch.encoders.clip import clip_preprocess
from materialsearch.encoders.onnx_encoder import OnnxEncoder
from materialsearch.encoders.tiny import TEST_MODEL_INFO
from materialsearch.encoders.torch_encoder import TorchEncoder
from materialsearch.encoders.weights import base_identity
from tests.conftest import settings_on

LOCAL = (Backend.TORCH, Backend.ONNX)


@pytest.fixture(scope="module")
def fp32_encoders(tiny_model, tmp_path_factory) -> dict[Backend, Encoder]:
    """Both local backends in fp32 on the tiny model, loaded (one data dir: the ONNX export is made once)."""
    data = tmp_path_factory.mktemp("door")
    built = {}
    for backend in LOCAL:
        encoder = make_encoder(settings_on(data, tiny_model, backend=backend, precision=Precision.FP32))
        encoder.load()
        built[backend] = encoder
    return built


def pictures() -> list[Image.Image]:
    """Pictures as callers may hand them over: any size (smaller and larger than the input, far from square) and
    any mode (the encoder converts)."""
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (301, 517, 3), dtype=np.uint8), "RGB")
    translucent = photo.convert("RGBA")
    translucent.putalpha(128)
    return [
        photo,
        translucent,
        photo.convert("L"),
        photo.convert("P"),
        photo.convert("CMYK"),
        photo.resize((40, 30)),
        photo.resize((90, 1000)),
    ]


@pytest.mark.parametrize("backend", LOCAL)
def test_a_picture_in_gives_the_vector_of_preprocess_then_encode(fp32_encoders, backend):
    encoder = fp32_encoders[backend]
    images = pictures()
    vectors = encoder.encode_images(images)
    # What callers did before the encoders owned their preprocessing: cn_clip's transform, then the model.
    expected = encoder.encode_prepared([clip_preprocess(image, 224) for image in images])
    assert vectors.dtype == np.float32 and vectors.shape == (len(images), TEST_MODEL_INFO["embed_dim"])
    assert np.array_equal(vectors, expected)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # prepare (in the scan's decode threads) + encode_prepared (in its batches) is the same path
    assert np.array_equal(encoder.encode_prepared([encoder.prepare(image) for image in images]), vectors)


def test_both_local_backends_give_the_same_vectors(fp32_encoders):
    images = pictures()[:3]
    torch_vectors, onnx_vectors = (fp32_encoders[backend].encode_images(images) for backend in LOCAL)
    assert np.abs(torch_vectors - onnx_vectors).max() <= 1e-5


def test_describe_says_what_the_encoder_is(fp32_encoders, tiny_model):
    import torch

    checkpoint = torch.load(tiny_model, map_location="cpu", weights_only=False)
    logit_scale = float(checkpoint["state_dict"]["module.logit_scale"].float())
    described = {backend: fp32_encoders[backend].describe() for backend in LOCAL}
    for backend, model in described.items():
        encoder = fp32_encoders[backend]
        assert isinstance(model, EncoderDescription) and model is encoder.describe()  # made once
        assert (model.dim, model.input_size) == (TEST_MODEL_INFO["embed_dim"], TEST_MODEL_INFO["image_resolution"])
        assert model.identity == base_identity(encoder.loaded.spec)  # fp32 in either backend: the same vectors
        assert model.logit_scale == pytest.approx(logit_scale, abs=1e-7)
        assert model.arch == "tiny-test-ViT@tiny-test-BERT"
        assert (model.backend, model.device, model.precision) == (backend, "cpu", Precision.FP32)
        assert model.tower_precision == dict.fromkeys(Tower, Precision.FP32) and model.fidelity == {}
        assert model.choice == BackendChoice(backend, Precision.FP32, "cpu", "MS_PRECISION=fp32")
        with pytest.raises(dataclasses.FrozenInstanceError):
            model.dim = 1  # type: ignore[misc]
    assert described[Backend.TORCH].identity == described[Backend.ONNX].identity


def test_the_status_shows_the_description(make_app):
    from materialsearch.web import services_of

    app = make_app(backend="torch", precision="fp32")
    model = services_of(app).encoder.describe()
    shown = app.test_client().get("/api/status").get_json()["model"]
    assert (shown["arch"], shown["dim"], shown["device"]) == (model.arch, model.dim, model.device)
    assert (shown["backend"], shown["precision"]) == (model.backend, model.precision)
    assert shown["choice"]["reason"] == model.choice.reason


# --- the registry -----------------------------------------------------------------------------------------------
@pytest.fixture
def register():
    """``register(name, factory)``: a backend registered for this test only."""
    names = []

    def add(name, factory):
        register_backend(name, factory)
        names.append(name)

    yield add
    for name in names:
        unregister_backend(name)


def test_a_registered_backend_is_picked_by_name(make_settings, register):
    given = []

    def build(settings, choice):
        given.append((settings, choice))
        return TorchEncoder(settings, BackendChoice(Backend.TORCH, Precision.FP32, "cpu", "the test's own backend"))

    register("tiny-test", build)
    assert registered_backends()["tiny-test"] is build
    settings = make_settings().model_copy(update={"backend": "tiny-test"})  # MS_BACKEND itself lists only ours
    encoder = make_encoder(settings)
    # It decides how it runs: the settings as they are, and no machine facts read.
    assert given == [(settings, BackendChoice("tiny-test", "auto", "auto", "MS_BACKEND=tiny-test"))]
    assert isinstance(encoder, Encoder)
    reference = make_encoder(make_settings(backend="torch", precision="fp32"))
    assert np.array_equal(encoder.encode_texts(["猫"]), reference.encode_texts(["猫"]))
    assert np.array_equal(encoder.encode_images(pictures()[:2]), reference.encode_images(pictures()[:2]))


def test_an_unknown_backend_is_a_clear_error(make_settings, register):
    settings = make_settings().model_copy(update={"backend": "tensorrt"})
    with pytest.raises(ModelError, match=r"^MS_BACKEND='tensorrt': use one of auto, torch, onnx$"):
        make_encoder(settings)
    register("tiny-test", TorchEncoder)
    with pytest.raises(ModelError, match=r"use one of auto, torch, onnx, tiny-test$"):
        make_encoder(settings)


def test_a_name_is_registered_once():
    assert registered_backends()[Backend.TORCH] is TorchEncoder
    register_backend(Backend.TORCH, TorchEncoder)  # the same again: nothing changes
    with pytest.raises(ValueError, match="already registered"):
        register_backend(Backend.TORCH, OnnxEncoder)
    with pytest.raises(ValueError, match="lets the machine choose"):
        register_backend("auto", TorchEncoder)
    assert registered_backends()[Backend.TORCH] is TorchEncoder

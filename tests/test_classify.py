"""Zero-shot classification: the probabilities are cn_clip's own (its forward on the same weights and pixels, both
backends, fp32 ≤ 1e-4), the encoders expose the weights' logit_scale, and /api/classify answers items, video
frames and uploads, and refuses bad input with a 4xx and a message."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from materialsearch.encoders import Backend, Precision, make_encoder
from materialsearch.encoders.clip import CONTEXT_LENGTH, clip_preprocess
from materialsearch.encoders.tiny import TEST_MODEL_INFO
from materialsearch.organise.classify import Classifier, ClassifyError, prompts_for
from materialsearch.web import services_of
from materialsearch.web.models import MAX_CLASSIFY_LABELS

from .conftest import settings_on

LABELS = ["猫", "狗", "海边的日落", "a city at night", "一张收据", "snow"]
TEMPLATE = "一张{}的照片"
TOLERANCE = 1e-4


def picture(seed: int = 3, size: int = 224) -> Image.Image:
    """A deterministic photo-like picture at the model's input size (decoded and preprocessed losslessly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(x * rng.uniform(2, 9) + rng.uniform(0, 3)) * np.cos(y * rng.uniform(2, 9)) for _ in range(3)]
    pixels = (np.stack(channels, -1) + 1) * 127.5 + rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def cn_clip_model(tiny_model):
    """cn_clip's own CLIP on the tiny weights, built and loaded as its ``load_from_name`` does (fp32 on the CPU)."""
    from cn_clip.clip.model import CLIP

    state = torch.load(tiny_model, map_location="cpu", weights_only=True)["state_dict"]
    model = CLIP(**TEST_MODEL_INFO)
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return model.float().eval()


def cn_clip_forward(model, pixels: np.ndarray, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, cosines) from cn_clip's ``model(image, text)``: ``logits_per_image`` and its softmax."""
    from cn_clip.clip import tokenize

    with torch.no_grad():
        image_features, text_features, scale = model(
            torch.from_numpy(pixels[None]), tokenize(sentences, context_length=CONTEXT_LENGTH)
        )
        cosines = image_features @ text_features.t()
        logits_per_image = scale * cosines
        return logits_per_image.softmax(dim=-1)[0].numpy(), cosines[0].numpy()


@pytest.fixture(scope="module")
def fp32_encoders(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("classify")
    built = {}
    for backend in (Backend.TORCH, Backend.ONNX):
        encoder = make_encoder(settings_on(data, tiny_model, backend=backend, precision=Precision.FP32))
        encoder.load()
        built[backend] = encoder
    return built


@pytest.mark.parametrize("backend", [Backend.TORCH, Backend.ONNX])
def test_probabilities_equal_cn_clips_forward(backend, fp32_encoders, cn_clip_model):
    encoder = fp32_encoders[backend]
    model = encoder.describe()
    assert model.logit_scale == pytest.approx(cn_clip_model.logit_scale.item(), abs=1e-7)
    pixels = clip_preprocess(picture(), model.input_size)
    expected, cosines = cn_clip_forward(cn_clip_model, pixels, prompts_for(LABELS, TEMPLATE))

    scored = Classifier(encoder).classify(encoder.encode_prepared([pixels])[0], LABELS, TEMPLATE)

    by_label = {s.label: s for s in scored}
    ours = np.array([by_label[label].probability for label in LABELS])
    assert np.abs(ours - expected).max() <= TOLERANCE
    assert np.abs(np.array([by_label[label].score for label in LABELS]) - cosines).max() <= TOLERANCE
    assert [s.probability for s in scored] == sorted((s.probability for s in scored), reverse=True)
    assert sum(s.probability for s in scored) == pytest.approx(1, abs=1e-5)


def test_text_vectors_are_cached_and_equal_to_fresh_ones(fp32_encoders):
    encoder = fp32_encoders[Backend.ONNX]
    classifier = Classifier(encoder)
    first = classifier.text_vectors(["猫", "狗"])
    again = classifier.text_vectors(["狗", "猫", "鸟"])
    assert np.array_equal(again[:2], first[::-1])
    assert np.allclose(again[2], encoder.encode_texts(["鸟"])[0], atol=1e-6)


def test_a_template_needs_its_placeholder():
    assert prompts_for(["猫"], "一张{}的照片") == ["一张猫的照片"]
    assert prompts_for(["a cat"], "{}") == ["a cat"]
    with pytest.raises(ClassifyError, match=r"\{\}"):
        prompts_for(["猫"], "a photo")


# --- the API ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(scanned_app, tmp_path_factory, media_dir):
    import shutil

    library = tmp_path_factory.mktemp("classify-library")
    for name in ["jpg_orient1.jpg", "webp_lossy_photo.webp", "mp4_pixel7_h264_noaudio_rot180.mp4"]:
        shutil.copy2(media_dir / name, library / name)  # samples of the shared media: missing ones must fail
    picture().save(library / "picture.png")
    return scanned_app(library, backend="onnx", precision="fp32")  # fp32: the fidelity bar is for fp32


def _item(app, suffix: str):
    store = services_of(app).store
    return next(item for item in store.get_items(range(1, 50)).values() if item.path.endswith(suffix))


def test_classify_an_item_matches_cn_clips_forward_on_its_pixels(app, cn_clip_model):
    item = _item(app, "picture.png")
    response = app.test_client().post(
        "/api/classify", json={"labels": LABELS, "item_id": item.id, "template": TEMPLATE}
    )
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["probability"] for r in results] == sorted((r["probability"] for r in results), reverse=True)
    expected, cosines = cn_clip_forward(cn_clip_model, clip_preprocess(picture(), 224), prompts_for(LABELS, TEMPLATE))
    for result in results:
        i = LABELS.index(result["label"])
        assert abs(result["probability"] - expected[i]) <= TOLERANCE
        assert abs(result["score"] - cosines[i]) <= TOLERANCE


def test_classify_an_upload_equals_classifying_the_same_indexed_picture(app):
    client = app.test_client()
    item = _item(app, "picture.png")
    buffer = io.BytesIO()
    picture().save(buffer, "PNG")
    upload = client.post(
        "/api/classify",
        data={"image": (io.BytesIO(buffer.getvalue()), "p.png"), "labels": "\n".join(LABELS), "template": TEMPLATE},
        content_type="multipart/form-data",
    )
    stored = client.post("/api/classify", json={"labels": LABELS, "item_id": item.id, "template": TEMPLATE})
    assert upload.status_code == 200, upload.json
    pairs = zip(upload.json["results"], stored.json["results"], strict=True)
    assert all(a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 1e-5 for a, b in pairs)
    as_json_array = client.post(
        "/api/classify",
        data={"image": (io.BytesIO(buffer.getvalue()), "p.png"), "labels": '["猫", "狗"]'},
        content_type="multipart/form-data",
    )
    assert {r["label"] for r in as_json_array.json["results"]} == {"猫", "狗"}


def test_classify_a_video_frame_and_its_mean(app):
    services = services_of(app)
    video = next((i for i in services.store.get_items(range(1, 50)).values() if i.kind == "video"), None)
    assert video is not None, "the sample video was not indexed"
    times, _ = services.store.frames(video.id)
    client = app.test_client()
    mean = client.post("/api/classify", json={"labels": LABELS, "item_id": video.id})
    frame = client.post("/api/classify", json={"labels": LABELS, "item_id": video.id, "t": int(times[-1])})
    assert mean.status_code == frame.status_code == 200
    missing = client.post("/api/classify", json={"labels": LABELS, "item_id": video.id, "t": int(times[-1]) + 1})
    assert missing.status_code == 404 and "frame" in missing.json["message"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"labels": [], "item_id": 1}, 400, "labels"),
        ({"labels": [f"label {i}" for i in range(MAX_CLASSIFY_LABELS + 1)], "item_id": 1}, 400, "labels"),
        ({"labels": ["猫", " "], "item_id": 1}, 400, "blank"),
        ({"labels": ["猫", "猫"], "item_id": 1}, 400, "repeat"),
        ({"labels": ["猫"], "item_id": 1, "template": "a photo"}, 400, "{}"),
        ({"labels": ["猫"]}, 400, "item_id"),
        ({"labels": ["猫"], "item_id": 0}, 400, "item_id"),
        ({"labels": ["猫"], "item_id": 10**6}, 404, "not indexed"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(app, body, status, says):
    response = app.test_client().post("/api/classify", json=body)
    assert response.status_code == status
    assert says in response.json["message"]


def test_an_unreadable_upload_is_a_400(app):
    response = app.test_client().post(
        "/api/classify",
        data={"image": (io.BytesIO(b"not a picture"), "x.jpg"), "labels": "猫"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "image" in response.json["message"]

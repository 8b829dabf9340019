"""The encoder as a service on another host (``python -m materialsearch serve-encoder``): the same package and
weights, loaded once, answering over HTTP what a ``RemoteEncoder`` asks.

- ``GET /healthz``: what this encoder is (``describe()``'s identity, dimension, input size, backend, precision…),
  its load (batches in flight) and what it has answered since it started (``answered``: batches, pictures,
  sentences);
- ``POST /v1/encode``: ``{"images": [base64 JPEG…], "texts": [sentence…]}`` → ``{"identity", "dim", "images":
  base64 float32 (n × dim, little-endian), "texts": …, "seconds": the model's time for them}``. Pictures arrive
  already at the model's input size (the client prepares them), so a batch is a few hundred KB, not megabytes of
  originals or floats. A client sharing batches among several services gives each a part in proportion to its
  pictures per model-second (not per wall-second, which the HTTP round trip would make grow with the part).

Encoding needs ``Authorization: Bearer $MS_ENCODER_TOKEN`` when a token is set; the health check is open (Docker's
HEALTHCHECK and load balancers ask it without secrets; it says what the model is, never anything of a library).
"""

from __future__ import annotations

import base64
import hmac
import io
import threading
import time

import numpy as np
from flask import Flask, jsonify, request
from PIL import Image, UnidentifiedImageError

from materialsearch.encoders.base import Encoder

ENCODE_PATH = "/v1/encode"
HEALTH_PATH = "/healthz"
MAX_BATCH = 256  # pictures or sentences per request: a client sends MS_BATCH_SIZE at a time
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def vectors_to_text(vectors: np.ndarray) -> str:
    """(n, dim) float32 → base64 of their little-endian bytes."""
    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode("ascii")


def text_to_vectors(text: str, dim: int) -> np.ndarray:
    """Inverse of ``vectors_to_text``."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(-1, dim).astype(np.float32)


def describe_json(encoder: Encoder) -> dict:
    """The facts a client checks (identity, dimension, input size) and shows."""
    facts = encoder.describe()
    return {
        "identity": facts.identity,
        "dim": facts.dim,
        "input_size": facts.input_size,
        "logit_scale": facts.logit_scale,
        "arch": facts.arch,
        "backend": str(facts.backend),
        "device": facts.device,
        "precision": str(facts.precision),
    }


def create_encoder_app(encoder: Encoder, token: str) -> Flask:
    """The service's Flask app over a loaded ``encoder``; ``token`` (may be empty: no check) guards every route."""
    app = Flask("materialsearch.encoder")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    facts = describe_json(encoder)
    in_flight = [0]
    answered = {"batches": 0, "pictures": 0, "sentences": 0}
    lock = threading.Lock()

    def problem(status: int, message: str):
        return jsonify({"error": message, "status": status}), status

    @app.before_request
    def check_token():
        if not token or request.path == HEALTH_PATH:
            return None
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return problem(401, "wrong or missing encoder token (MS_ENCODER_TOKEN must be the same on both sides)")
        return None

    @app.get(HEALTH_PATH)
    def health():
        with lock:
            return jsonify({"ok": True, **facts, "in_flight": in_flight[0], "answered": dict(answered)})

    @app.post(ENCODE_PATH)
    def encode():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return problem(400, "expected a JSON object with 'images' and/or 'texts'")
        images, texts = body.get("images") or [], body.get("texts") or []
        if not isinstance(images, list) or not isinstance(texts, list):
            return problem(400, "'images' and 'texts' must be lists")
        if len(images) > MAX_BATCH or len(texts) > MAX_BATCH:
            return problem(413, f"at most {MAX_BATCH} pictures and {MAX_BATCH} sentences per request")
        if not all(isinstance(t, str) for t in texts):
            return problem(400, "'texts' must be strings")
        try:
            pictures = [_picture(item) for item in images]
        except ValueError as exc:
            return problem(400, str(exc))
        with lock:
            in_flight[0] += 1
        try:
            answer = {"identity": facts["identity"], "dim": facts["dim"]}
            started = time.perf_counter()
            if pictures:
                answer["images"] = vectors_to_text(encoder.encode_images(pictures))
            if texts:
                answer["texts"] = vectors_to_text(encoder.encode_texts(texts))
            answer["seconds"] = time.perf_counter() - started
            if pictures or texts:  # (not the empty batch a client sends to check its token)
                with lock:
                    answered["batches"] += 1
                    answered["pictures"] += len(pictures)
                    answered["sentences"] += len(texts)
            return jsonify(answer)
        finally:
            with lock:
                in_flight[0] -= 1

    return app


def _picture(item) -> Image.Image:
    if not isinstance(item, str):
        raise ValueError("each picture must be a base64 string of a JPEG or PNG")
    try:
        data = base64.b64decode(item, validate=True)
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except (ValueError, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"a picture could not be read: {exc}") from None
    return picture.convert("RGB")

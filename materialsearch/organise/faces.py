"""Faces in photos: find them (YuNet), embed them (SFace, 128-d), and the rule that calls two faces one person.

Both models are OpenCV Zoo's int8 block-quantised builds, vendored in ``face_models/`` (see its README: where they
come from, their digests and licence), run by OpenCV's ``cv2.FaceDetectorYN`` and ``cv2.FaceRecognizerSF``. They
are loaded once per ``FaceReader``, after their sha256 digests are checked; nothing is downloaded.

Detection runs on the upright picture (the product's decoder applies EXIF orientation) scaled so that its long side
is ``DETECT_SIDE``; alignment and embedding run on the larger decoded picture. Boxes and landmarks are returned as
fractions of the upright picture, so they do not depend on the size anything was decoded at.

A face is kept only when SFace can tell who it is (``usable``): at least ``MIN_FACE_PX`` pixels on the short side of
its box in the upright picture as decoded, a detector score of at least ``MIN_SCORE``, and an aligned 112×112 crop
sharper than ``MIN_SHARPNESS`` (variance of its Laplacian). The numbers were chosen on the shared labelled photos
(``FACES.tsv``); see ``SAME_PERSON`` for the grouping threshold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading

import cv2
import numpy as np
from PIL import Image

from materialsearch.media.decode import DecodedImage, decode_image

_MODELS = os.path.join(os.path.dirname(__file__), "face_models")
DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNISER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
_DIGESTS = {
    DETECTOR_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    RECOGNISER_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
# Stored with each face: faces of another version are found again (a new model re-runs faces only).
MODEL_VERSION = "yunet-2023mar-int8bq+sface-2021dec-int8bq/640"

# Long side of the picture YuNet sees. On the shared photos 320, 640 and 960 px all find every labelled face (their
# faces are at least 1/10 of the picture); the cost per photo was 63, 73 and 87 CPU-ms (detector + recogniser,
# Intel Xeon, one thread). Small faces decide it: the two-people photo pasted small on a 4000 px canvas lost both
# faces at 320 px from 1/40 of the long side on, while 640 px found them down to 1/60 (960: 1/80). Below about 1/45
# (under 28 px at 1280) SFace no longer recognises them reliably (cosine to the same face at full size: 0.86 at
# 1/40, 0.43–0.63 at 1/60, 0.36–0.49 at 1/80), so 640 finds every face that can be recognised, for 16% more CPU
# than 320; 960 only adds faces too small to use.
DETECT_SIDE = 640
EMBED_SIDE = 1280  # long side of the picture faces are aligned and embedded from
MIN_SCORE = 0.75  # YuNet's own confidence
MIN_FACE_PX = 28  # short side of the box, in pixels of the picture embedded from (long side ≤ EMBED_SIDE)
MIN_SHARPNESS = 20.0  # variance of the Laplacian of the aligned grey 112×112 crop (sharp faces: 50–2000)
# Cosine similarity of two SFace embeddings at or above which they are one person. OpenCV's own threshold for
# SFace is 0.363; on the shared labelled photos (FACES.tsv, 13 faces, 6 people, int8bq models at 640 px) pairs of
# one person scored 0.69–1.00 and pairs of different people at most 0.30 (Obama/Biden), so the threshold sits at
# 0.45, nearer the different-people side (real libraries hold less posed photos of one person; tests/test_faces.py
# checks both margins on every run).
SAME_PERSON = 0.45


class FaceModelError(RuntimeError):
    """The vendored model files are missing or not the expected ones."""


@dataclasses.dataclass(frozen=True)
class FoundFace:
    """One face in a photo: its box (left, top, right, bottom) and five landmarks (x, y: eyes, nose, mouth corners)
    as fractions of the upright picture, the detector's score, and its L2-normalised 128-d embedding."""

    box: tuple[float, float, float, float]
    landmarks: tuple[float, ...]
    score: float
    embedding: np.ndarray
    sharpness: float


def _checked(name: str) -> str:
    path = os.path.join(_MODELS, name)
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        raise FaceModelError(f"face model {name} cannot be read: {exc}") from None
    if digest != _DIGESTS[name]:
        raise FaceModelError(f"face model {name} is not the expected file (sha256 {digest})")
    return path


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two normalised embeddings."""
    return float(np.dot(a, b))


class FaceReader:
    """Finds and embeds the faces of photos. One instance per job; calls are serialised (OpenCV's DNN objects are
    not shared between threads)."""

    def __init__(self, threads: int = 1):
        cv2.setNumThreads(max(1, threads))
        self._detector = cv2.FaceDetectorYN.create(_checked(DETECTOR_FILE), "", (DETECT_SIDE, DETECT_SIDE), MIN_SCORE)
        self._recogniser = cv2.FaceRecognizerSF.create(_checked(RECOGNISER_FILE), "")
        self._lock = threading.Lock()

    def read_file(self, data: bytes, max_pixels: int) -> list[FoundFace]:
        """The usable faces of a photo file (any format the product decodes), left to right. Raises DecodeError."""
        decoded = decode_image(data, min_side=EMBED_SIDE // 2, min_long_side=EMBED_SIDE, max_pixels=max_pixels)
        return self.read(decoded)

    def read(self, decoded: DecodedImage) -> list[FoundFace]:
        """The usable faces of a decoded (upright) picture, left to right."""
        return self.read_image(decoded.image)

    def read_image(self, image: Image.Image) -> list[FoundFace]:
        """The usable faces of an upright picture (a photo as decoded, a video's frame), left to right."""
        if max(image.size) > EMBED_SIDE:
            image = image.copy()
            image.thumbnail((EMBED_SIDE, EMBED_SIDE), Image.Resampling.BILINEAR)
        big = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
        height, width = big.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(width, height))
        small = cv2.resize(
            big, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        with self._lock:
            self._detector.setInputSize((small.shape[1], small.shape[0]))
            _, rows = self._detector.detect(small)
            found = []
            for row in rows if rows is not None else ():
                face = self._embed(big, row, scale, width, height)
                if face is not None:
                    found.append(face)
        return sorted(found, key=lambda face: face.box[0])

    def _embed(self, big: np.ndarray, row: np.ndarray, scale: float, width: int, height: int) -> FoundFace | None:
        score = float(row[14])
        full = row.astype(np.float32).copy()
        full[:14] /= scale  # box and landmarks in pixels of the picture embedded from
        x, y, w, h = (float(v) for v in full[:4])
        if score < MIN_SCORE or min(w, h) < MIN_FACE_PX:
            return None
        crop = self._recogniser.alignCrop(big, full)
        sharpness = float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
        if sharpness < MIN_SHARPNESS:
            return None
        feature = self._recogniser.feature(crop).reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(feature))
        if not norm:
            return None
        box = (
            max(0.0, x / width),
            max(0.0, y / height),
            min(1.0, (x + w) / width),
            min(1.0, (y + h) / height),
        )
        landmarks = tuple(float(full[4 + i] / (width if i % 2 == 0 else height)) for i in range(10))
        return FoundFace(box, landmarks, score, feature / norm, sharpness)

"""cn_clip's inputs and outputs, shared by every backend: the image transform in numpy, the trimmed tokenizer,
and L2 normalisation (cn_clip's ``encode_*`` return unnormalised features)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

CONTEXT_LENGTH = 52  # cn_clip's tokenizer context; all released models were trained with it
# cn_clip's image normalisation (its image_transform's Normalize)
CLIP_MEAN = np.array((0.48145466, 0.4578275, 0.40821073), np.float32)
CLIP_STD = np.array((0.26862954, 0.26130258, 0.27577711), np.float32)


def clip_preprocess(image: Image.Image, resolution: int) -> np.ndarray:
    """cn_clip's ``image_transform`` in numpy, equal to it bit for bit (a test proves it): RGB first (cn_clip
    converts after resizing, which gives palette images nearest-neighbour resizing), bicubic squash to the square
    input, /255, normalise, CHW float32.

    It runs in the decode threads: torchvision's tensor ops there would start torch's intra-op threads on top
    of the model's, and on a 2-core machine those fights cost more than the work itself.
    """
    from PIL import Image as PILImage

    if image.mode != "RGB":
        image = image.convert("RGB")
    resized = image.resize((resolution, resolution), PILImage.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.uint8).astype(np.float32) / np.float32(255)
    pixels = (pixels - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    return np.sum(normalise(a) * normalise(b), axis=1)


def tokenize_trimmed(texts: Sequence[str]) -> np.ndarray:
    """cn_clip token ids (context 52) as int64, without the trailing columns that are padding in every row.

    cn_clip masks padding out of attention, so those columns change nothing but cost about half of a short
    query's encode time.
    """
    from materialsearch.encoders.cn_clip_tables import pad_id, tokenize

    tokens = tokenize(list(texts), CONTEXT_LENGTH)
    used = int((tokens != pad_id()).sum(axis=1).max())
    return np.ascontiguousarray(tokens[:, : max(used, 1)])

"""Zero-shot classification: an image vector against label sentences, scored exactly as cn_clip's forward does.

cn_clip's ``CLIP.forward(image, text)`` returns the normalised features and ``logit_scale.exp()``;
``logits_per_image = logit_scale.exp() · image @ text.T`` and the probabilities are its softmax over the labels.
Here the image vector is a stored one (an item, a video frame, or a video's mean frame) or an upload's, the label
vectors come from the text tower through the template, and the same arithmetic gives the same numbers (a test
compares them with cn_clip's forward on the same weights and pixels).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Sequence

import numpy as np

from materialsearch.encoders import Encoder

PLACEHOLDER = "{}"  # where a template puts the label
TEXT_CACHE_SIZE = 4096  # label sentences whose vectors are kept (the text tower costs ~10 ms a sentence on a CPU)


class ClassifyError(ValueError):
    """Labels or a template that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class Scored:
    """One label's cosine with the image and its probability among the labels."""

    label: str
    probability: float
    score: float


def prompts_for(labels: Sequence[str], template: str) -> list[str]:
    """The sentences embedded for ``labels``: the template with each label in place of ``{}``."""
    if PLACEHOLDER not in template:
        raise ClassifyError(f"the template must contain {PLACEHOLDER} where the label goes, got {template!r}")
    return [template.replace(PLACEHOLDER, label) for label in labels]


def softmax_probabilities(cosines: np.ndarray, logit_scale: float) -> np.ndarray:
    """cn_clip's probabilities: softmax over ``exp(logit_scale) · cosine`` (the last axis)."""
    logits = np.exp(np.float32(logit_scale)) * np.asarray(cosines, np.float32)
    logits = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


class Classifier:
    """Scores an image vector against labels; the labels' text vectors are cached per sentence."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self._cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    def text_vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """(n, dim) normalised vectors of ``sentences``, encoding only those not cached."""
        with self._lock:
            missing = list(dict.fromkeys(s for s in sentences if s not in self._cache))
        if missing:
            encoded = self.encoder.encode_texts(missing)
            with self._lock:
                for sentence, vector in zip(missing, encoded, strict=True):
                    self._cache[sentence] = vector
                while len(self._cache) > TEXT_CACHE_SIZE:
                    self._cache.popitem(last=False)
        with self._lock:
            found = [self._cache.get(s) for s in sentences]
        if any(vector is None for vector in found):  # evicted by a concurrent request meanwhile: encode them
            return self.encoder.encode_texts(list(sentences))
        return np.stack(found)

    def classify(self, image_vector: np.ndarray, labels: Sequence[str], template: str = PLACEHOLDER) -> list[Scored]:
        """Each label's probability and cosine for ``image_vector`` (normalised), most probable first."""
        texts = self.text_vectors(prompts_for(labels, template))
        cosines = texts @ np.asarray(image_vector, np.float32)
        probabilities = softmax_probabilities(cosines, self.encoder.describe().logit_scale)
        order = np.argsort(-probabilities, kind="stable")
        return [Scored(labels[i], float(probabilities[i]), float(cosines[i])) for i in order]

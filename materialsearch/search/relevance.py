"""Good matches and exclusions: a query's scores judged against that query's own score distribution.

A fixed cosine cut-off cannot work: CN-CLIP text→image cosines sit near 0.2–0.3 for every query, and where the
relevant ones start differs per query. So each query is measured against the library it searches: its scores over
a uniform sample of the (filtered) library's vectors give a centre μ and a spread σ, and a result's
``z = (score − μ) / σ`` says how far it stands out from what this query scores on any photo. μ and σ are robust
(the median, and 1.4826 × the median absolute deviation, which is σ for a normal distribution): the matches
themselves are the upper tail, and with the mean and standard deviation a query with many good matches would
raise its own bar.

The rule ("good"): a result is a good match when ``z ≥ GOOD_Z[kind]``, i.e. its score is at least
``μ + GOOD_Z[kind]·σ``. The cut differs by the kind of query because their distributions differ in shape: a text
query's scores are a narrow bell with a thin upper tail (what matches stands far out), an example picture's are
broad and skewed up (a whole library of photos resembles a photo a little, and its near neighbours a lot), and a
picture refined with words lies between. The values are priors set on those shapes; ``bench/bench_browse.py``
reports how many results they keep, for tuning with real weights. Whatever the distribution, a result whose cosine
is at least ``NEAR_IDENTICAL`` is always good: it is the query's picture itself or a copy of it (re-encoded,
resized), and a library of photos much like it (or a broad, skewed distribution) must not put the bar above 1.

The exclusion rule: a result is left out for an excluded text when its score *against that text* has
``z ≥ EXCLUDE_Z`` in that text's own distribution over the same sample — it looks like the excluded thing far more
than photos in general do. (Subtracting the text's vector from the query instead would shift every score and
drag unrelated results in.)
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np


class QueryKind(enum.StrEnum):
    """What a query vector was made from."""

    TEXT = "text"
    IMAGE = "image"  # an uploaded picture, or an indexed item ("more like this")
    COMBINED = "combined"  # a picture refined with words


# How many standard deviations above this query's mean score a good match lies, per kind of query.
GOOD_Z = {QueryKind.TEXT: 3.0, QueryKind.IMAGE: 2.5, QueryKind.COMBINED: 2.75}
# A result this many standard deviations above an excluded text's mean score over the library is left out.
EXCLUDE_Z = 2.0
# A result at least this similar to the query is a copy of its picture: always good (the stacking threshold of
# copies, re-encodes and light edits; text→image cosines never come near it).
NEAR_IDENTICAL = 0.95
# Library vectors a distribution is estimated from: σ is then known to a few per cent.
SAMPLE_SIZE = 2048
# The median absolute deviation of a normal distribution is σ / 1.4826.
MAD_TO_SIGMA = 1.4826
# Below this σ every score is the same (a library of copies): nothing stands out, so everything counts.
MIN_STD = 1e-6


@dataclasses.dataclass(frozen=True)
class Distribution:
    """The centre (median) and spread (scaled median absolute deviation) of one query's scores over the library."""

    centre: float
    spread: float

    @classmethod
    def of(cls, scores: np.ndarray) -> Distribution:
        """The distribution of ``scores`` (an empty sample stands out from nothing: σ = 0)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size == 0:
            return cls(0.0, 0.0)
        centre = float(np.median(scores))
        return cls(centre, MAD_TO_SIGMA * float(np.median(np.abs(scores - centre))))

    def z(self, score: float) -> float:
        """How many spreads ``score`` lies above the centre."""
        return (score - self.centre) / self.spread if self.spread >= MIN_STD else 0.0

    def cut(self, z: float) -> float:
        """The score ``z`` spreads above the centre (the centre itself when the spread is ~0)."""
        return self.centre if self.spread < MIN_STD else self.centre + z * self.spread


def distribution(query: np.ndarray, sample: np.ndarray) -> Distribution:
    """The distribution of ``query``'s cosine scores over ``sample`` (rows: unit vectors)."""
    if sample.size == 0:
        return Distribution(0.0, 0.0)
    return Distribution.of(sample @ np.asarray(query, dtype=np.float32))


def good_cutoff(query: np.ndarray, sample: np.ndarray, kind: QueryKind) -> float:
    """The lowest score of a good match for ``query`` (of ``kind``) over a library sampled by ``sample``; never
    above ``NEAR_IDENTICAL`` (a near-identical match always counts as good)."""
    return min(distribution(query, sample).cut(GOOD_Z[kind]), NEAR_IDENTICAL)


def exclusion_cutoff(excluded: np.ndarray, sample: np.ndarray) -> float:
    """The score against an excluded text's vector from which a result is left out."""
    return distribution(excluded, sample).cut(EXCLUDE_Z)


def kept(vectors: np.ndarray, exclusions: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Which rows of ``vectors`` survive every (excluded vector, cut-off) pair: a boolean mask."""
    mask = np.ones(len(vectors), dtype=bool)
    for excluded, cutoff in exclusions:
        if len(vectors):
            mask &= vectors @ excluded < cutoff
    return mask

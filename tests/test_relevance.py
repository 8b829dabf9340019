"""The narrowing rules as pure functions on constructed scores and vectors: good matches, exclusions, stacks,
match quality of names."""

from __future__ import annotations

import numpy as np
import pytest

from materialsearch.search import names, relevance, stacks
from materialsearch.search.relevance import GOOD_Z, Distribution, QueryKind


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def library_with_scores(query: np.ndarray, scores: np.ndarray, seed: int = 0) -> np.ndarray:
    """Unit vectors whose cosine with the unit ``query`` is exactly ``scores``."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(len(scores), len(query)))
    noise -= np.outer(noise @ query, query)  # orthogonal to the query
    noise = unit(noise)
    return unit(scores[:, None] * query[None, :] + np.sqrt(1 - scores[:, None] ** 2) * noise)


@pytest.fixture
def query() -> np.ndarray:
    return unit(np.random.default_rng(1).normal(size=(1, 64)))[0]


def test_a_normal_bell_of_scores_has_its_median_and_sigma():
    scores = np.random.default_rng(0).normal(0.22, 0.03, 20000)
    found = Distribution.of(scores)
    assert found.centre == pytest.approx(0.22, abs=0.002) and found.spread == pytest.approx(0.03, rel=0.03)
    assert found.z(0.31) == pytest.approx(3.0, abs=0.1)


def test_good_matches_are_those_standing_out_from_the_query_own_bell(query):
    rng = np.random.default_rng(2)
    background = np.clip(rng.normal(0.22, 0.03, 3000), -1, 1)
    standouts = np.array([0.36, 0.38, 0.40, 0.45])  # > 4.5 sigma
    sample = library_with_scores(query, np.concatenate([background, standouts]))
    cut = relevance.good_cutoff(query, sample, QueryKind.TEXT)
    assert cut == pytest.approx(0.22 + GOOD_Z[QueryKind.TEXT] * 0.03, abs=0.005)
    scores = sample @ query
    assert set(np.flatnonzero(scores >= cut)) >= set(range(3000, 3004))
    assert (scores[:3000] >= cut).sum() <= 10  # the bell's own tail beyond 3 sigma: ~0.1 %


def test_many_good_matches_do_not_raise_their_own_bar(query):
    """A robust centre and spread: with 20 % of the library matching, the bar stays near where the bell alone puts
    it (0.29) and the matches stay good."""
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.normal(0.2, 0.03, 800), np.full(200, 0.5)])
    sample = library_with_scores(query, np.clip(scores, -1, 1))
    assert relevance.good_cutoff(query, sample, QueryKind.TEXT) < 0.35
    mean_based = scores.mean() + GOOD_Z[QueryKind.TEXT] * scores.std()
    assert mean_based > 0.5  # what a mean and standard deviation would have done: no good match at all


def test_the_cut_differs_by_kind_of_query_and_a_flat_library_keeps_everything(query):
    sample = library_with_scores(query, np.random.default_rng(4).normal(0.5, 0.1, 2000).clip(-1, 1))
    cuts = {kind: relevance.good_cutoff(query, sample, kind) for kind in QueryKind}
    assert cuts[QueryKind.IMAGE] < cuts[QueryKind.COMBINED] < cuts[QueryKind.TEXT]
    copies = np.repeat(query[None, :], 10, axis=0)
    assert relevance.good_cutoff(query, copies, QueryKind.TEXT) == relevance.NEAR_IDENTICAL  # all copies are good
    assert relevance.good_cutoff(query, np.empty((0, 64), np.float32), QueryKind.TEXT) == 0.0


def test_a_near_identical_match_is_always_good(query):
    """Issue 23 #13: an exact copy of a library photo as the query was "No matches" under "Good matches only" when
    the picture's scores were broad enough to put the bar above 1. A copy (cosine 1) or a re-encode (≥ 0.95) is
    good whatever the distribution; just below, the distribution decides."""
    rng = np.random.default_rng(5)
    scores = np.concatenate([rng.normal(0.6, 0.2, 2000).clip(-1, 0.999), [1.0, 0.96]])
    sample = library_with_scores(query, scores)
    assert Distribution.of(sample @ query).cut(GOOD_Z[QueryKind.IMAGE]) > 1.0  # the bar alone: nothing is good
    cut = relevance.good_cutoff(query, sample, QueryKind.IMAGE)
    assert cut == relevance.NEAR_IDENTICAL
    assert set(np.flatnonzero(sample @ query >= cut)) >= {2000, 2001}
    narrow = library_with_scores(query, rng.normal(0.2, 0.02, 2000).clip(-1, 1))
    assert relevance.good_cutoff(query, narrow, QueryKind.IMAGE) < 0.3  # below the copies, the bell decides


def test_exclusion_drops_only_what_looks_like_the_excluded_text(query):
    rng = np.random.default_rng(5)
    excluded = unit(rng.normal(size=(1, 64)))[0]
    excluded = unit((excluded - (excluded @ query) * query)[None, :])[0]  # unrelated to the query
    sample = library_with_scores(excluded, rng.normal(0.0, 0.1, 2000).clip(-1, 1), seed=6)
    cutoff = relevance.exclusion_cutoff(excluded, sample)
    assert cutoff == pytest.approx(relevance.EXCLUDE_Z * 0.1, abs=0.01)
    results = np.vstack([query, unit((0.6 * query + 0.8 * excluded)[None, :])[0]])
    assert relevance.kept(results, [(excluded, cutoff)]).tolist() == [True, False]
    assert relevance.kept(results, []).tolist() == [True, True]
    # Several exclusions: each removes its own look-alikes.
    assert relevance.kept(results, [(excluded, cutoff), (query, 0.99)]).tolist() == [False, False]


def test_stacks_group_near_identical_rows_behind_the_first(query):
    rng = np.random.default_rng(7)
    other = unit(rng.normal(size=(3, 64)))
    burst = unit(query[None, :] + 0.02 * rng.normal(size=(3, 64)))  # cosine ~0.99 with the query
    rows = np.vstack([query, other[0], burst[0], other[1], burst[1], query, other[2], burst[2]])
    assert stacks.stack_groups(rows, 0.95) == [[0, 2, 4, 5, 7], [1], [3], [6]]
    assert stacks.stack_groups(rows, 1.0) == [[0, 5], [1], [2], [3], [4], [6], [7]]  # only true copies
    assert stacks.stack_groups(np.empty((0, 64), np.float32), 0.95) == []


def test_stacks_across_blocks(query, monkeypatch):
    monkeypatch.setattr(stacks, "BLOCK", 3)
    rows = np.vstack([query] * 7 + list(unit(np.random.default_rng(8).normal(size=(2, 64)))))
    groups = stacks.stack_groups(rows, 0.95)
    assert groups[0] == list(range(7)) and sorted(i for g in groups[1:] for i in g) == [7, 8]


@pytest.mark.parametrize(
    ("path", "quality"),
    [
        ("/lib/2024/beach.jpg", names.EXACT),
        ("/lib/2024/Beach_day.JPG", names.PREFIX),
        ("/lib/2024/sunny-beach.jpg", names.WORD),
        ("/lib/2024/IMG_1234beach.jpg", names.WORD),  # a digit/letter change starts a word
        ("/lib/2024/sunnybeach.jpg", names.INSIDE),
        ("/lib/beach/IMG_1.jpg", 0.0),  # a folder is not a name
    ],
)
def test_name_match_quality(path, quality):
    assert names.match_quality(path, "beach", None) == quality


def test_name_words_all_must_match_and_folders_rank_by_their_names():
    assert names.match_quality("/l/trip/beach sunset.jpg", "sunset beach", None) == pytest.approx(
        (names.WORD + names.PREFIX) / 2
    )
    assert names.match_quality("/l/trip/beach.jpg", "beach dog", None) == 0.0
    assert names.match_quality("/l/2024/Trip/a.jpg", None, "trip") == names.EXACT
    assert names.match_quality("/l/2024/trips-italy/a.jpg", None, "trip") == names.PREFIX
    assert names.match_quality("/l/2024/trip/a.jpg", None, "2024/tr") == names.INSIDE
    assert names.match_quality("/l/2024/trip/a.jpg", None, "zzz") == 0.0

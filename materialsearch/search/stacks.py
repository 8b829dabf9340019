"""Stacks: near-identical results (copies, burst shots, an edit and its original) shown as one.

Computed from the stored vectors, never by re-embedding: two results belong together when the cosine between
their vectors is at least the threshold, ``MS_STACK_COSINE`` (default 0.95). Byte-identical copies have the same
vector (cosine 1, less float rounding: ``ROUNDING``); CLIP puts a re-encoded, resized or lightly edited copy and
neighbouring burst frames above ~0.95, while two different photos of the same scene usually fall below it.

Grouping is greedy in the order given (best result first): each result joins the first earlier *stack leader*
it is that close to, or leads a new stack. A stack is thus every member within ``STACK_COSINE`` of its leader,
which shows in its place.
"""

from __future__ import annotations

import numpy as np

# Float32 dot products of a unit vector with itself land a few ulps from 1: a copy must still reach 1.0.
ROUNDING = 1e-6
# Rows compared against all others at a time (bounds the similarity block's memory: BLOCK × n floats).
BLOCK = 512


def stack_groups(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Row indices grouped into stacks, in order of their leaders (each group starts with its leader)."""
    count = len(vectors)
    if count == 0:
        return []
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    leader_of = np.full(count, -1, dtype=np.int64)
    is_leader = np.zeros(count, dtype=bool)
    for start in range(0, count, BLOCK):
        block = vectors[start : start + BLOCK] @ vectors[: start + BLOCK].T
        for row in range(len(block)):
            index = start + row
            close = np.flatnonzero((block[row, :index] >= threshold - ROUNDING) & is_leader[:index])
            if close.size:
                leader_of[index] = close[0]
            else:
                is_leader[index] = True
                leader_of[index] = index
    groups: dict[int, list[int]] = {}
    for index, leader in enumerate(leader_of.tolist()):
        groups.setdefault(leader, []).append(index)
    return list(groups.values())

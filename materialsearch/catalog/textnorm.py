"""Normalise recognised text and search queries alike, so that a query matches what OCR read.

Folding, in order: NFKC (full-width letters and digits → half-width, compatibility forms such as ℃ → °C),
traditional → simplified Chinese (OpenCC's t2s dictionaries, shipped inside ``opencc-python-reimplemented``,
Apache-2.0, pure Python, offline), case folding, then only letters, digits and combining marks are kept: punctuation,
symbols and whitespace go, because OCR drops spaces between English words ("shot type" reads "shottype") and
reads punctuation unreliably. Matching is then a plain substring test on the folded strings.
"""

from __future__ import annotations

import functools
import unicodedata

# Unicode general categories kept: letters (L*), numbers (N*) and marks (M*, e.g. Devanagari vowel signs).
KEPT_CATEGORIES = frozenset("LNM")
# First code point of the CJK blocks (radicals); text entirely below it has nothing to convert.
CJK_START = 0x2E80


@functools.cache
def _to_simplified():
    import opencc

    return opencc.OpenCC("t2s").convert


def normalize_text(text: str) -> str:
    """``text`` folded for search: NFKC, traditional → simplified, case-folded, only letters/digits/marks."""
    folded = unicodedata.normalize("NFKC", text)
    if any(ord(ch) >= CJK_START for ch in folded):  # the converter is pure Python: skip it for Latin text
        folded = _to_simplified()(folded)
    folded = folded.casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in KEPT_CATEGORIES)


def query_terms(query: str) -> list[str]:
    """The normalised non-empty terms of a query, split on whitespace before normalising removes it."""
    return [term for term in (normalize_text(word) for word in query.split()) if term]

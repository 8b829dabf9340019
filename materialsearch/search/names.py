"""Search by name: a file-name or folder keyword, ranked by how well it matches (no query vector needed).

``name=`` looks in the file name (every whitespace-separated word must appear in it), ``path=`` in the whole path
(the text as it is, as the ``path`` filter always did); case-insensitively (ASCII), in SQL (see ``Store``). Their
order is the match quality, a score in (0, 1]: for each name word (and the path text), the best of

* ``EXACT`` — the word is the whole file name without its extension (or a whole folder name),
* ``PREFIX`` — the name (or a folder) starts with the word,
* ``WORD`` — the word starts a word inside it (after a space, ``_``, ``-``, ``.`` or a digit/letter change),
* ``INSIDE`` — it appears anywhere else;

and the item's quality is the mean over the words (all of which must appear). Equal qualities are ordered newest
first. With ``q``, ``like`` or a picture, ``name``/``path`` only filter and the ranking is by similarity.
"""

from __future__ import annotations

import os
import re

EXACT, PREFIX, WORD, INSIDE = 1.0, 0.75, 0.5, 0.25
_WORD_START = re.compile(r"(?:^|[\s_\-.()\[\]]|(?<=\D)(?=\d)|(?<=\d)(?=\D))")


def words(text: str) -> list[str]:
    """The lower-cased words of a keyword query."""
    return text.lower().split()


def part_quality(part: str, word: str) -> float:
    """How well ``word`` matches one name (a file's stem or a folder name); 0 when it does not appear."""
    part = part.lower()
    if part == word:
        return EXACT
    if part.startswith(word):
        return PREFIX
    position = part.find(word)
    if position < 0:
        return 0.0
    starts = {m.end() for m in _WORD_START.finditer(part)} | {m.start() for m in _WORD_START.finditer(part)}
    return WORD if position in starts else INSIDE


def match_quality(path: str, name: str | None, folder: str | None) -> float:
    """The match quality of an item at ``path`` for a ``name`` and/or ``folder`` keyword query (0: no match)."""
    qualities: list[float] = []
    file_name = os.path.basename(path)
    stem = os.path.splitext(file_name)[0]
    for word in words(name or ""):
        qualities.append(max(part_quality(stem, word), min(part_quality(file_name, word), PREFIX)))
    if folder and folder.strip():
        text = folder.strip().lower()
        folders = [p for p in os.path.dirname(path).split("/") if p]
        best = max((part_quality(part, text) for part in folders), default=0.0)
        # A text spanning folders ("2024/trip") or reaching into the file name still matches inside the path.
        qualities.append(best or (INSIDE if text in path.lower() else 0.0))
    if not qualities or min(qualities) == 0:
        return 0.0
    return sum(qualities) / len(qualities)

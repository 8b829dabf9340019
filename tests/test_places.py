"""Places: GPS from real photos and videos, offline reverse geocoding, bad coordinates, `place=` and /api/places,
the backfill for items indexed before places, and the map's CSP."""

from __future__ import annotations

import io
import math
import shutil
import sqlite3

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from materialsearch.media.capture_time import coordinate_problem
from materialsearch.media.gps import GPS_IFD, exif_location, video_location
from materialsearch.organise.places import backfill_locations, shared_geocoder, simplified_chinese_name
from materialsearch.web import CONTENT_SECURITY_POLICY, services_of
from tests.conftest import manifest

# The sample media with real GPS and where they were taken (checked against the coordinates they carry).
GPS_FILES = {
    "jpeg_nikon_d5000_gps.jpeg": ("Khujirt", "MN", "Mongolia", "蒙古"),  # Övörkhangai, central Mongolia
    "heic_iphone12pro_orient6_irot_gps.heic": ("Calonge", "ES", "Spain", "西班牙"),  # Costa Brava, Catalonia
    "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV": ("London", "GB", "United Kingdom", "英国"),
}
NO_GPS_FILE = "jpg_orient1.jpg"


@pytest.fixture(scope="module")
def geocoder():
    return shared_geocoder().load()


@pytest.fixture(scope="module")
def places_library(tmp_path_factory, media_dir):
    names = {row["file"] for row in manifest()}
    assert set(GPS_FILES) | {NO_GPS_FILE} <= names
    root = tmp_path_factory.mktemp("places") / "library"
    root.mkdir()
    for name in [*GPS_FILES, NO_GPS_FILE]:
        shutil.copy2(media_dir / name, root / name)
    return root


@pytest.fixture(scope="module")
def app(scanned_app, places_library):
    return scanned_app(places_library, decode_threads=1)


def _with_gps(latitude, longitude, lat_ref="N", lon_ref="E") -> Image.Image:
    """A JPEG whose EXIF GPS holds these (degrees) values as written."""
    image = Image.new("RGB", (64, 64), "gray")
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update({1: lat_ref, 2: latitude, 3: lon_ref, 4: longitude})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return Image.open(io.BytesIO(out.getvalue()))


# --- reading coordinates ----------------------------------------------------------------------------------------
def test_exif_gps_of_real_photos(media_dir):
    with Image.open(media_dir / "jpeg_nikon_d5000_gps.jpeg") as image:
        reading = exif_location(image)
    assert reading.found and reading.latitude == pytest.approx(46.8984, abs=1e-4)
    assert reading.longitude == pytest.approx(102.7686, abs=1e-4)
    with Image.open(media_dir / "livephoto_iphone6s_train.jpg") as image:  # West longitude: negative
        assert exif_location(image).longitude == pytest.approx(-0.8955, abs=1e-3)
    with Image.open(media_dir / NO_GPS_FILE) as image:
        reading = exif_location(image)
    assert not reading.found and reading.note is None


def test_exif_gps_in_degrees_minutes_seconds_and_south_west():
    reading = exif_location(_with_gps((33.0, 51.0, 54.0), (151.0, 12.0, 36.0), "S", "E"))
    assert (reading.latitude, reading.longitude) == (pytest.approx(-33.865), pytest.approx(151.21))


@pytest.mark.parametrize(
    ("latitude", "longitude", "why"),
    [
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), "0,0"),
        ((95.0, 0.0, 0.0), (10.0, 0.0, 0.0), "out of range"),
        ((10.0, 0.0, 0.0), (190.0, 0.0, 0.0), "out of range"),
        ((IFDRational(0, 0), 0.0, 0.0), (10.0, 0.0, 0.0), "not a number"),  # what 0/0 rationals read as
    ],
)
def test_bad_exif_gps_is_ignored_with_its_reason(latitude, longitude, why):
    reading = exif_location(_with_gps(latitude, longitude))
    assert not reading.found and why in reading.note and reading.note.startswith("EXIF GPS location ignored")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("+00.0000+000.0000/", "0,0"),
        ("+95.0000+010.0000/", "out of range"),
        ("+45.0000+200.0000/", "out of range"),
        ("somewhere nice", "not ISO 6709"),
    ],
)
def test_bad_video_locations_are_ignored_with_their_reason(text, why):
    reading = video_location({"com.apple.quicktime.location.ISO6709": text})
    assert not reading.found and why in reading.note


def test_video_location_from_apple_and_android_keys():
    assert video_location({"com.apple.quicktime.location.ISO6709": "+51.5334-000.1255+026.756/"}).latitude == 51.5334
    assert video_location({"location": "+31.2304+121.4737/"}).longitude == 121.4737
    assert not video_location({}).found and video_location({}).note is None


def test_coordinate_rule_is_the_one_video_time_zones_use():
    assert coordinate_problem(math.nan, 1) == "not a number"
    assert coordinate_problem(0, 0).startswith("0,0")
    assert coordinate_problem(-90, 180) is None


# --- reverse geocoding ------------------------------------------------------------------------------------------
def test_reverse_geocoding_picks_the_city_not_its_neighbourhood(geocoder):
    assert geocoder.resolve(51.5334, -0.1255).city == "London"  # King's Cross, the nearest GeoNames point
    northampton = geocoder.resolve(52.2097, -0.8955)  # the Live Photo: Hardingstone is nearer than the centre
    assert (northampton.city, northampton.city_zh, northampton.country) == ("Northampton", "北安普顿", "GB")
    shanghai = geocoder.resolve(31.23, 121.47)
    assert (shanghai.city_zh, shanghai.region, shanghai.country) == ("上海", "Shanghai", "CN")
    assert geocoder.resolve(0.5, -30.0) is None  # mid-Atlantic: no place


def test_chinese_names_are_simplified_and_not_abbreviations():
    assert simplified_chinese_name(["Londres", "ロンドン", "倫敦", "伦敦"]) == "伦敦"
    assert simplified_chinese_name(["沪", "上海", "上海市"]) == "上海"
    assert simplified_chinese_name(["東京"]) is None


# --- the scanned library ----------------------------------------------------------------------------------------
def _ids_by_name(client, **params):
    body = client.get("/api/search", query_string={"q": "photo", "limit": 50, **params}).get_json()
    return {hit["name"]: hit for hit in body["results"]}


def test_real_gps_resolves_to_the_right_city_and_country(app):
    hits = _ids_by_name(app.test_client())
    for name, (city, code, country, country_zh) in GPS_FILES.items():
        location = hits[name]["location"]
        assert (location["city"], location["country_code"]) == (city, code), name
        assert (location["country"], location["country_zh"]) == (country, country_zh), name
    assert "location" not in hits[NO_GPS_FILE]
    one = hits["MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"]
    detail = app.test_client().get(f"/api/items/{one['id']}").get_json()
    assert detail["location"]["city_zh"] == "伦敦" and detail["location"]["latitude"] == pytest.approx(51.5334)


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("Mongolia", {"jpeg_nikon_d5000_gps.jpeg"}),
        ("蒙古", {"jpeg_nikon_d5000_gps.jpeg"}),
        ("united kingdom", {"MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"}),
        ("英国", {"MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"}),
        ("伦敦", {"MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"}),
        ("西班牙", {"heic_iphone12pro_orient6_irot_gps.heic"}),
        ("Catalonia", {"heic_iphone12pro_orient6_irot_gps.heic"}),
        ("ES", {"heic_iphone12pro_orient6_irot_gps.heic"}),
        ("Atlantis", set()),
    ],
)
def test_place_filter_by_english_and_chinese_names(app, place, expected):
    assert set(_ids_by_name(app.test_client(), place=place)) == expected


def test_places_lists_countries_and_cities_with_counts(app):
    body = app.test_client().get("/api/places").get_json()
    assert body["located"] == 3 and body["map_tiles"] is None
    countries = {country["code"]: country for country in body["countries"]}
    assert set(countries) == {"MN", "ES", "GB"}
    assert countries["GB"]["name_zh"] == "英国" and countries["GB"]["count"] == 1
    assert countries["GB"]["cities"][0]["city"] == "London" and countries["GB"]["cities"][0]["count"] == 1


def test_the_place_counts_are_kept_until_the_next_commit(app):
    places = services_of(app).store.places
    first = places.place_counts()
    assert places.place_counts() is first  # nothing committed since: the same answer, not computed again
    services_of(app).store.set_meta("touch", "1")  # any commit, by this process or another
    again = places.place_counts()
    assert again is not first and again == first
    with sqlite3.connect(services_of(app).store.path) as conn:
        conn.execute("UPDATE items SET place_city = 'Elsewhere' WHERE place_city IS NOT NULL")
    try:
        assert {row[2] for row in places.place_counts()} == {"Elsewhere"}
    finally:
        with sqlite3.connect(services_of(app).store.path) as conn:  # the module's other tests read the places
            conn.execute("UPDATE items SET location_read = NULL")
        backfill_locations(services_of(app).store)
    assert places.place_counts() == first


def test_a_too_long_place_is_a_400(app):
    response = app.test_client().get("/api/search", query_string={"q": "x", "place": "x" * 201})
    assert response.status_code == 400 and "place" in response.get_json()["message"]


# --- items indexed before places --------------------------------------------------------------------------------
def test_backfill_reads_locations_of_earlier_items_without_re_embedding(app, media_dir):
    store = services_of(app).store
    with sqlite3.connect(store.path) as conn:  # as a database from before places: nothing read yet
        conn.execute(
            "UPDATE items SET location_read = NULL, latitude = NULL, longitude = NULL, place_city = NULL, "
            "place_country = NULL"
        )
        vectors_before = conn.execute("SELECT id, embedding FROM vectors ORDER BY id").fetchall()
    assert services_of(app).store.places.place_counts() == []
    assert backfill_locations(store, batch=2) == 4  # in batches of two: each one a transaction
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT id, embedding FROM vectors ORDER BY id").fetchall() == vectors_before
        assert conn.execute("SELECT count(*) FROM items WHERE location_read IS NULL").fetchone() == (0,)
    assert app.test_client().get("/api/places").get_json()["located"] == 3
    assert backfill_locations(store) == 0  # nothing left: the next start does nothing


def test_backfill_leaves_unreadable_files_for_the_next_run(tmp_path, open_services, media_dir):
    services = open_services(library=str(tmp_path / "library"))
    (tmp_path / "library").mkdir()
    photo = tmp_path / "library" / "a.jpeg"
    shutil.copy2(media_dir / "jpeg_nikon_d5000_gps.jpeg", photo)
    services.scans.run()
    with sqlite3.connect(services.store.path) as conn:
        conn.execute("UPDATE items SET location_read = NULL, place_country = NULL")
    photo.rename(photo.with_suffix(".gone"))
    assert backfill_locations(services.store) == 0
    photo.with_suffix(".gone").rename(photo)
    assert backfill_locations(services.store) == 1
    assert services.store.places.place_counts()[0][0] == "MN"


# --- the map's Content-Security-Policy --------------------------------------------------------------------------
def test_no_tile_host_is_allowed_until_one_is_set(make_app):
    page = make_app().test_client().get("/")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "tile" not in page.headers["Content-Security-Policy"]


def test_a_set_tile_url_allows_exactly_its_host(make_app):
    url = "https://tile.example.org/{z}/{x}/{y}.png"
    app = make_app(map_tile_url=url)
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert "img-src 'self' blob: data: https://tile.example.org;" in csp
    assert csp.count("tile.example.org") == 1
    assert app.test_client().get("/api/places").get_json()["map_tiles"] == url


@pytest.mark.parametrize(
    "url", ["ftp://tile.example.org/{z}/{x}/{y}.png", "https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://t.org/"]
)
def test_a_tile_url_must_be_one_http_host_with_z_x_y(url):
    from config import Settings

    with pytest.raises(ValueError, match="MS_MAP_TILE_URL"):
        Settings.from_env(environ={}, map_tile_url=url)


# --- bad coordinates during a real scan ---------------------------------------------------------------------------
BAD_GPS = {
    "zero.jpg": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), "0,0"),
    "north_of_the_pole.jpg": ((95.0, 0.0, 0.0), (10.0, 0.0, 0.0), "out of range"),
    "nan.jpg": ((IFDRational(0, 0), 0.0, 0.0), (10.0, 0.0, 0.0), "not a number"),
}


@pytest.fixture(scope="module")
def bad_gps_app(scanned_app, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-gps") / "library"
    root.mkdir()
    for seed, (name, (latitude, longitude, _)) in enumerate(BAD_GPS.items()):
        image = Image.new("RGB", (320, 240), "gray")
        image.paste((seed * 80, 120, 200), (0, 0, 160, 120))  # distinct pictures
        exif = Image.Exif()
        exif.get_ifd(GPS_IFD).update({1: "N", 2: latitude, 3: "E", 4: longitude})
        image.save(root / name, "JPEG", exif=exif)
    return scanned_app(root, decode_threads=1)


@pytest.mark.parametrize("name", sorted(BAD_GPS))
def test_a_scan_indexes_photos_with_bad_gps_and_records_why(bad_gps_app, name):
    store = services_of(bad_gps_app).store
    with sqlite3.connect(store.path) as conn:
        row = conn.execute(
            "SELECT status, latitude, location_note, location_read FROM items WHERE path LIKE ?", (f"%/{name}",)
        ).fetchone()
    status, latitude, note, read = row
    assert (status, latitude, read) == ("ok", None, 1)
    assert BAD_GPS[name][2] in note
    client = bad_gps_app.test_client()
    assert client.get("/api/places").get_json()["located"] == 0
    # Nor does the viewer's info panel show it as a position ("GPS 0.000000, 0.000000": issue 23, #11).
    with sqlite3.connect(services_of(bad_gps_app).store.path) as conn:
        (item_id,) = conn.execute("SELECT id FROM items WHERE path LIKE ?", (f"%/{name}",)).fetchone()
    info = client.get(f"/api/items/{item_id}").get_json()["info"]
    assert info.get("latitude") is None and info.get("longitude") is None and info["width"] == 320

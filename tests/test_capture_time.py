"""Video capture times on the photos' clock (local wall time where shot), whatever TZ the server runs with."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from materialsearch.media.capture_time import fallback_zone, parse_iso6709, video_capture_time, zone_at
from materialsearch.media.video import probe


@pytest.fixture
def process_tz(monkeypatch):
    """Set the process's TZ (None: unset) for one test, as a container would."""

    def set_tz(name: str | None) -> None:
        if name is None:
            monkeypatch.delenv("TZ", raising=False)
        else:
            monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_tz
    monkeypatch.undo()
    time.tzset()


SERVER_ZONES = [None, "UTC", "America/New_York", "Asia/Tokyo"]


@pytest.mark.parametrize("server_tz", SERVER_ZONES)
def test_apple_local_creation_date_is_kept_as_written(process_tz, server_tz):
    process_tz(server_tz)
    metadata = {
        "creation_time": "2023-05-09T11:41:46.000000Z",
        "com.apple.quicktime.creationdate": "2023-05-09T12:41:46+0100",
    }
    assert video_capture_time(metadata) == dt.datetime(2023, 5, 9, 12, 41, 46)


@pytest.mark.parametrize("server_tz", SERVER_ZONES)
@pytest.mark.parametrize(
    ("key", "location", "expected"),
    [
        ("com.apple.quicktime.location.ISO6709", "+51.5334-000.1255+026.756/", dt.datetime(2023, 7, 1, 13, 0)),
        ("location", "+31.2304+121.4737/", dt.datetime(2023, 7, 1, 20, 0)),  # an Android phone in Shanghai
        ("location-eng", "+40.7128-074.0060/", dt.datetime(2023, 7, 1, 8, 0)),  # New York in summer (EDT)
    ],
)
def test_utc_creation_time_is_converted_to_the_zone_where_it_was_shot(process_tz, server_tz, key, location, expected):
    process_tz(server_tz)
    metadata = {"creation_time": "2023-07-01T12:00:00.000000Z", key: location}
    assert video_capture_time(metadata, fallback=ZoneInfo("Australia/Sydney")) == expected


def test_without_offset_or_location_the_fallback_zone_decides(process_tz):
    metadata = {"creation_time": "2023-03-16T15:26:24.000000Z"}
    process_tz("UTC")
    assert video_capture_time(metadata) == dt.datetime(2023, 3, 16, 15, 26, 24)
    process_tz("America/New_York")
    assert video_capture_time(metadata) == dt.datetime(2023, 3, 16, 11, 26, 24)  # EDT from 12 March
    assert video_capture_time(metadata, fallback_zone("Asia/Shanghai")) == dt.datetime(2023, 3, 16, 23, 26, 24)


def test_unset_or_broken_dates_are_no_dates():
    assert video_capture_time({}) is None
    assert video_capture_time({"creation_time": "1904-01-01T00:00:00.000000Z"}) is None
    assert video_capture_time({"creation_time": "not a date"}) is None
    broken_apple = {"com.apple.quicktime.creationdate": "garbage", "creation_time": "2023-01-01T00:00:00Z"}
    assert video_capture_time(broken_apple, ZoneInfo("UTC")) == dt.datetime(2023, 1, 1)


def test_iso6709_parsing_rejects_what_is_not_a_place():
    assert parse_iso6709("+51.5334-000.1255+026.756/") == (51.5334, -0.1255)
    assert parse_iso6709("+31.2304+121.4737/") == (31.2304, 121.4737)
    assert parse_iso6709("-33.8688+151.2093") == (-33.8688, 151.2093)
    for bad in ["", None, "+00.0000+000.0000/", "+91.0000+010.0000/", "+10.0000+181.0000/", "nan", "London"]:
        assert parse_iso6709(bad) is None, bad


def test_open_sea_has_no_civil_zone():
    assert zone_at(0.5, -30.0) is None  # mid-Atlantic
    assert zone_at(31.2304, 121.4737) == ZoneInfo("Asia/Shanghai")


def test_an_unknown_fallback_zone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        fallback_zone("Mars/Olympus")
    assert fallback_zone("") is None


@pytest.mark.parametrize("server_tz", SERVER_ZONES)
def test_real_files(process_tz, server_tz, media_dir):
    process_tz(server_tz)
    iphone = probe(str(media_dir / "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"))
    assert iphone.created_at == dt.datetime(2023, 5, 9, 12, 41, 46)  # Apple's own local date
    android = probe(str(media_dir / "mp4_portrait_4k60_h264_rot90_0.3s.mp4"), fallback_zone("Asia/Shanghai"))
    assert android.created_at == dt.datetime(2023, 3, 16, 23, 26, 24)  # UTC, no location: the fallback zone

"""The services' reports: plain dataclasses, read back from what earlier releases stored."""

from __future__ import annotations

from pydantic import TypeAdapter

from materialsearch.scan.reports import LastScan, ScanStatus


def test_last_scan_reads_records_of_every_release():
    oldest = {"finished_at": "2026-01-01T10:00:00", "seconds": 1.5, "summary": "3 added"}
    last = LastScan.from_record(oldest | {"some_future_key": 1})
    assert last == LastScan(finished_at="2026-01-01T10:00:00", seconds=1.5, summary="3 added", stats=None, error=None)
    full = oldest | {"stats": {"added": 3}, "error": None, "trigger": "manual", "cancelled": True}
    assert LastScan.from_record(full).cancelled and LastScan.from_record(full).stats == {"added": 3}


def test_scan_status_schema_is_what_the_api_documents():
    schema = TypeAdapter(ScanStatus).json_schema(mode="serialization")
    assert set(schema["required"]) >= {"state", "progress", "last", "schedule", "can_scan"}
    assert schema["properties"]["state"]["enum"] == ["idle", "scanning", "paused"]

"""Scheduling: cron and interval settings, the scan window, APScheduler jobs, and one scanner per data dir."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest

from config import Settings, SettingsError
from materialsearch.catalog.ownership import DataDirLock
from materialsearch.jobs.schedule import ScanScheduler, ScanWindow, cron_trigger
from tests.conftest import REPO

UTC = dt.UTC
MONDAY = dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)  # 2024-01-01 was a Monday


def next_fire(expression: str, after: dt.datetime = MONDAY) -> dt.datetime:
    return cron_trigger(expression, timezone=UTC).get_next_fire_time(None, after)


# --- settings ---------------------------------------------------------------------------------------------------
def test_schedule_settings_parse():
    settings = Settings.from_env(
        environ={
            "MS_SCAN_CRON": " 30  2 * * 1-5 ",
            "MS_SCAN_INTERVAL": "6h",
            "MS_SCAN_WINDOW": "22:30-07:00",
            "MS_SCAN_ON_START": "false",
        }
    )
    assert settings.scan_cron == "30 2 * * 1-5"
    assert settings.scan_interval == 6 * 3600
    assert settings.scan_window == (22 * 60 + 30, 7 * 60)
    assert settings.scan_on_start is False
    defaults = Settings.from_env(environ={})
    assert (defaults.scan_cron, defaults.scan_interval, defaults.scan_window, defaults.scan_on_start) == (
        "0 3 * * *",
        0,
        None,
        True,
    )
    assert Settings.from_env(environ={"MS_SCAN_INTERVAL": "90m"}).scan_interval == 5400
    assert Settings.from_env(environ={"MS_SCAN_INTERVAL": "1d"}).scan_interval == 86400
    assert Settings.from_env(environ={"MS_SCAN_INTERVAL": "600"}).scan_interval == 600
    assert Settings.from_env(environ={"MS_SCAN_CRON": ""}).scan_cron == ""


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("MS_SCAN_CRON", "every night", "5 fields"),
        ("MS_SCAN_CRON", "61 3 * * *", "59"),
        ("MS_SCAN_CRON", "0 3 * * 8", "0-7"),
        ("MS_SCAN_CRON", "0 25 * * *", "23"),
        ("MS_SCAN_INTERVAL", "often", "duration"),
        ("MS_SCAN_INTERVAL", "30s", "at least one minute"),
        ("MS_SCAN_INTERVAL", "-1h", "at least one minute"),
        ("MS_SCAN_WINDOW", "22:30", "HH:MM-HH:MM"),
        ("MS_SCAN_WINDOW", "25:00-07:00", "00:00-23:59"),
        ("MS_SCAN_WINDOW", "7-9", "HH:MM-HH:MM"),
        ("MS_SCAN_WINDOW", "07:00-07:00", "same time"),
        ("MS_SCAN_ON_START", "sometimes", "true/false"),
    ],
)
def test_bad_schedule_settings_are_clear_errors(env, value, says):
    with pytest.raises(SettingsError, match=env) as caught:
        Settings.from_env(environ={env: value})
    assert says in str(caught.value)


# --- cron -------------------------------------------------------------------------------------------------------
def test_cron_weekdays_follow_crontab_not_apscheduler_numbering():
    # APScheduler 3.x counts weekdays from Monday = 0; crontab from Sunday = 0 (and 7 = Sunday too).
    assert next_fire("0 3 * * 0") == dt.datetime(2024, 1, 7, 3, 0, tzinfo=UTC)  # Sunday
    assert next_fire("0 3 * * 7") == dt.datetime(2024, 1, 7, 3, 0, tzinfo=UTC)
    assert next_fire("0 3 * * 1") == dt.datetime(2024, 1, 8, 3, 0, tzinfo=UTC)  # next Monday (this one's 3:00 passed)
    saturday = dt.datetime(2024, 1, 6, 12, 0, tzinfo=UTC)
    assert next_fire("0 3 * * 1-5", saturday) == dt.datetime(2024, 1, 8, 3, 0, tzinfo=UTC)
    assert next_fire("0 3 * * 5-7", MONDAY) == dt.datetime(2024, 1, 5, 3, 0, tzinfo=UTC)  # Friday
    assert next_fire("0 3 * * */3", MONDAY) == dt.datetime(2024, 1, 3, 3, 0, tzinfo=UTC)  # Sun, Wed, Sat
    assert next_fire("0 3 * * sat,sun", MONDAY) == dt.datetime(2024, 1, 6, 3, 0, tzinfo=UTC)
    assert next_fire("*/15 * * * *", MONDAY + dt.timedelta(minutes=1)) == dt.datetime(2024, 1, 1, 12, 15, tzinfo=UTC)


# --- window -----------------------------------------------------------------------------------------------------
def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, 1, hour, minute)


def test_window_crossing_midnight():
    window = ScanWindow(22 * 60 + 30, 7 * 60)
    assert str(window) == "22:30-07:00"
    assert [window.contains(at(h, m)) for h, m in [(22, 29), (22, 30), (23, 59), (0, 0), (6, 59), (7, 0), (12, 0)]] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert window.seconds_until_open(at(12)) == 10.5 * 3600
    assert window.seconds_until_open(at(22, 29)) == 60
    assert window.seconds_until_open(at(1)) == 0


def test_window_within_a_day():
    window = ScanWindow(9 * 60, 17 * 60)
    assert window.contains(at(9)) and window.contains(at(16, 59))
    assert not window.contains(at(17)) and not window.contains(at(8, 59))
    assert window.seconds_until_open(at(17)) == 16 * 3600  # tomorrow at 09:00


# --- the lock ---------------------------------------------------------------------------------------------------
def test_data_dir_lock_is_exclusive_and_names_its_holder(tmp_path):
    first, second = DataDirLock(str(tmp_path)), DataDirLock(str(tmp_path))
    assert first.acquire()
    assert not second.acquire()
    assert second.holder() == f"process {os.getpid()}"
    first.release()
    first.release()  # idempotent
    assert second.acquire()
    second.release()


def test_a_second_process_neither_scans_nor_schedules(make_settings, library, tmp_path):
    """Another process holding the data dir (here a tiny one); ours only searches, and says who scans."""
    from materialsearch.services import Services

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from materialsearch.catalog.ownership import DataDirLock; "
            "lock = DataDirLock(sys.argv[1]); assert lock.acquire(); print('held', flush=True); time.sleep(60)",
            str(data_dir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        services = Services(make_settings(library=str(library), scan_interval=60))
        try:
            assert not services.owner
            refusal = services.scans.try_start("manual")
            assert refusal and f"process {holder.pid}" in refusal and str(data_dir) in refusal
            with pytest.raises(RuntimeError, match=f"process {holder.pid}"):
                services.scans.run()
            services.start_background()
            assert services.scheduler is None and not services.scans.running
            status = services.scans.status()
            assert status.can_scan is False and f"process {holder.pid}" in status.refusal
        finally:
            services.close()
        assert not (data_dir / "index.faiss").exists(), "a process that does not own the data dir wrote the index"
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel releases a flock when its holder dies, even by SIGKILL
        holder.wait()
    services = Services(make_settings(library=str(library)))
    try:
        assert services.owner and services.scans.run().added == 5
    finally:
        services.close()


def test_second_services_on_the_same_data_dir_is_read_only(open_services, library):
    first = open_services(library=str(library))
    first.scans.run()
    second = open_services(library=str(library))
    assert first.owner and not second.owner
    assert second.scans.try_start("scheduled") and not second.scans.start()
    # It still answers searches from what the owner indexed.
    hits = second.search.search(second.search.text_vector("photo"), _filters(), _page())
    assert len(hits.hits) == 5


def _filters():
    from materialsearch.catalog.filters import Filters

    return Filters()


def _page():
    from materialsearch.search.service import Page

    return Page(limit=10)


# --- the scheduler ----------------------------------------------------------------------------------------------
def test_scheduler_jobs_coalesce_never_overlap_and_report_the_next_run():
    settings = Settings.from_env(environ={"MS_SCAN_CRON": "0 3 * * *", "MS_SCAN_INTERVAL": "2h"})
    calls = []
    scheduler = ScanScheduler(settings, lambda trigger: calls.append(trigger))
    scheduler.start()
    try:
        jobs = scheduler._scheduler.get_jobs()
        assert {job.id for job in jobs} == {"scan-cron", "scan-interval"}
        assert all(job.coalesce and job.max_instances == 1 and job.misfire_grace_time >= 3600 for job in jobs)
        nxt = scheduler.next_run()
        now = dt.datetime.now(nxt.tzinfo)
        assert dt.timedelta(0) < nxt - now <= dt.timedelta(hours=2)
        assert scheduler.active and "cron '0 3 * * *'" in scheduler.describe()
    finally:
        scheduler.shutdown()
    assert scheduler.next_run() is None and calls == []


def test_scheduled_scan_runs_by_itself_and_is_skipped_while_one_runs(open_services, library):
    services = open_services(library=str(library), scan_cron="", scan_interval=1, scan_on_start=False)
    services.start_background()
    assert services.scheduler is not None and not services.scans.running  # no start-up scan when switched off
    deadline = time.monotonic() + 20
    while not (services.scans.last and services.scans.last["trigger"] == "scheduled") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert services.scans.last["trigger"] == "scheduled" and services.scans.last["stats"]["added"] == 5
    status = services.scans.status()
    assert status.schedule.active and status.schedule.interval_s == 1 and status.next_run
    # Stop the 1 s schedule first: otherwise its next run may already be going when we try to start one.
    services.scheduler.shutdown()
    assert services.scans.wait(30) and not services.scans.running
    # A run that fires while a scan is going does not start a second one.
    assert services.scans.try_start("manual") is None
    assert services.scans.try_start("scheduled") == "a scan is already running"
    services.scans.wait(30)


def test_start_up_scan_when_asked(open_services, library):
    services = open_services(library=str(library), scan_cron="", scan_on_start=True)
    services.start_background()
    assert services.scans.wait(30)
    assert services.scans.last["trigger"] == "start-up" and services.index.ntotal == 5
    assert services.scans.status().next_run is None  # no schedule configured

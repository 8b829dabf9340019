"""The job base class (``jobs.job.BackgroundJob``) on its own: starting and refusing, pause/resume/cancel, the time
window, the one rate/ETA rule and the last run kept. Real threads, steered unit by unit through semaphores (never
by timing), with a fake clock for the window and fake ticks for the rate."""

from __future__ import annotations

import ast
import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest

from materialsearch.jobs.job import BackgroundJob, JobRefused, RateMeter, WorkDone
from materialsearch.jobs.schedule import ScanWindow

REPO = Path(__file__).resolve().parents[1]
UNITS = 5
STEP_S = 10  # how long a test waits for a thread to reach a point (reached at once on any machine)


class Meta:
    """The catalog's meta table, as a dict."""

    def __init__(self):
        self.values: dict[str, str] = {}

    def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.values[key] = value


class Progress:
    def __init__(self):
        self.done = 0


class Counting(BackgroundJob):
    """Counts ``UNITS`` units, one each time the test releases ``gate``; ``entered`` is released as each starts."""

    NAME = "counting"
    RUNNING_REFUSAL = "already counting"
    LAST_KEY = "last_counting"
    RECORD_START = True

    def __init__(self, fail: Exception | None = None, **kwargs):
        super().__init__(**kwargs)
        self.entered = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)
        self.paused = threading.Semaphore(0)  # released as the run blocks in a pause
        self.fail = fail
        self.runs = 0

    def _new_progress(self) -> Progress:
        return Progress()

    def _units(self) -> tuple[int, int] | None:
        return (self.progress.done, UNITS) if self.progress is not None else None

    def _before_pause(self) -> None:
        self.paused.release()

    def _work(self, on_progress) -> WorkDone:
        self.runs += 1
        progress = self.progress
        for _ in range(UNITS):
            self._pause_point()
            if self._cancel.is_set():
                break
            if self.fail is not None:
                raise self.fail
            self.entered.release()
            assert self.gate.acquire(timeout=STEP_S), "the test never released the unit"
            progress.done += 1
            if on_progress:
                on_progress(progress)
        return WorkDone(f"{progress.done} counted", 0.5, self._cancel.is_set())

    def step(self, units: int = 1) -> None:
        """Let ``units`` units through, each once it has started."""
        for _ in range(units):
            self.begin_unit()
            self.gate.release()

    def begin_unit(self) -> None:
        """Wait for the next unit to start (it then waits for ``gate``)."""
        assert self.entered.acquire(timeout=STEP_S), "the unit did not start"


def blocked(semaphore: threading.Semaphore, seconds: float = 0.3) -> bool:
    """Whether nothing is released on ``semaphore`` for a while (a paused run starts no unit)."""
    if semaphore.acquire(timeout=seconds):
        semaphore.release()
        return False
    return True


def wait_for(condition, what: str):
    deadline = time.monotonic() + STEP_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def job():
    made: list[Counting] = []

    def build(**kwargs) -> Counting:
        made.append(Counting(**kwargs))
        return made[-1]

    yield build
    for counting in made:  # no thread outlives its test
        counting.stop()
        counting.gate.release(UNITS)
        assert counting.wait(STEP_S)


# --- starting and refusing --------------------------------------------------------------------------------------
def test_one_run_at_a_time_and_each_refusal_says_why(job):
    counting = job(meta=Meta())
    assert counting.try_start("manual") is None and counting.running
    assert counting.try_start("scheduled") == "already counting" and not counting.start()
    with pytest.raises(JobRefused, match="already counting"):
        counting.run()
    counting.step(UNITS)
    assert counting.wait(STEP_S) and not counting.running and counting.finished == 1
    assert counting.try_start() is None  # free again
    counting.step(UNITS)
    assert counting.wait(STEP_S)

    other = job(owner=False, not_owner="process 42 owns the data dir")
    assert other.try_start() == "process 42 owns the data dir"
    with pytest.raises(JobRefused, match="process 42"):
        other.run()


def test_a_run_in_the_callers_thread_returns_its_outcome_and_hears_of_progress(job):
    counting = job()
    counting.gate.release(UNITS)
    heard: list[int] = []
    outcome = counting.run(lambda progress: heard.append(progress.done))
    assert outcome.summary() == "5 counted" and heard == [1, 2, 3, 4, 5]
    assert counting.last["trigger"] == "command line" and not counting.running


def test_stop_cancels_and_refuses_new_runs_and_requests(job):
    counting = job()
    assert counting.try_start() is None
    counting.step()
    counting.stop()
    counting.gate.release()
    assert counting.wait(STEP_S) and counting.last["cancelled"]
    assert counting.try_start() == "shutting down: no new counting starts"
    counting.request()
    assert not counting.running and counting.runs == 1


def test_a_request_while_running_goes_over_the_work_once_more(job):
    counting = job()
    ended: list[bool] = []
    counting.after_run.append(lambda: ended.append(counting.running))
    counting.request("after scan")
    counting.step()
    counting.request("after scan")  # asked while running: once more at the end, not a second thread
    counting.request("after scan")
    counting.step(2 * UNITS - 1)
    assert counting.wait(STEP_S)
    assert counting.runs == 2 and counting.last["trigger"] == "after scan" and ended == [False]


# --- pause, resume, cancel --------------------------------------------------------------------------------------
def test_pause_blocks_at_the_next_pause_point_and_resume_goes_on(job):
    counting = job()
    assert not counting.pause() and not counting.resume() and not counting.cancel()  # nothing runs
    assert counting.try_start() is None
    counting.begin_unit()
    assert counting.pause()
    assert counting.snapshot().state == "paused" and counting.snapshot().paused_reason == "paused by user"
    counting.gate.release()  # the unit in hand finishes; the run blocks before the next one
    assert counting.paused.acquire(timeout=STEP_S) and counting.progress.done == 1
    assert blocked(counting.entered)  # paused between units: the next one does not start
    assert counting.resume() and counting.snapshot().state == "running"
    counting.step(UNITS - 1)
    assert counting.wait(STEP_S) and counting.last["cancelled"] is False


def test_cancel_wakes_a_paused_run_and_keeps_what_it_did(job):
    counting = job()
    assert counting.try_start() is None
    counting.step()
    counting.begin_unit()
    assert counting.pause()
    counting.gate.release()
    assert counting.paused.acquire(timeout=STEP_S) and counting.progress.done == 2
    assert counting.cancel()
    assert counting.wait(STEP_S), "a paused run must end when cancelled"
    assert counting.last["cancelled"] is True and counting.last["summary"] == "2 counted"
    assert counting.snapshot().state == "idle" and counting.snapshot().progress is None


def test_wait_with_a_timeout_says_whether_the_run_ended(job):
    counting = job()
    assert counting.wait(0)  # nothing ever ran
    assert counting.try_start() is None
    assert not counting.wait(0.05)
    counting.step(UNITS)
    assert counting.wait(STEP_S)


# --- the window -------------------------------------------------------------------------------------------------
def test_runs_nobody_asked_for_keep_to_the_window_and_manual_ones_ignore_it(job):
    now = [dt.datetime(2024, 1, 1, 12, 0)]
    counting = job(window=ScanWindow(22 * 60 + 30, 7 * 60), clock=lambda: now[0])
    assert counting.try_start("scheduled") is None
    assert counting.snapshot().paused_reason == "outside scan window 22:30-07:00"
    assert counting.paused.acquire(timeout=STEP_S) and blocked(counting.entered)
    now[0] = dt.datetime(2024, 1, 1, 23, 0)  # the window opens
    counting.poke()
    counting.step()
    counting.begin_unit()
    now[0] = dt.datetime(2024, 1, 2, 7, 30)  # and closes: the run pauses at its next pause point
    counting.gate.release()
    assert counting.paused.acquire(timeout=STEP_S) and counting.progress.done == 2
    assert blocked(counting.entered) and counting.snapshot().state == "paused"
    assert counting.resume()  # by hand: overrides the window for the rest of the run
    counting.step(UNITS - 2)
    assert counting.wait(STEP_S)

    assert counting.try_start("manual") is None  # asked for by hand: runs at once, outside the window too
    assert counting.snapshot().paused_reason is None
    counting.step(UNITS)
    assert counting.wait(STEP_S)


# --- the rate and ETA -------------------------------------------------------------------------------------------
def test_the_rate_is_of_about_the_last_minute():
    ticks = [0.0]
    meter = RateMeter(lambda: ticks[0])
    assert meter.rate(10) is None  # nothing sampled
    meter.sample(0)
    ticks[0] = 0.5
    assert meter.rate(5) is None  # the count has not moved yet
    meter.sample(5)
    ticks[0] = 1.0
    assert meter.rate(6) is None  # under a second since it moved says nothing yet
    for t, done in ((30.0, 30), (70.0, 70)):
        ticks[0] = t
        meter.sample(done)
    ticks[0] = 100.0
    # From the newest sample at least a minute old (t=30), to the count now.
    assert meter.rate(100) == pytest.approx(70 / 70)
    assert (
        RateMeter.eta(100, 160, 2.0) == 30.0 and RateMeter.eta(5, 3, 1.0) == 0.0 and RateMeter.eta(1, 9, None) is None
    )
    meter.sample(3)  # the count started over (a new phase): so does the measure
    ticks[0] = 101.0
    meter.sample(5)
    ticks[0] = 102.0
    assert meter.rate(7) == pytest.approx(2.0)
    meter.reset()
    assert meter.rate(7) is None


def test_the_rate_starts_when_the_count_first_moves_not_while_the_pipeline_fills():
    ticks = [0.0]
    meter = RateMeter(lambda: ticks[0])
    meter.sample(10)  # a resume: the measure starts afresh
    ticks[0] = 7.0
    meter.sample(11)  # the first unit after 7 s of decoding and a first batch
    ticks[0] = 9.0
    meter.sample(31)
    # 20 units in the 2 s since the count moved (10/s), not 21 in 9 s (2.3/s: an ETA four times too long).
    assert meter.rate(31) == pytest.approx(10.0)
    assert RateMeter.eta(31, 51, meter.rate(31)) == 2.0


def test_a_jobs_rate_and_eta_come_from_its_units_and_a_pause_starts_the_measure_afresh(job):
    ticks = [0.0]
    counting = job(ticks=lambda: ticks[0])
    assert counting.try_start() is None
    counting.step(2)
    wait_for(lambda: counting.progress.done == 2, "two units")
    ticks[0] = 10.0
    now = counting.snapshot()
    # The measure starts at the first unit: one more in the 10 s since; 3 left at 0.1/s.
    assert now.state == "running" and now.rate == 0.1 and now.eta_s == 30.0
    assert counting.pause()
    assert counting.snapshot().rate is None and counting.snapshot().eta_s is None  # no rate while paused
    counting.step()  # the unit in hand finishes; the run then blocks in the pause
    assert counting.paused.acquire(timeout=STEP_S)
    assert counting.resume()  # at t=10: the measure starts there
    counting.step()
    wait_for(lambda: counting.progress.done == 4, "the fourth unit")
    ticks[0] = 12.0
    # The measure starts at the first unit after the resume (t=10): none since, so no time left is guessed.
    assert counting.snapshot().rate == 0.0 and counting.snapshot().eta_s is None
    counting.step(UNITS - 4)
    assert counting.wait(STEP_S)
    assert counting.snapshot().rate is None


# --- the last run -----------------------------------------------------------------------------------------------
def test_the_last_run_is_kept_across_restarts(job):
    meta = Meta()
    counting = job(meta=meta)
    assert counting.last is None
    counting.gate.release(UNITS)
    counting.run(trigger="command line")
    kept = json.loads(meta.values["last_counting"])
    assert kept == counting.last
    assert list(kept) == ["started_at", "finished_at", "trigger", "seconds", "summary", "cancelled", "error"]
    assert (kept["trigger"], kept["seconds"], kept["summary"], kept["error"]) == (
        "command line",
        0.5,
        "5 counted",
        None,
    )
    assert job(meta=meta).last == kept  # a new process reads it back

    meta.values["last_counting"] = "{not json"
    assert job(meta=meta).last is None  # an unreadable record is ignored
    assert job().last is None  # no meta table: kept in memory only


def test_a_failed_run_is_recorded_and_ends_its_thread(job):
    meta = Meta()
    failing = job(meta=meta, fail=ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        failing.run()
    assert failing.last["error"] == "ValueError: boom" and failing.last["summary"] == "failed: ValueError: boom"
    assert failing.last["cancelled"] is False and not failing.running
    assert failing.try_start("manual") is None
    assert failing.wait(STEP_S) and not failing.running and failing.finished == 2
    assert json.loads(meta.values["last_counting"])["trigger"] == "manual"


# --- one lifecycle ----------------------------------------------------------------------------------------------
def test_no_class_but_the_job_base_carries_its_own_pause_resume_cancel():
    verbs = {"pause", "resume", "cancel", "try_start", "_pause_point", "_run_claimed", "_finish", "_rate"}
    carriers = []
    for path in (REPO / "materialsearch").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name != "BackgroundJob":
                defined = {f.name for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
                if defined & verbs:
                    carriers.append(f"{path.relative_to(REPO)}:{node.name} {sorted(defined & verbs)}")
    assert not carriers, carriers


def test_the_services_jobs_are_background_jobs_stopped_in_one_loop():
    from materialsearch.ocr.job import OcrManager
    from materialsearch.organise.places import LocationBackfill
    from materialsearch.organise.tags import Tagger
    from materialsearch.scan.manager import ScanManager

    assert all(issubclass(cls, BackgroundJob) for cls in (ScanManager, OcrManager, Tagger, LocationBackfill))
    source = (REPO / "materialsearch" / "services.py").read_text(encoding="utf-8")
    close = source[source.index("    def close(") :]
    for verb in (".cancel(", ".shutdown(", ".close(self", "tagger.", "backfill.", "ocr.", "scans."):
        assert verb not in close, verb

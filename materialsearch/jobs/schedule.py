"""Running by itself: scheduled scans (APScheduler) and the time window scans keep to.

Only the process holding the data dir's lock (``lock.DataDirLock``) schedules. This module imports APScheduler
lazily: ``config`` validates cron expressions through ``cron_trigger``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# A run missed by up to this much (the machine slept, the process was busy starting) still happens once.
MISFIRE_GRACE_S = 6 * 3600
CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


# --- cron -------------------------------------------------------------------------------------------------------
def _crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) → APScheduler's (names, so 0 cannot mean Monday).

    APScheduler 3.x numbers weekdays from Monday = 0, unlike cron (its docs call this a historical mistake), so
    numbers are expanded and given as day names. Fields already written with names mean the same in both.
    """
    if field == "*" or any(c.isalpha() for c in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"weekday step must be at least 1 in {field!r}")
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = int(low)
            last = int(high) if high else (6 if step_text else first)
        if not (0 <= first <= 7 and 0 <= last <= 7) or first > last:
            raise ValueError(f"weekday {part!r} is not in 0-7 (0 and 7 are Sunday) in {field!r}")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(CRON_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expression: str, timezone=None):
    """An APScheduler ``CronTrigger`` for a standard 5-field crontab expression; ValueError says what is wrong."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)} in {expression!r}")
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday),
            timezone=timezone,
        )
    except ValueError as exc:
        raise ValueError(f"{expression!r}: {exc}") from None


# --- window -----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ScanWindow:
    """Daily local hours in which scans may run; ``start`` > ``end`` crosses midnight (22:30-07:00)."""

    start: int  # minutes after midnight
    end: int

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"

    def contains(self, when: dt.datetime) -> bool:
        """Whether ``when`` (local wall-clock time) is inside the window; the end minute is outside."""
        minute = when.hour * 60 + when.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def seconds_until_open(self, when: dt.datetime) -> float:
        """0 inside the window, else the seconds until it next opens."""
        if self.contains(when):
            return 0.0
        opening = when.replace(hour=self.start // 60, minute=self.start % 60, second=0, microsecond=0)
        if opening <= when:
            opening += dt.timedelta(days=1)
        return (opening - when).total_seconds()


def window_of(settings) -> ScanWindow | None:
    """The configured window (``MS_SCAN_WINDOW``), or None for any time."""
    return ScanWindow(*settings.scan_window) if settings.scan_window else None


# --- the scheduler ------------------------------------------------------------------------------------------------
class ScanScheduler:
    """Starts scans on ``MS_SCAN_CRON`` and/or every ``MS_SCAN_INTERVAL`` in a background thread, through the
    scan job's own door (``start_scan`` is ``ScanManager.try_start``: refused while one runs, with the reason).

    Runs coalesce (missed runs fire once), never overlap (``max_instances=1``; a run while a scan is still going
    is skipped, since that scan is already doing the work), and fire up to ``MISFIRE_GRACE_S`` late.
    """

    def __init__(self, settings, start_scan: Callable[[str], str | None], timezone=None):
        self.settings = settings
        self._start_scan = start_scan
        self._timezone = timezone
        self._scheduler = None

    @property
    def active(self) -> bool:
        """Whether any schedule is configured and running."""
        return self._scheduler is not None and bool(self._scheduler.get_jobs())

    def start(self) -> None:
        """Add the configured jobs and start the scheduler thread (idempotent)."""
        if self._scheduler is not None:
            return
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = BackgroundScheduler(
            timezone=self._timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S},
            daemon=True,
        )
        settings = self.settings
        if settings.scan_cron:
            scheduler.add_job(
                self._run,
                cron_trigger(settings.scan_cron, timezone=scheduler.timezone),
                id="scan-cron",
                name=f"scan ({settings.scan_cron})",
            )
        if settings.scan_interval:
            scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=settings.scan_interval, timezone=scheduler.timezone),
                id="scan-interval",
                name=f"scan (every {settings.scan_interval}s)",
            )
        scheduler.start()
        self._scheduler = scheduler
        nxt = self.next_run()
        log.info("scheduled scans: %s; next at %s", self.describe(), nxt.isoformat() if nxt else "never")

    def _run(self) -> None:
        refusal = self._start_scan("scheduled")
        if refusal:
            log.info("scheduled scan skipped: %s", refusal)

    def next_run(self) -> dt.datetime | None:
        """When the next scheduled scan starts (aware datetime), or None."""
        if self._scheduler is None:
            return None
        times = [job.next_run_time for job in self._scheduler.get_jobs() if job.next_run_time]
        return min(times) if times else None

    def describe(self) -> str:
        """The schedule in words."""
        parts = []
        if self.settings.scan_cron:
            parts.append(f"cron {self.settings.scan_cron!r}")
        if self.settings.scan_interval:
            parts.append(f"every {self.settings.scan_interval}s")
        return " and ".join(parts) or "none"

    def shutdown(self) -> None:
        """Stop the scheduler thread (idempotent); a scan it started keeps running until cancelled."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            # A job only hands the scan to its own thread, so waiting for one in flight is brief, and after this
            # returns no scheduled start can still arrive.
            scheduler.shutdown(wait=True)

"""What the services report about themselves: the scan's state and a model change's re-indexing, as plain data.

These dataclasses are declared once, here; the web layer's response models embed them as they are and turn them
into JSON. The ``Field`` metadata (bounds, descriptions) is what the API documentation says about each field.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field

from materialsearch.encoders.base import BackendChoice, Measurement
from materialsearch.errors import ProblemCode, legacy_code

Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]
ScanState = Literal["idle", "scanning", "paused"]


@dataclasses.dataclass(frozen=True)
class ScanProgress:
    """The running scan."""

    phase: str
    done: Count
    total: Count
    current: Annotated[str, Field(description="File being worked on.")]
    errors: Count
    started_at: Annotated[str | None, Field(description="ISO 8601 local time.")]
    found: Annotated[int, Field(ge=0, description="Files seen by the walk.")] = 0
    rate: Annotated[float | None, Field(ge=0, description="Items/s, last minute.")] = None
    eta_s: Annotated[float | None, Field(ge=0, description="Seconds left.")] = None
    trigger: Annotated[str | None, Field(description="manual, scheduled, start-up…")] = None


@dataclasses.dataclass(frozen=True)
class ScanWarning:
    """Something a scan could not do, and what it kept because of it (e.g. a folder it could not list)."""

    code: Annotated[ProblemCode, Field(description="Stable code:\n" + ProblemCode.described())]
    message: Annotated[str, Field(description="What happened, for people.")]
    path: Annotated[str | None, Field(description="The folder or file concerned.")] = None
    kept: Annotated[int, Field(ge=0, description="Indexed items kept (not swept) because of it.")] = 0

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_record(cls, value: dict[str, Any] | str) -> ScanWarning:
        """From a stored scan record (older releases stored the message alone)."""
        if isinstance(value, str):
            return cls(legacy_code(value), value)
        return cls(**value)


@dataclasses.dataclass(frozen=True)
class LastScan:
    """The last finished scan, as recorded in the database (``ScanManager.last``)."""

    finished_at: str
    seconds: Seconds
    summary: str
    stats: Annotated[dict[str, Any] | None, Field(description="Counts by outcome (null when it failed).")]
    error: Annotated[str | None, Field(description="Why it failed.")]
    started_at: str | None = None
    trigger: str | None = None
    cancelled: bool = False
    warnings: Annotated[
        list[ScanWarning], Field(description="What it could not do (folders it could not list…), with codes.")
    ] = dataclasses.field(default_factory=list)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LastScan:
        """From the stored record (older releases stored fewer keys; unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"warnings"}
        warnings = [ScanWarning.from_record(w) for w in (record.get("stats") or {}).get("warnings", [])]
        fields = {"stats": None, "error": None, **{k: v for k, v in record.items() if k in names}}
        return cls(**fields, warnings=warnings)


@dataclasses.dataclass(frozen=True)
class ScanSchedule:
    """When scans run by themselves."""

    active: bool
    cron: str | None
    interval_s: Annotated[int | None, Field(ge=1)]
    window: str | None


@dataclasses.dataclass(frozen=True)
class ScanStatus:
    """State of the current scan, its progress, the last finished one and the schedule."""

    state: ScanState
    progress: Annotated[ScanProgress | None, Field(description="The running scan (null when idle).")]
    last: Annotated[LastScan | None, Field(description="The last finished scan (null before the first).")]
    paused_reason: Annotated[str | None, Field(description="Why it is paused (by a user, outside MS_SCAN_WINDOW).")]
    waiting: Annotated[
        str | None,
        Field(
            description="Why the running scan waits (no encoder service in MS_ENCODER_URLS answers, or scan "
            "workers are still embedding its files); it goes on by itself."
        ),
    ]
    next_run: Annotated[str | None, Field(description="Next scheduled scan (ISO 8601).")]
    schedule: ScanSchedule
    ocr_prelook: Annotated[
        str | None,
        Field(
            description="Where the quick look for text runs (in the scan, or in the OCR pass after it) and why "
            "(MS_OCR_PRELOOK); null while OCR is off or before `auto` has measured."
        ),
    ]
    can_scan: Annotated[bool, Field(description="False in a process that does not own the data dir.")]
    refusal: Annotated[str | None, Field(description="Why this process cannot scan.")]


@dataclasses.dataclass(frozen=True)
class ScanWorkerStatus:
    """A process that embeds scans' files, in the roll call (with MS_DATABASE_URL): the owner's scan and each
    ``python -m materialsearch worker``."""

    name: Annotated[str, Field(description="Host, pid and role: unique while it runs.")]
    host: str
    pid: int
    role: Annotated[Literal["scan", "worker"], Field(description="The owner's scan, or a worker process.")]
    state: Annotated[str, Field(description="What it does now (embedding, idle, waiting, stopped).")]
    files: Annotated[int, Field(ge=0, description="Files it has written since it started.")]
    started_at: Annotated[str, Field(description="ISO 8601, the database server's clock.")]
    last_seen: Annotated[str, Field(description="Its last heartbeat (ISO 8601, the database server's clock).")]
    alive: Annotated[bool, Field(description="Seen within MS_WORKER_LEASE and not stopped.")]


@dataclasses.dataclass(frozen=True)
class Reindexing:
    """After a model change, while items still wait to be embedded with the new model."""

    pending: Annotated[int, Field(ge=1)]
    running: Annotated[bool, Field(description="Whether the re-embedding scan is running now.")]
    message: str


@dataclasses.dataclass(frozen=True)
class BackendDecision:
    """How the model's backend and precision were chosen (with everything ``auto`` on a CPU: by measuring)."""

    reason: str
    measure_cost_s: Annotated[
        float | None, Field(ge=0, description="Seconds measuring took at the start it ran (null: not measured).")
    ]
    measurements: Annotated[list[Measurement], Field(description="Each candidate timed on the probe batch.")]

    @classmethod
    def of(cls, choice: BackendChoice) -> BackendDecision:
        """The decision an encoder was built for."""
        return cls(choice.reason, choice.measure_cost_s, list(choice.measurements))

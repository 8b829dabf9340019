"""Where the OCR pre-look runs: on the picture the scan decodes anyway, or in the OCR pass after the scan.

On the scan's decode the pre-look needs no second decode, but it runs on the cores the model runs on, and it
costs the scan more than its share of the CPU: the decode threads take turns at the one detector. Measured on 2
AVX2 cores (ViT-B-16 onnx int8, the bench's phone mix): the look, ~27 ms of one core a photo, was 9–10 % of what a
picture costs in the model, and moving it to the OCR pass took the scan from 6.16–6.48 to 7.23 photos/s (0.80–0.84
→ 0.94 of the model) and its decode threads from 44–49 to 20 ms a photo. On a fast model (bf16 on AMX: ~84 ms of
the cores a picture, a GPU, an encoder service) it would hold the scan back by a third or more. The OCR pass, which
follows the scan (photos are searchable by meaning first), then decodes the picture small again: ~4 ms for a
HEIC's thumbnail, 10–30 ms for a 12 MP JPEG's 1/8 draft. So the look stays in the scan only beside a model at least
~20× its cost (ViT-L/14 and larger on a CPU), where the second decode would cost more than the scan gains.
``MS_OCR_PRELOOK`` chooses, or (``auto``) the gate measures both costs as the scan goes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from materialsearch.encoders import usable_cores

log = logging.getLogger(__name__)

# The pre-look stays in the scan while it costs at most this share of what a picture costs the machine in the
# model (its wall time × the cores): ~9 % for ViT-B-16 in ONNX int8 on 2 AVX2 cores (it cost the scan 10–15 % of
# its speed there), ~30 % for bf16 on 2 AMX cores, ~1 % for ViT-L/14 on a CPU.
SHARE_MAX = 0.05
# Pre-looks and model pictures measured before the gate judges (the first pre-looks of a process run regardless).
WARMUP_PRELOOKS = 8
WARMUP_PICTURES = 16
# Weight of each new measurement in the running means: the costs settle within a few dozen photos, and a model
# that changes speed (an encoder service that gets busy) moves the verdict within as many pictures.
SMOOTHING = 0.05


@dataclasses.dataclass(frozen=True)
class PrelookCosts:
    """The running costs the gate judges on: a pre-look's CPU seconds, and a picture's wall seconds in the model
    multiplied by the cores the machine has (what the machine spends on it while the model runs)."""

    prelook_s: float
    prelooks: int
    model_s: float
    pictures: int

    @property
    def share(self) -> float | None:
        """The pre-look's cost as a share of the model's, once both are measured."""
        if self.prelooks < WARMUP_PRELOOKS or self.pictures < WARMUP_PICTURES:
            return None
        return self.prelook_s / self.model_s if self.model_s > 0 else float("inf")


class PrelookGate:
    """Decides, photo by photo and from any thread, whether the scan's decode threads run the OCR pre-look.

    ``mode``: ``scan`` (always), ``pass`` (never: the OCR pass looks), ``auto`` (while ``SHARE_MAX`` holds).
    The decode threads report each pre-look's CPU time (``prelook_ran``), the model loop each batch's wall time
    (``model_ran``); the gate keeps running means of both for the life of the process.
    """

    def __init__(self, mode: str = "auto", cores: int | None = None):
        if mode not in ("auto", "scan", "pass"):
            raise ValueError(f"unknown pre-look mode {mode!r}")
        self.mode = mode
        self.cores = cores or usable_cores()
        self._lock = threading.Lock()
        self._prelook_s = self._model_s = 0.0
        self._prelooks = self._pictures = 0
        self._verdict: bool | None = None  # the last one logged

    def wanted(self) -> bool:
        """Whether the next photo's pre-look runs in the scan."""
        if self.mode != "auto":
            return self.mode == "scan"
        share = self.costs().share
        verdict = share is None or _in_scan(share)
        if share is not None and verdict != self._verdict:
            self._verdict = verdict
            log.info("OCR pre-look: %s", self.explain())
        return verdict

    def prelook_ran(self, cpu_s: float) -> None:
        """One pre-look on a decode thread took ``cpu_s`` of that thread's CPU time."""
        with self._lock:
            self._prelook_s = _mean(self._prelook_s, cpu_s, self._prelooks, WARMUP_PRELOOKS)
            self._prelooks += 1

    def model_ran(self, wall_s: float, pictures: int) -> None:
        """The model encoded ``pictures`` in ``wall_s`` seconds."""
        if pictures <= 0:
            return
        with self._lock:
            per_picture = wall_s * self.cores / pictures
            for _ in range(pictures):
                self._model_s = _mean(self._model_s, per_picture, self._pictures, WARMUP_PICTURES)
                self._pictures += 1

    def costs(self) -> PrelookCosts:
        with self._lock:
            return PrelookCosts(self._prelook_s, self._prelooks, self._model_s, self._pictures)

    def explain(self) -> str | None:
        """Where the pre-look runs and why, for people (None while OCR is off or nothing is measured yet)."""
        if self.mode == "scan":
            return "in the scan (MS_OCR_PRELOOK=scan)"
        if self.mode == "pass":
            return "in the OCR pass (MS_OCR_PRELOOK=pass)"
        costs = self.costs()
        share = costs.share
        if share is None:
            return None
        where = "in the scan" if _in_scan(share) else "in the OCR pass"
        return (
            f"{where}: {costs.prelook_s * 1000:.0f} ms of one core a photo against the model's "
            f"{costs.model_s * 1000:.0f} ms of {self.cores} cores a picture ({share:.0%}; the scan keeps it up to "
            f"{SHARE_MAX:.0%})"
        )


def _in_scan(share: float) -> bool:
    return share <= SHARE_MAX


def _mean(current: float, sample: float, seen: int, warmup: int) -> float:
    """The plain mean over the warm-up, then an exponential one (recent costs count most)."""
    if seen < warmup:
        return (current * seen + sample) / (seen + 1)
    return current + SMOOTHING * (sample - current)

"""Choose the backend by measuring it: what ``auto`` does on a CPU.

CPU flags cannot say which path is fastest (AVX512-BF16 without AMX makes torch bf16 the slowest path there is;
a Celeron or an ARM NAS is anyone's guess), so at the first start with given weights every backend/precision this
machine can run is loaded and timed on a fixed probe batch for a bounded few seconds (``MEASURE_SECONDS``), and the
fastest whose vectors keep cosine >= ``base.FIDELITY_MIN_COSINE`` to torch fp32 wins. The decision and its measurements
are stored in the data dir (``DECISION_FILE``, written atomically) under a fingerprint of what they depend on (the
CPU model and flags, threads, library versions, the weights' identity, the probe); a later start whose
fingerprint matches reuses it, any change measures again.

The same candidates are also timed at batch 1, as queries run (``Use``: one search sentence, one uploaded
picture), and each query use gets its own fastest backend/precision, stored in the same decision: on an AMX Xeon
torch bf16 wins the scan's batches while ONNX int8's text tower answers a sentence several times faster. A query
backend other than the scan's is taken only when it is at least ``QUERY_SWITCH_GAIN`` times faster for that use
(it costs a second copy of a tower in memory). A candidate stopped as hopeless after its one-picture warm-up is
not timed for queries either: that warm-up was already a query picture's cost, several times the fastest's.

How the identity rule applies to queries: stored vectors carry the scan encoder's identity, and a query backend
never changes it (nothing stored is ever encoded by it, so nothing is re-embedded when it changes). Query vectors
are never stored, but they are compared with stored ones, so the rule that lets a backend share stored vectors
applies to them as it does to a scan backend: the same fidelity gate (``base.FIDELITY_MIN_COSINE``, worst cosine
to torch fp32 on the probe), per tower: a backend serves query sentences only if its text tower passes, query
pictures only if its image tower does. The scan's own backend passed both, so a query vector and the stored
vector of the same content stay as close as two fp32 vectors would within the gate on each side.

The timing of one run is a function given to ``measure_and_choose`` (``time_run``), told what it times (``Use``
and how many pictures or sentences), so tests decide who is fastest for each use whatever CPU runs them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from materialsearch.encoders.base import (
    Backend,
    BackendChoice,
    LoadedWeights,
    Measurement,
    Precision,
    QueryTiming,
    Tower,
    Use,
    passes_gate,
    usable_cores,
)
from materialsearch.encoders.clip import cosines

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

# Bump when what is measured, or how, changes: stored decisions are then measured again (2: query uses too).
DECISION_VERSION = 2
DECISION_FILE = "backend-choice.json"  # in the data dir (its models folder may be shared between data dirs)
MEASURE_SECONDS = 3.0  # timed runs per candidate stop once they add up to this (at least one run)
MAX_RUNS = 5  # ... or after this many (a tiny model needs no seconds)
MAX_PROBE_BATCH = 8  # the probe batch is the scan's batch size, at most this
QUERY_SECONDS = 1.0  # timed batch-1 runs per candidate and query use stop once they add up to this
QUERY_PICTURES = 4  # probe pictures one run encodes one at a time (a query picture costs as much as a scan's)
# A query use runs on another backend than the scan's only when that is this many times faster for it: less than
# that is not worth a second tower in memory (and a second thread pool).
QUERY_SWITCH_GAIN = 1.25
# A candidate whose one-picture warm-up, scaled to the probe batch, is this many times slower than the fastest
# timed so far cannot win: it is not timed further (emulated bf16 takes ~13 s for a ViT-B-16 batch of 8 on AVX2).
HOPELESS_FACTOR = 3.0
LIBRARIES = ("torch", "onnxruntime", "onnx", "numpy", "cn_clip")  # whose versions change speed or vectors
# Candidates in the order they are measured: torch fp32 first, as it is the fidelity reference.
CANDIDATES = (
    (Backend.TORCH, Precision.FP32),
    (Backend.ONNX, Precision.INT8),
    (Backend.ONNX, Precision.FP32),
    (Backend.TORCH, Precision.BF16),
)


class MachineFacts(Protocol):
    """What measuring needs of ``choose.Machine`` (declared there; named here without importing it)."""

    cpu_flags: frozenset[str]
    onnx_runtime: bool
    cpu_model: str


class TimeRun(Protocol):
    """Runs ``run`` (which encodes ``count`` pictures, or sentences for ``Use.SENTENCES``, for ``use``) and says
    how many seconds it took."""

    def __call__(self, choice: BackendChoice, count: int, run: Callable[[], object], use: Use = Use.SCAN) -> float: ...


Build = Callable[[BackendChoice], LoadedWeights]  # an encoder for a choice, not yet loaded


def time_run(_choice: BackendChoice, _count: int, run: Callable[[], object], _use: Use = Use.SCAN) -> float:
    """Wall-clock seconds of ``run()``, which encodes that many pictures or sentences (the timing the product
    uses)."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def candidates(machine: MachineFacts, device: str = "cpu") -> list[BackendChoice]:
    """Every backend/precision ``machine`` can run, in measuring order (ONNX only where ONNX Runtime imports)."""
    return [
        BackendChoice(backend, precision, device, "measuring")
        for backend, precision in CANDIDATES
        if backend != Backend.ONNX or machine.onnx_runtime
    ]


def decision_path(settings: Settings) -> str:
    """Where the measured decision is stored."""
    return os.path.join(settings.data_dir, DECISION_FILE)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the speed and vectors depend on (without importing them)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def fingerprint(settings: Settings, machine: MachineFacts, weights: str | None) -> dict[str, Any]:
    """What a measured decision depends on; ``weights`` is the weights' identity (None: not known yet)."""
    flags = hashlib.blake2b(" ".join(sorted(machine.cpu_flags)).encode(), digest_size=8).hexdigest()
    return {
        "version": DECISION_VERSION,
        "cpu": machine.cpu_model,
        "cpu_flags": flags,
        "threads": settings.torch_threads or usable_cores(),
        "libraries": library_versions(),
        "weights": weights,
        "probe_batch": probe_batch_size(settings),
        "candidates": [f"{backend}:{precision}" for backend, precision in CANDIDATES],
    }


def probe_batch_size(settings: Settings) -> int:
    """How many pictures the probe batch holds: the scan's batch, at most MAX_PROBE_BATCH."""
    return min(settings.batch_size, MAX_PROBE_BATCH)


# --- the stored decision ----------------------------------------------------------------------------------------
def load_decision(path: str, expected: dict[str, Any], device: str) -> BackendChoice | None:
    """The stored decision at ``path`` if it was made under ``expected``; None (and why, in the log) otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        if record["fingerprint"] != expected:
            changed = sorted(k for k in expected if record["fingerprint"].get(k) != expected[k])
            log.info("backend choice: %s changed since it was measured: measuring again", ", ".join(changed))
            return None
        measurements = tuple(
            Measurement(**{**m, "backend": Backend(m["backend"]), "precision": Precision(m["precision"])})
            for m in record["measurements"]
        )
        timings = tuple(
            QueryTiming(
                **{**t, "backend": Backend(t["backend"]), "precision": Precision(t["precision"]), "use": Use(t["use"])}
            )
            for t in record["query_timings"]
        )
        queries = {
            Use(use): BackendChoice(Backend(q["backend"]), Precision(q["precision"]), device, q["reason"])
            for use, q in record["queries"].items()
        }
        chosen = record["chosen"]
        return BackendChoice(
            Backend(chosen["backend"]),
            Precision(chosen["precision"]),
            device,
            f"{record['reason']} (measured {record['measured_at']}, stored in {path})",
            measurements,
            float(record["cost_s"]),
            queries,
            timings,
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # unreadable: measure again
        log.warning("backend choice: %s is unreadable (%s: %s): measuring again", path, type(exc).__name__, exc)
        return None


def store_decision(path: str, choice: BackendChoice, fingerprint_: dict[str, Any]) -> None:
    """Write the decision and its measurements to ``path`` atomically."""
    record = {
        "fingerprint": fingerprint_,
        "chosen": {"backend": choice.backend, "precision": choice.precision},
        "reason": choice.reason,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cost_s": choice.measure_cost_s,
        "measurements": [dataclasses.asdict(m) for m in choice.measurements],
        "queries": {
            use: {"backend": query.backend, "precision": query.precision, "reason": query.reason}
            for use, query in choice.queries.items()
        },
        "query_timings": [dataclasses.asdict(t) for t in choice.query_timings],
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --- measuring --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Probe:
    """The fixed inputs every candidate encodes: pictures (prepared: every local backend prepares them alike)
    and sentences."""

    pixels: Sequence[np.ndarray]
    sentences: Sequence[str]


@dataclasses.dataclass(frozen=True)
class Reference:
    """torch fp32's vectors of the probe, which the others must stay close to."""

    images: np.ndarray
    texts: np.ndarray


def make_probe(resolution: int, count: int) -> Probe:
    """The probe: ``count`` deterministic photo-like pictures and the int8 probe's sentences."""
    from materialsearch.encoders.clip import clip_preprocess
    from materialsearch.encoders.onnx_encoder import PROBE_SENTENCES, probe_images

    return Probe([clip_preprocess(image, resolution) for image in probe_images(resolution, count)], PROBE_SENTENCES)


def measure_one(
    encoder: LoadedWeights,
    probe: Probe,
    reference: Reference | None,
    fastest_batch_s: float | None,
    seconds: float,
    timer: TimeRun,
    query_seconds: float = QUERY_SECONDS,
) -> tuple[Measurement, Reference | None, tuple[QueryTiming, ...]]:
    """Time ``encoder`` (loaded) on the probe: a one-picture warm-up (a hopeless candidate stops after two), a
    timed run of the probe batch whose vectors are checked against ``reference`` (none: this is the reference),
    then, if they pass, more timed runs until they add up to ``seconds`` (at most MAX_RUNS); then each query use
    whose tower passed the gate at batch 1 (``time_queries``). Returns its measurement, its vectors and its
    query timings."""
    choice = encoder.choice
    done = dict(backend=choice.backend, precision=choice.precision)

    def warm_up() -> float:
        return timer(choice, 1, lambda: encoder.encode_prepared(probe.pixels[:1]), Use.SCAN)

    def hopeless(warm_s: float) -> bool:
        return fastest_batch_s is not None and warm_s * len(probe.pixels) > HOPELESS_FACTOR * fastest_batch_s

    warm_s = warm_up()
    if hopeless(warm_s):  # a first run can carry one-time costs (allocations, kernel choice): look once more
        warm_s = min(warm_s, warm_up())
    if hopeless(warm_s):
        projected = warm_s * len(probe.pixels)
        note = f"stopped after the warm-up: ~{projected / fastest_batch_s:.1f}x slower than the fastest"
        warm_rate = round(1 / max(warm_s, 1e-9), 3)
        measured = Measurement(**done, images_per_s=warm_rate, min_cosine=None, runs=0, load_s=0, note=note)
        return measured, None, untimed_queries(choice, note)
    batches: list[np.ndarray] = []

    def encode_batch() -> None:
        batches.append(encoder.encode_prepared(probe.pixels))  # a timed run's vectors serve the fidelity check

    runs = [timer(choice, len(probe.pixels), encode_batch, Use.SCAN)]
    ours = Reference(batches[0], encoder.encode_texts(probe.sentences))
    tower_cosine = dict.fromkeys(Tower, 1.0)
    if reference is not None:
        tower_cosine = {
            Tower.IMAGE: float(cosines(ours.images, reference.images).min()),
            Tower.TEXT: float(cosines(ours.texts, reference.texts).min()),
        }
    tower_cosine = {tower: round(cosine, 6) for tower, cosine in tower_cosine.items()}
    cosine = min(tower_cosine.values())
    if not passes_gate(cosine):
        note = f"vectors miss the fidelity gate (cosine {cosine:.5f})"
    else:
        note = ""
        while len(runs) < MAX_RUNS and sum(runs) < seconds:
            runs.append(timer(choice, len(probe.pixels), encode_batch, Use.SCAN))
    rate = len(probe.pixels) / max(min(runs), 1e-9)  # the best run: other processes only ever slow a run down
    measured = Measurement(**done, images_per_s=round(rate, 3), min_cosine=cosine, runs=len(runs), load_s=0, note=note)
    return measured, ours, time_queries(encoder, probe, tower_cosine, query_seconds, timer)


# A catalog's vectors are re-embedded when the precision's identity changes (int8 vectors carry their own, see
# ``weights.identity_for``): a measurement made again (a library upgraded, other threads, another batch size) keeps
# the catalog's kind of path unless the other kind is at least this much faster. Re-embedding a 500k-photo library
# takes days on a NAS; a close call measured under load (bf16 23.8 against int8 19.4 img/s on an AMX Xeon) must not
# flip it back and forth.
SWITCH_FOR = 1.5


def kept_for_catalog(
    winner: Measurement, measurements: list[Measurement], catalog_int8: bool | None
) -> tuple[Measurement, str]:
    """The candidate to run, and why when it is not the fastest: the fastest of the catalog's kind (int8 or full
    precision) unless ``winner``, of the other kind, is SWITCH_FOR times faster."""
    if catalog_int8 is None or (winner.precision == Precision.INT8) == catalog_int8:
        return winner, ""
    same_kind = [m for m in measurements if m.passed and (m.precision == Precision.INT8) == catalog_int8]
    if not same_kind:
        return winner, ""
    kept = max(same_kind, key=lambda m: m.images_per_s)
    ratio = winner.images_per_s / max(kept.images_per_s, 1e-9)
    if ratio >= SWITCH_FOR:
        return winner, ""
    made = "at int8" if catalog_int8 else "at full precision"
    return kept, (
        f"kept for the catalog's vectors, made {made}: {winner.backend} {winner.precision} measured only "
        f"{ratio:.2f}x faster (< {SWITCH_FOR}x), and switching would re-embed the library"
    )


QUERY_TOWERS = {Use.SENTENCES: Tower.TEXT, Use.QUERY_PICTURES: Tower.IMAGE}  # the tower each query use runs


def untimed_queries(choice: BackendChoice, note: str) -> tuple[QueryTiming, ...]:
    """The query timings of a candidate that was not timed (``note`` says why)."""
    return tuple(QueryTiming(choice.backend, choice.precision, use, None, None, 0, note) for use in QUERY_TOWERS)


def time_queries(
    encoder: LoadedWeights, probe: Probe, tower_cosine: dict[Tower, float], seconds: float, timer: TimeRun
) -> tuple[QueryTiming, ...]:
    """Time ``encoder`` at batch 1, as a query runs it, for each query use whose tower's vectors passed the
    fidelity gate (``tower_cosine``: worst cosine to torch fp32): one run encodes every probe sentence (or
    QUERY_PICTURES probe pictures) one at a time; runs repeat until they add up to ``seconds`` (at most
    MAX_RUNS); the best run per sentence or picture counts. The first call of a tower at batch 1 was made by the
    fidelity check (sentences) or the warm-up (pictures), so no run pays a one-time cost."""
    choice = encoder.choice
    work = {
        Use.SENTENCES: (len(probe.sentences), lambda: [encoder.encode_texts([text]) for text in probe.sentences]),
        Use.QUERY_PICTURES: (
            min(QUERY_PICTURES, len(probe.pixels)),
            lambda: [encoder.encode_prepared([pixels]) for pixels in probe.pixels[:QUERY_PICTURES]],
        ),
    }
    timings = []
    for use, tower in QUERY_TOWERS.items():
        cosine = tower_cosine[tower]
        if not passes_gate(cosine):
            note = f"{tower} vectors miss the fidelity gate (cosine {cosine:.5f})"
            timings.append(QueryTiming(choice.backend, choice.precision, use, None, cosine, 0, note))
            continue
        count, run = work[use]
        runs = [timer(choice, count, run, use)]
        while len(runs) < MAX_RUNS and sum(runs) < seconds:
            runs.append(timer(choice, count, run, use))
        ms = round(min(runs) / count * 1000, 3)
        timings.append(QueryTiming(choice.backend, choice.precision, use, ms, cosine, len(runs)))
    return tuple(timings)


def choose_queries(scan: BackendChoice, timings: Sequence[QueryTiming], device: str) -> dict[Use, BackendChoice]:
    """Each query use's backend/precision: the fastest at batch 1 whose tower passed the fidelity gate, if it is
    at least QUERY_SWITCH_GAIN times faster than the scan's own backend for that use (else the scan's: absent)."""
    chosen = {}
    for use in QUERY_TOWERS:
        passed = [t for t in timings if t.use == use and t.passed]
        own = next((t for t in passed if (t.backend, t.precision) == (scan.backend, scan.precision)), None)
        if not passed or own is None:
            continue
        best = min(passed, key=lambda t: t.ms)
        if best is own or best.ms * QUERY_SWITCH_GAIN > own.ms:
            continue
        reason = (
            f"{use}: {best.backend} {best.precision} {best.ms:.1f} ms at batch 1 against the scan's "
            f"{own.backend} {own.precision} {own.ms:.1f} ms (cosine {best.cosine:.4f} to fp32)"
        )
        chosen[use] = BackendChoice(best.backend, best.precision, device, reason)
    return chosen


def measure_and_choose(
    settings: Settings,
    machine: MachineFacts,
    build: Build,
    device: str = "cpu",
    seconds: float = MEASURE_SECONDS,
    timer: TimeRun = time_run,
    query_seconds: float = QUERY_SECONDS,
    catalog_int8: bool | None = None,
) -> BackendChoice:
    """The stored decision if it still holds for this machine and these weights, else measure every candidate
    (``build`` makes its encoder), store and return the fastest that passes the fidelity gate, with each query
    use's own choice (``choose_queries``) in ``queries``. ``catalog_int8``: whether the catalog already holds these
    weights' vectors made at int8 (True) or at full precision (False), or holds none (None): see
    ``kept_for_catalog``."""
    from materialsearch.encoders.weights import weights_identity

    path = decision_path(settings)
    expected = fingerprint(settings, machine, weights_identity(settings))
    if expected["weights"] is not None:
        stored = load_decision(path, expected, device)
        if stored is not None:
            log.info("backend choice: %s %s, %s", stored.backend, stored.precision, stored.reason)
            return stored
    started = time.perf_counter()
    measurements: list[Measurement] = []
    timings: list[QueryTiming] = []
    reference: Reference | None = None
    probe: Probe | None = None
    fastest_batch_s: float | None = None
    for candidate in candidates(machine, device):
        encoder = build(candidate)
        load_started = time.perf_counter()
        try:
            encoder.load()
            load_s = round(time.perf_counter() - load_started, 3)
            if probe is None:
                probe = make_probe(encoder.describe().input_size, probe_batch_size(settings))
            measured, vectors, timed = measure_one(
                encoder, probe, reference, fastest_batch_s, seconds, timer, query_seconds
            )
        except Exception as exc:  # a path this machine cannot run (a library's own error types): the others can
            if reference is None:  # the reference itself failed: the model cannot run here at all
                raise
            note = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
            log.warning("backend choice: %s %s %s", candidate.backend, candidate.precision, note)
            measurements.append(Measurement(candidate.backend, candidate.precision, 0.0, None, 0, 0.0, note))
            timings.extend(untimed_queries(candidate, note))
            continue
        # int8 may run a tower fp32 on these weights: the precision stored is what was asked for, as a setting
        measurements.append(dataclasses.replace(measured, load_s=load_s))
        timings.extend(timed)
        if reference is None:
            reference = vectors
        if measured.passed:
            batch_s = len(probe.pixels) / measured.images_per_s
            fastest_batch_s = batch_s if fastest_batch_s is None else min(fastest_batch_s, batch_s)
        del encoder  # one candidate's weights in memory at a time
    winner = max((m for m in measurements if m.passed), key=lambda m: m.images_per_s)
    winner, kept_note = kept_for_catalog(winner, measurements, catalog_int8)
    cost_s = round(time.perf_counter() - started, 1)
    others = ", ".join(
        f"{m.backend} {m.precision} {m.images_per_s:.2f}" + ("" if m.passed else f" ({m.note})")
        for m in measurements
        if m is not winner
    )
    reason = (
        f"{kept_note or 'measured fastest on this CPU'}: {winner.images_per_s:.2f} images/s on the probe batch "
        f"(cosine {winner.min_cosine:.4f} to fp32; others: {others}); measuring took {cost_s:.0f} s"
    )
    choice = BackendChoice(winner.backend, winner.precision, device, reason, tuple(measurements), cost_s)
    queries = choose_queries(choice, timings, device)
    reason += "".join(f"; {query.reason}" for query in queries.values())
    choice = dataclasses.replace(choice, reason=reason, queries=queries, query_timings=tuple(timings))
    if expected["weights"] is None:  # a named model was downloaded while measuring: now it has an identity
        expected = fingerprint(settings, machine, weights_identity(settings))
    store_decision(path, choice, expected)
    log.info("backend choice: %s %s, %s", choice.backend, choice.precision, reason)
    return choice

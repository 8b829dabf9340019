"""The factory: which backend, precision and device run the model, decided from the settings and the facts of
this machine (``Machine``), and the encoder its registered backend (``registry``) builds for that choice.

The decision (``choose_backend``) takes the machine's facts as an argument, so every CPU it knows (AVX2 only,
AVX512-BF16 without AMX, AMX, with or without CUDA) is tested on any machine; ``Machine.probe`` reads them. With
everything ``auto`` on a CPU the facts cannot decide, and ``measure`` times the candidates instead, for the scan's
pictures and for each query use (one sentence, one picture); ``make_query_encoders`` builds the encoders the
queries then run on. Anything set explicitly (MS_BACKEND, MS_PRECISION, a CUDA device) is not measured and runs
every use: a user who forces torch gets torch everywhere.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import TYPE_CHECKING

# The product's own backends register themselves as they are imported (an encoder on another host does the same).
import materialsearch.encoders.onnx_encoder
import materialsearch.encoders.torch_encoder  # noqa: F401
from materialsearch.encoders.base import (
    AUTO,
    BACKEND_SETTINGS,
    PRECISION_SETTINGS,
    Backend,
    BackendChoice,
    Encoder,
    LoadedWeights,
    ModelError,
    Precision,
    Tower,
    Use,
)
from materialsearch.encoders.measure import QUERY_TOWERS, TimeRun, measure_and_choose, time_run
from materialsearch.encoders.registry import backend_factory

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo flags of CPUs that compute bf16


@dataclasses.dataclass(frozen=True)
class Machine:
    """What the backend choice depends on about the machine it runs on."""

    cpu_flags: frozenset[str]
    cuda: bool  # torch sees a usable CUDA device
    onnx_runtime: bool  # onnxruntime and onnx (needed to export and quantize) import
    cpu_model: str = ""  # /proc/cpuinfo's model name: a stored measured choice is for this CPU only

    @property
    def native_bf16(self) -> bool:
        """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX). Without it bf16 matmuls are emulated and
        run slower than fp32, so ``auto`` never picks bf16 there."""
        return bool(NATIVE_BF16_FLAGS & self.cpu_flags)

    @classmethod
    @functools.cache
    def probe(cls) -> Machine:
        """This machine's facts (read once per process)."""
        return cls(read_cpu_flags(), cuda_available(), onnxruntime_available(), read_cpu_model())


def _cpuinfo_value(cpuinfo: str, keys: tuple[str, ...]) -> str | None:
    """The first ``key: value`` line of ``cpuinfo`` whose key is one of ``keys``; None where there is none."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    return value.strip()
    except OSError:
        pass  # no readable cpuinfo (e.g. macOS): nothing is known, so nothing is assumed about the CPU
    return None


def read_cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from ``cpuinfo`` (x86 ``flags``, ARM ``Features``); empty where there is none
    (e.g. macOS)."""
    return frozenset((_cpuinfo_value(cpuinfo, ("flags", "Features")) or "").split())


def read_cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (x86 ``model name``; ARM ``Hardware``/``CPU part``), else ``platform.processor()``."""
    import platform

    return _cpuinfo_value(cpuinfo, ("model name", "Hardware", "CPU part")) or platform.processor()


def cuda_available() -> bool:
    """Whether torch sees a usable CUDA device. Without an NVIDIA driver there can be none, and torch is not
    imported to say so (its import alone holds ~500 MB, which an ONNX Runtime encoder never needs)."""
    if not nvidia_driver_present():
        return False
    import torch

    return torch.cuda.is_available()


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA kernel driver is loaded (CUDA needs it; a container gets it passed in with the GPU)."""
    return os.path.exists("/proc/driver/nvidia/version") or any(os.path.exists(f"/dev/nvidia{i}") for i in range(8))


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and onnx can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_device(requested: str, machine: Machine) -> str:
    """Resolve MS_DEVICE: ``auto`` is ``cuda`` when a GPU is usable, else ``cpu``; CUDA asked for must exist."""
    if requested == AUTO:
        return "cuda" if machine.cuda else "cpu"
    if requested.startswith("cuda") and not machine.cuda:
        raise ModelError(f"MS_DEVICE={requested} but torch sees no CUDA device; use MS_DEVICE=cpu or auto")
    return requested


def choose_backend(backend: str, precision: str, device: str, machine: Machine) -> BackendChoice | None:
    """Turn MS_BACKEND / MS_PRECISION / MS_DEVICE (``auto`` or explicit) into one runnable choice on ``machine``;
    None where both are ``auto`` on a CPU: that is decided by measuring (``measure.measure_and_choose``), since
    CPU flags cannot say which path is fastest. Raises ModelError for combinations that cannot run.

    The rest, measured on our machines: fp16 on CUDA (torch); ``MS_BACKEND=torch`` picks bf16 on a CPU with native
    bf16 (20-32 img/s vs 6-8 fp32 for ViT-B-16 with AMX, but slower than fp32 with AVX512-BF16 alone: explicit
    settings are taken as given); ``MS_BACKEND=onnx`` or ``MS_PRECISION=int8`` run ONNX Runtime with int8 weights,
    which the ONNX backend itself turns down to fp32 when int8 misses the fidelity bar for the loaded weights.
    """
    if backend not in BACKEND_SETTINGS:
        raise ModelError(f"MS_BACKEND={backend!r}: use one of {', '.join(BACKEND_SETTINGS)}")
    if precision not in PRECISION_SETTINGS:
        raise ModelError(f"MS_PRECISION={precision!r}: use one of {', '.join(PRECISION_SETTINGS)}")
    device = choose_device(device, machine)
    cuda = device.startswith("cuda")
    if backend == Backend.ONNX or (backend == AUTO and precision == Precision.INT8):
        return _onnx_choice(precision, device, machine)
    if precision == Precision.INT8:
        raise ModelError("MS_PRECISION=int8 needs MS_BACKEND=onnx (or auto)")
    if precision == Precision.FP16 and not cuda:
        raise ModelError("MS_PRECISION=fp16 is for CUDA; on a CPU use bf16 (native on AVX512-BF16/AMX) or int8")
    if precision != AUTO:
        reason = f"MS_PRECISION={precision}"
        if precision == Precision.BF16 and not cuda and not machine.native_bf16:
            reason += " (this CPU has no native bf16: slower than fp32)"
        return BackendChoice(Backend.TORCH, Precision(precision), device, reason)
    if cuda:
        return BackendChoice(Backend.TORCH, Precision.FP16, device, "CUDA: fp16")
    if backend == AUTO:
        return None  # both auto on a CPU: measured
    if machine.native_bf16:
        return BackendChoice(Backend.TORCH, Precision.BF16, device, "MS_BACKEND=torch on a CPU with native bf16")
    return BackendChoice(Backend.TORCH, Precision.FP32, device, "MS_BACKEND=torch on a CPU without native bf16")


def _onnx_choice(precision: str, device: str, machine: Machine) -> BackendChoice:
    if device.startswith("cuda"):
        raise ModelError("MS_BACKEND=onnx runs on the CPU only; use MS_DEVICE=cpu, or MS_BACKEND=torch on CUDA")
    if not machine.onnx_runtime:
        raise ModelError("MS_BACKEND=onnx needs the onnxruntime and onnx packages (pip install onnxruntime onnx)")
    if precision in {Precision.BF16, Precision.FP16}:
        raise ModelError(f"MS_PRECISION={precision} is for MS_BACKEND=torch; the ONNX backend runs fp32 or int8")
    if precision == AUTO:
        return BackendChoice(
            Backend.ONNX, Precision.INT8, device, "onnx backend: int8 weights (fp32 if int8 misses fidelity)"
        )
    return BackendChoice(Backend.ONNX, Precision(precision), device, f"MS_PRECISION={precision}")


def make_encoder(
    settings: Settings,
    machine: Machine | None = None,
    timer: TimeRun = time_run,
    catalog_identity: str | None = None,
) -> Encoder:
    """The encoder the settings ask for on ``machine`` (default: this one), not yet loaded, built by its
    registered backend. With MS_BACKEND and MS_PRECISION both ``auto`` on a CPU the choice is measured (``timer``
    times one run) or read back from the data dir, where the first start stored it; a measurement keeps the kind of
    path the catalog's vectors were made with (``catalog_identity``, the identity stored with them) unless the other
    kind is much faster (``measure.kept_for_catalog``). A backend other than the local ones (``Backend``) is given
    the settings as they are: it decides how it runs, and this machine's facts are not read."""
    if settings.encoder_urls:  # services on other hosts; this machine's model for sentences and the fallback
        from materialsearch.encoders.remote import RemoteEncoder
        from materialsearch.encoders.weights import weights_identity

        local = settings.model_copy(update={"encoder_urls": ()})
        return RemoteEncoder(
            settings,
            local=lambda: _loaded(make_encoder(local, machine, timer)),
            weights_here=lambda: weights_identity(local) is not None,
        )
    if settings.backend not in BACKEND_SETTINGS:
        factory = backend_factory(settings.backend)  # ModelError for a name no backend registered
        reason = f"MS_BACKEND={settings.backend}"
        return factory(settings, BackendChoice(settings.backend, settings.precision, settings.device, reason))
    machine = machine or Machine.probe()
    choice = choose_backend(settings.backend, settings.precision, settings.device, machine)
    if choice is None:

        def build(candidate: BackendChoice) -> LoadedWeights:
            return backend_factory(candidate.backend)(settings, candidate)

        device = choose_device(settings.device, machine)
        catalog_int8 = _catalog_int8(settings, catalog_identity)
        choice = measure_and_choose(settings, machine, build, device, timer=timer, catalog_int8=catalog_int8)
    return backend_factory(choice.backend)(settings, choice)


def _catalog_int8(settings: Settings, catalog_identity: str | None) -> bool | None:
    """Whether the catalog's vectors of these very weights were made at int8 (None: it holds none of theirs).
    An identity is ``arch|resolution|dim|weights fingerprint`` with ``|int8`` after it for int8 vectors."""
    from materialsearch.encoders.weights import weights_fingerprint, weights_path

    parts = (catalog_identity or "").split("|")
    if len(parts) < 4:
        return None
    try:
        same_weights = parts[3] == weights_fingerprint(weights_path(settings))
    except (OSError, StopIteration):  # weights not here yet: loading will say why
        return None
    return parts[-1] == "int8" if same_weights else None


def _loaded(encoder: Encoder) -> Encoder:
    encoder.load()
    return encoder


@dataclasses.dataclass(frozen=True)
class QueryEncoders:
    """The encoders queries run on: ``sentences`` for search sentences, ``pictures`` for uploaded pictures. Each
    is the scan's own encoder unless ``auto`` measured another backend faster for that use (``measure``); the
    vectors a scan stores only ever come from the scan's encoder, whose identity they carry."""

    sentences: Encoder
    pictures: Encoder


def make_query_encoders(settings: Settings, scan: Encoder) -> QueryEncoders:
    """The query encoders for ``scan`` (the encoder ``make_encoder`` made for ``settings``), loaded now so that
    the first query does not pay for it. Uses that ``scan``'s choice gives no backend of their own (explicit
    settings, CUDA, a remote or registered backend, or the scan's backend was fastest) run on ``scan``; two uses
    with the same backend/precision share one encoder, which opens only the towers they need. A query encoder
    that cannot load leaves its use on ``scan`` (logged): queries answer as before."""
    queries = getattr(getattr(scan, "choice", None), "queries", None) or {}
    towers: dict[tuple[str, str], set[Tower]] = {}
    for use, query in queries.items():
        towers.setdefault((query.backend, query.precision), set()).add(QUERY_TOWERS[use])
    built: dict[tuple[str, str], Encoder] = {}
    for key, needed in towers.items():
        query = next(q for q in queries.values() if (q.backend, q.precision) == key)
        encoder = backend_factory(query.backend)(settings, dataclasses.replace(query, towers=frozenset(needed)))
        try:
            encoder.load()
        except ModelError as exc:
            log.warning("queries stay on the scan's encoder: %s %s cannot load (%s)", *key, exc)
            continue
        built[key] = encoder
    chosen = {use: built.get((query.backend, query.precision), scan) for use, query in queries.items()}
    return QueryEncoders(chosen.get(Use.SENTENCES, scan), chosen.get(Use.QUERY_PICTURES, scan))

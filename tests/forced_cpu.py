"""A pytest plugin: ``pytest -p tests.forced_cpu --cpu avx512_bf16`` runs the tests as if the CPU were that one.

The encoder factory then sees that CPU's flags instead of this machine's (CUDA and ONNX Runtime stay as they
are), so every encoder built in the test process with ``auto`` takes the path that CPU would get: .ci/run uses it
to prove the suite passes on each kind of CPU we deploy on, whatever CPU runs CI. Servers started as subprocesses
still see the real CPU.
"""

from __future__ import annotations

import dataclasses

import pytest

from materialsearch.encoders import Machine

# /proc/cpuinfo flags that decide the choice, per kind of CPU (the rest of a real flags line does not matter).
CPUS = {
    "avx2": frozenset({"avx", "avx2", "fma"}),
    "avx512_bf16": frozenset({"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}),
    "amx": frozenset({"avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu", choices=sorted(CPUS), help="run as if the CPU had these flags (tests.forced_cpu)")


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--cpu")
    if not name:
        return
    machine = dataclasses.replace(Machine.probe(), cpu_flags=CPUS[name])
    patch = pytest.MonkeyPatch()
    patch.setattr(Machine, "probe", classmethod(lambda _cls: machine))
    config.add_cleanup(patch.undo)


def pytest_report_header(config: pytest.Config) -> str | None:
    name = config.getoption("--cpu")
    return f"encoders see the {name} CPU: {Machine.probe()}" if name else None

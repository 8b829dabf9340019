"""A pytest plugin: ``pytest -p tests.forced_cpu --cpu avx512_bf16`` runs the tests as if the CPU were that one.

The encoder factory then sees that CPU's flags instead of this machine's (CUDA and ONNX Runtime stay as they
are), so every encoder built with ``auto`` takes the path that CPU would get: .ci/run uses it to prove the suite
passes on each kind of CPU we deploy on, whatever CPU runs CI. Processes the tests start (a real server, a CLI scan,
the crash harness) see the same CPU: the plugin puts ``tests/forced_cpu_site`` (a ``sitecustomize``) on their
``PYTHONPATH`` and names the CPU in ``FORCED_CPU_ENV``, so a database written in the test process and one written
by its child agree on the model's identity.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from materialsearch.encoders import Machine
from tests.forced_cpu_site.forced_cpu_flags import CPUS, FORCED_CPU_ENV, force

SITE = Path(__file__).resolve().parent / "forced_cpu_site"
REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu", choices=sorted(CPUS), help="run as if the CPU had these flags (tests.forced_cpu)")


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--cpu")
    if not name:
        return
    patch = pytest.MonkeyPatch()
    patch.setattr(Machine, "probe", Machine.probe)  # restored at cleanup, whatever force() puts there
    force(Machine, name)
    patch.setenv(FORCED_CPU_ENV, name)
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SITE), str(REPO), os.environ.get("PYTHONPATH")])))
    config.add_cleanup(patch.undo)


def pytest_report_header(config: pytest.Config) -> str | None:
    name = config.getoption("--cpu")
    return f"encoders see the {name} CPU: {Machine.probe()}" if name else None

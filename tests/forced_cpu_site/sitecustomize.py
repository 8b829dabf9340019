"""Started in the children of a ``pytest -p tests.forced_cpu --cpu NAME`` run: they see the same forced CPU."""

import os

if os.environ.get("MATERIALSEARCH_TEST_FORCED_CPU"):
    from tests.forced_cpu import FORCED_CPU_ENV, force

    force(os.environ[FORCED_CPU_ENV])

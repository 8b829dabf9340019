"""Started in the children of a ``pytest -p tests.forced_cpu --cpu NAME`` run, so they see the same forced CPU.

It imports nothing of the product at start-up (tests check what importing a module loads): the patch is applied
right after ``materialsearch.encoders.choose`` is first imported.
"""

import importlib.abc
import importlib.machinery
import os
import sys

from forced_cpu_flags import FORCED_CPU_ENV, force

TARGET = "materialsearch.encoders.choose"


class _ForceOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_force(module):
            exec_module(module)
            force(module.Machine, os.environ[FORCED_CPU_ENV])

        spec.loader.exec_module = exec_and_force
        return spec


if os.environ.get(FORCED_CPU_ENV):
    sys.meta_path.insert(0, _ForceOnImport())

"""The package's import graph: no cycles inside ``materialsearch/`` (lazy and type-only imports included), and the
encoders' types import without torch, cn_clip or ONNX Runtime (those load only when a model does)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "materialsearch"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its body."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in known and c != name)
    return found


def cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start → … → start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycles_in_the_package():
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(f) for f in files}
    graph = {module_name(f): imports_of(f, known) for f in files}
    assert graph["materialsearch.encoders.choose"] >= {"materialsearch.encoders.torch_encoder"}  # the parser works
    cycles = [cycle for name in graph if (cycle := cycle_from(name, graph))]
    assert not cycles, " | ".join(" → ".join(c) for c in cycles)


def test_the_encoder_types_import_without_a_framework():
    code = (
        "import sys, materialsearch.encoders as e; e.Machine.probe; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'onnxruntime', 'onnx', 'cn_clip'}); "
        "print(heavy); assert not heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_what_threads_import_lazily_from_scipy_is_imported_before_they_start(tiny_model, tmp_path):
    """Two threads importing scipy's submodules for the first time at once can see one half-initialised ("cannot
    import name 'PytestTester' from partially initialized module": a photo recorded as failed in a scan), so
    ``Services`` imports what the decode threads (pHash) and the geocoder import lazily before any thread starts —
    checked in a fresh process, where nothing imported them yet; every lazy scipy import in the package is listed."""
    lazy = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scipy"):
                lazy.add(node.module)
            elif isinstance(node, ast.Import):
                lazy.update(alias.name for alias in node.names if alias.name.startswith("scipy"))
    lazy.add("scipy.fftpack")  # imagehash's phash imports it inside the function
    script = (
        "import sys\n"
        "from config import Settings\n"
        "from materialsearch.services import Services\n"
        f"assert not [m for m in sys.modules if m.startswith('scipy')], 'scipy imported before the test'\n"
        f"services = Services(Settings.from_env(environ={{}}, data_dir={str(tmp_path)!r}, model={tiny_model!r}))\n"
        "try:\n"
        f"    missing = sorted(m for m in {sorted(lazy)!r} if m not in sys.modules)\n"
        "    assert not missing, missing\n"
        "finally:\n"
        "    services.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

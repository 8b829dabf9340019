"""The shape of the code, checked: no class grows past about 300 lines (import cycles: test_imports.py;
one index writer: test_catalog.py)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_CLASS_LINES = 320  # "about 300": a class past this wants splitting by responsibility


def _class_sizes(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def test_no_class_is_oversized():
    files = [*(REPO / "materialsearch").rglob("*.py"), REPO / "config.py", REPO / "app.py"]
    oversized = [
        f"{path.relative_to(REPO)}:{name} ({size} lines)"
        for path in files
        for name, size in _class_sizes(path)
        if size > MAX_CLASS_LINES
    ]
    assert not oversized, f"classes over {MAX_CLASS_LINES} lines: {oversized}"


def test_the_size_check_sees_a_large_class(tmp_path):
    big = tmp_path / "big.py"
    big.write_text("class Big:\n" + "    x = 1\n" * MAX_CLASS_LINES)
    assert _class_sizes(big) == [("Big", MAX_CLASS_LINES + 1)]

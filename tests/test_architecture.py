"""The shape of the code, checked: no class grows past about 300 lines, no module past 700, and the web layer
reaches the core only through ``materialsearch.application`` (import cycles: test_imports.py; one index writer:
test_catalog.py)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_CLASS_LINES = 320  # "about 300": a class past this wants splitting by responsibility
MAX_MODULE_LINES = 700  # a module past this holds more than one area: split it by area
WEB = REPO / "materialsearch" / "web"
# What the web layer must not import (the catalog and its engines): it calls materialsearch.application instead.
NOT_FOR_THE_WEB = ("materialsearch.catalog", "faiss", "sqlalchemy", "sqlite3")


def _class_sizes(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def test_no_class_is_oversized():
    files = _package_files()
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


def _package_files() -> list[Path]:
    return [*(REPO / "materialsearch").rglob("*.py"), REPO / "config.py", REPO / "app.py"]


def test_no_module_is_oversized():
    oversized = [
        f"{path.relative_to(REPO)} ({lines} lines)"
        for path in _package_files()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not oversized, f"modules over {MAX_MODULE_LINES} lines: {oversized}"


def _imported(path: Path, root: Path = REPO) -> set[str]:
    """Every module ``path`` (under ``root``) imports anywhere in its body (lazy imports included; relative ones
    resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package if node.level else ""
            target = ".".join(part for part in (base, node.module or "") if part)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _forbidden_for_the_web(name: str) -> bool:
    return any(name == banned or name.startswith(f"{banned}.") for banned in NOT_FOR_THE_WEB)


def test_the_web_layer_reaches_the_core_only_through_the_application():
    """Routes call ``materialsearch.application``; the catalog, FAISS and SQL stay out of ``web/``."""
    reached = {
        f"{path.relative_to(REPO)}: {name}"
        for path in WEB.rglob("*.py")
        for name in _imported(path)
        if _forbidden_for_the_web(name)
    }
    assert not reached, f"web/ imports what only the application may: {sorted(reached)}"


def test_the_import_check_sees_every_form(tmp_path):
    module = tmp_path / "materialsearch" / "web" / "routes.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "import sqlite3\nfrom faiss import IndexFlatIP\nfrom ..catalog import timeline\n"
        "def lazy():\n    from materialsearch.catalog.store import Store\n    import sqlalchemy.orm\n"
    )
    found = {name for name in _imported(module, tmp_path) if _forbidden_for_the_web(name)}
    assert found >= {"sqlite3", "faiss", "materialsearch.catalog.timeline", "materialsearch.catalog.store"}
    assert "sqlalchemy.orm" in found and not _forbidden_for_the_web("materialsearch.catalogue_of_things")

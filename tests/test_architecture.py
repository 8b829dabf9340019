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


PACKAGE = REPO / "materialsearch"
CATALOG = PACKAGE / "catalog"
STORAGE_MODULES = {"sqlalchemy", "sqlite3", "faiss"}  # the catalog's engines: nobody else may touch them
MAX_TOP_LEVEL_MODULES = 12  # the rest lives in a stage package, so the tree shows the architecture


def _imported_roots(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, anywhere in its body (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_catalog_touches_the_database_and_the_vector_index():
    leaks = sorted(
        f"{path.relative_to(REPO)}: {sorted(_imported_roots(path) & STORAGE_MODULES)}"
        for path in PACKAGE.rglob("*.py")
        if CATALOG not in path.parents and _imported_roots(path) & STORAGE_MODULES
    )
    assert not leaks, f"SQL or FAISS outside materialsearch/catalog/: {leaks}"


def test_the_storage_check_sees_a_lazy_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import faiss.contrib\n    from sqlalchemy import select\n")
    assert _imported_roots(module) >= {"faiss", "sqlalchemy"}


def test_each_public_class_name_is_defined_once():
    where: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(str(path.relative_to(REPO)))
    twice = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not twice, f"public class names defined in more than one module: {twice}"


def test_the_tree_shows_the_architecture():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} modules directly in materialsearch/: {top}"
    packages = [path.parent for path in PACKAGE.rglob("__init__.py")]
    undocumented = [
        str(package.relative_to(REPO))
        for package in packages
        if not ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    ]
    assert not undocumented, f"packages without a docstring saying what they own: {undocumented}"


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

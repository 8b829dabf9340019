"""The bench package: importable without sys.path patches, the product imported in one place, shared helpers."""

from __future__ import annotations

import ast
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common, product

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
SCRIPTS = (
    "run",
    "bench_index",
    "bench_video",
    "bench_rescan",
    "bench_concurrent_search",
    "bench_ocr",
    "bench_browse",
    "bench_places",
    "bench_understand",
    "bench_faces",
    "bench_encoder_service",
    "bench_postgres",
    "bench_queries",
    "bench_workers",
)
PRODUCT_MODULES = {"materialsearch", "config", "app"}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_bench_product_imports_the_product():
    offenders = {
        path.name: sorted(imported_modules(path) & PRODUCT_MODULES)
        for path in sorted(BENCH.glob("*.py"))
        if path.name != "product.py" and imported_modules(path) & PRODUCT_MODULES
    }
    assert offenders == {}, "bench modules must reach the product through bench.product"
    assert imported_modules(BENCH / "product.py") <= {"__future__", "importlib"}  # names come from WHERE


def test_every_product_name_resolves_to_the_products_own_object():
    assert {module.split(".")[0] for module in product.WHERE.values()} <= PRODUCT_MODULES
    for name, module in product.WHERE.items():
        assert getattr(product, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="add it to WHERE"):
        product.NoSuchName  # noqa: B018 - the lookup is the test


def test_importing_the_scripts_patches_no_path_and_loads_no_model_code():
    modules = ", ".join(f"bench.{name}" for name in SCRIPTS)
    code = (
        "import sys; before = list(sys.path); "
        f"import {modules}; "
        "assert sys.path == before, set(sys.path) ^ set(before); "
        "heavy = {'torch', 'materialsearch.services', 'config'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_runs_as_a_file_from_anywhere_and_as_a_module(name, tmp_path):
    as_file = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    as_module = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert as_file.returncode == 0, as_file.stderr
    assert as_module.returncode == 0, as_module.stderr
    assert as_file.stdout == as_module.stdout and "--out" in as_file.stdout


def test_percentiles_interpolate_like_numpy():
    summary = common.percentiles([1.0, 2.0, 3.0, 4.0], points=(50, 90), digits=1)
    assert summary == {"n": 4, "p50": 2.5, "p90": 3.7, "mean": 2.5, "min": 1.0, "max": 4.0}
    assert common.percentiles([5.0])["p99"] == 5.0


def test_text_table_aligns_columns_and_rejects_ragged_rows():
    lines = common.text_table(("name", "n"), [("a", 10), ("long name", 2)], "<>")
    assert lines == ["name        n", "---------  --", "a          10", "long name   2"]
    with pytest.raises(ValueError, match="2 cells"):
        common.text_table(("name", "n"), [("a",)], "<>")


def test_cached_dir_is_made_once_and_a_failed_make_leaves_nothing(tmp_path):
    calls = []

    def make(folder: Path) -> None:
        calls.append(folder)
        (folder / "file").write_text("made")

    target = tmp_path / "cache" / "inputs"
    assert common.cached_dir(target, make) == target
    assert common.cached_dir(target, make) == target
    assert len(calls) == 1 and (target / "file").read_text() == "made"

    def broken(folder: Path) -> None:
        (folder / "half").write_text("half")
        raise RuntimeError("stopped halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        common.cached_dir(tmp_path / "cache" / "other", broken)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["inputs"]


def test_write_report_writes_json_and_no_temporary_file(tmp_path):
    target = common.write_report(tmp_path / "out", "bench_x.json", {"when": "now", "text": "海边", "path": tmp_path})
    assert json.loads(target.read_text(encoding="utf-8")) == {"when": "now", "text": "海边", "path": str(tmp_path)}
    assert [p.name for p in target.parent.iterdir()] == ["bench_x.json"]


def test_data_dirs_share_the_models_folder_and_are_removed(tmp_path, monkeypatch):
    shared = tmp_path / "models"
    monkeypatch.chdir(tmp_path)  # a relative --cache still gives links that work from the data dirs
    dirs = common.DataDirs("ms-test-data-", shared_models=Path("models"))
    first, second = dirs.new(), dirs.new()
    (first / "models" / "export.onnx").write_text("x")
    assert (second / "models" / "export.onnx").read_text() == "x"
    dirs.cleanup()
    assert not first.exists() and not second.exists() and (shared / "export.onnx").is_file()
    kept = common.DataDirs("ms-test-data-")
    folder = kept.new()
    kept.cleanup(keep=True)
    assert folder.is_dir() and not (folder / "models").exists()
    folder.rmdir()


def test_prepare_in_child_runs_in_another_process_and_reports_failure(tmp_path):
    source, copy = tmp_path / "source", tmp_path / "copy"
    source.write_text("input")
    common.prepare_in_child("a copy", shutil.copyfile, str(source), str(copy))
    assert copy.read_text() == "input"
    with pytest.raises(SystemExit, match="preparing a missing copy failed"):
        common.prepare_in_child("a missing copy", shutil.copyfile, str(tmp_path / "missing"), str(copy))

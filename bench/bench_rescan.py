#!/usr/bin/env python
"""Rescan benchmark: how long a scan of an unchanged library takes (it must only walk and stat), and whether
changed, new and removed files are found exactly.

A synthetic tree of ``--files`` small JPEGs (hard links of one file, ``--per-folder`` per folder) is made once and
cached (``--cache``, default ``$MS_BENCH_CACHE`` or /tmp/ms-bench-cache). The database of a finished scan of it is
made once too, through the product's own ``Store.write_batch`` (a record per file, status ok, a random unit
vector: what a scan leaves, without decoding 100 000 pictures), and copied to a fresh data dir for each run.

Then, in this process, through the product's code:

1. ``Services(settings)``: open store and index (not part of the rescan; reported);
2. ``services.scans.run()`` on the unchanged tree, ``--repeat`` times: wall-clock seconds, with a Python audit hook
   counting every ``open`` of a file under the tree (must be 0: no file is read or hashed), plus the walk alone
   (``scanner.walk()``) and the database read alone (``store.file_states()``) to show where the time goes;
3. ``--changes`` files removed, ``--changes`` added, ``--changes`` rewritten (new content, new inode): one scan must
   report exactly that and decode exactly the new and rewritten ones. The tree is restored afterwards.

Files are in the page cache (they were just made or walked), so a NAS adds its own latency on top of these
numbers; the count of files opened, not the time, is what keeps an unchanged rescan cheap on a slow share.

    .venv/bin/python bench/bench_rescan.py                  # 100 000 files
    .venv/bin/python bench/bench_rescan.py --files 2000     # seconds

Prints a table and writes ``<out>/bench_rescan.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_rescan.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench.common import log

TREE_VERSION = 3  # bump when the tree layout changes, so cached trees are remade


def small_jpeg(path: Path, seed: int, size: tuple[int, int] = (96, 72)) -> None:
    """A small JPEG of random blocks (distinct per seed)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize(size).save(path, quality=85)


def seed_of(path: Path) -> Path:
    """The file a tree file is a hard link of: one per folder (file systems cap the links to one inode)."""
    return path.parent.parent.parent / "seeds" / f"{path.parent.name}.jpg"


def ensure_tree(cache: Path, files: int, per_folder: int) -> Path:
    """The cached tree: ``files`` hard links in folders of ``per_folder`` (each folder links one small JPEG)."""

    def make(root: Path) -> None:
        (root / "library").mkdir()
        (root / "seeds").mkdir()  # outside the library folder: only the links are scanned
        started = time.monotonic()
        for i in range(files):
            folder = root / "library" / f"{i // per_folder:04d}"
            path = folder / f"IMG_{i:06d}.jpg"
            if i % per_folder == 0:
                folder.mkdir()
                small_jpeg(seed_of(path), i // per_folder)
            os.link(seed_of(path), path)
        log(f"made {files} files in {time.monotonic() - started:.1f}s")

    return common.cached_dir(cache / f"rescan-tree-v{TREE_VERSION}-{files}-{per_folder}", make)


def settings_for(library: Path, data_dir: Path, model: str, **overrides):
    """Settings for a scan of ``library`` into ``data_dir``: the caller's MS_* tuning, no schedule."""
    values = {"library": str(library), "data_dir": str(data_dir), "model": model, "scan_cron": ""}
    values.update(overrides)
    environ = {k: v for k, v in os.environ.items() if k.startswith("MS_") and k not in {"MS_LIBRARY", "MS_DATA_DIR"}}
    return product.Settings.from_env(environ=environ, **values)


def ensure_data(cache: Path, tree: Path, model: str) -> Path:
    """A data dir holding a finished scan of the tree (made once through Store.write_batch, then cached)."""
    import numpy as np

    def make(data_dir: Path) -> None:
        started = time.monotonic()
        services = product.Services(settings_for(tree / "library", data_dir, model))
        try:
            rng = np.random.default_rng(0)
            dim = services.encoder.describe().dim
            entries = list(services.scanner.walk())
            chunk = 5000
            for start in range(0, len(entries), chunk):
                part = entries[start : start + chunk]
                vectors = product.normalise(rng.standard_normal((len(part), dim)).astype(np.float32))
                records = [
                    product.ItemRecord(
                        path=e.path,
                        kind=e.kind,
                        size=e.size,
                        mtime_ns=e.mtime_ns,
                        status=product.ItemStatus.OK,
                        vectors=[(None, vectors[i])],
                    )
                    for i, e in enumerate(part)
                ]
                ids, added, _replaced = services.store.write_batch(records)
                services.index.add(ids, added)
        finally:
            services.close()  # saves the index with its stamp
        log(f"made the database of {len(entries)} indexed files in {time.monotonic() - started:.1f}s")

    return common.cached_dir(tree / f"data-{Path(model).stem}", make)


class OpenCounter:
    """Counts ``open`` audit events for files under ``root`` inside ``with counter:`` (each ``with`` starts a new
    count; audit hooks cannot be removed, so the hook stays and does nothing outside)."""

    def __init__(self, root: Path):
        self.root = str(root)
        self.active = threading.Event()
        self.opened: list[str] = []
        sys.addaudithook(self._hook)

    def __enter__(self) -> OpenCounter:
        self.opened.clear()
        self.active.set()
        return self

    def __exit__(self, *_exc) -> None:
        self.active.clear()

    def _hook(self, event: str, args) -> None:
        if self.active.is_set() and event == "open" and isinstance(args[0], str) and args[0].startswith(self.root):
            self.opened.append(args[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-folder", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="unchanged rescans measured")
    parser.add_argument("--changes", type=int, default=10, help="files removed, added and rewritten each")
    common.add_place_arguments(parser, "bench_rescan.json")
    args = parser.parse_args(argv)

    cache = Path(args.cache)
    model = str(common.ensure_model(cache, "tiny")[0])
    tree = ensure_tree(cache, args.files, args.per_folder)
    library = tree / "library"
    template = ensure_data(cache, tree, model)

    counter = OpenCounter(library)
    results: dict = {
        "files": args.files,
        "per_folder": args.per_folder,
        "load_average_before": os.getloadavg(),  # other processes' load makes the numbers noisier
        "rescans": [],
    }
    with tempfile.TemporaryDirectory(prefix="ms-bench-rescan-") as work:
        data = Path(work) / "data"
        shutil.copytree(template, data)
        started = time.monotonic()
        services = product.Services(settings_for(library, data, model))
        results["open_seconds"] = round(time.monotonic() - started, 3)
        results["machine"] = common.machine_facts()  # after the open: its imports belong to open_seconds
        removed: list[Path] = []
        rewritten: list[Path] = []
        added: list[Path] = []
        try:
            assert services.index.ntotal == args.files, "the cached database does not match the tree"
            for attempt in range(args.repeat):
                t0 = time.monotonic()
                walked = sum(1 for _ in services.scanner.walk())
                t1 = time.monotonic()
                known = len(services.store.file_states())
                t2 = time.monotonic()
                with counter:
                    stats = services.scans.run()
                t3 = time.monotonic()
                assert walked == known == stats.found == stats.unchanged == args.files, (walked, known, stats)
                assert stats.decoded == stats.added == stats.updated == stats.removed == 0, stats.summary()
                row = {
                    "attempt": attempt + 1,
                    "rescan_s": round(t3 - t2, 3),
                    "walk_only_s": round(t1 - t0, 3),
                    "db_read_only_s": round(t2 - t1, 3),
                    "files_opened": len(counter.opened),
                }
                results["rescans"].append(row)
                log(f"unchanged rescan {attempt + 1}: {row}")

            # Changes: removed, added, rewritten; the scan must find exactly these.
            k = args.changes
            folders = sorted(p for p in library.iterdir() if p.is_dir())
            victims = sorted(folders[0].glob("*.jpg"))[: 2 * k]
            removed, rewritten = victims[:k], victims[k:]
            added = [folders[-1] / f"NEW_{i:03d}.jpg" for i in range(k)]
            for path in removed:
                path.unlink()
            for i, path in enumerate(rewritten):
                path.unlink()  # a new inode: the other links keep the original content and mtime
                small_jpeg(path, 1000 + i, size=(128, 96))
            for i, path in enumerate(added):
                small_jpeg(path, 2000 + i)
            with counter:
                changed_s, stats = common.timed(services.scans.run)
            expected = (k, k, k, 2 * k, args.files - k - k)
            found = (stats.added, stats.updated, stats.removed, stats.decoded, stats.unchanged)
            results["changes"] = {
                "removed": k,
                "added": k,
                "rewritten": k,
                "scan": stats.summary(),
                "seconds": round(changed_s, 3),
                "files_opened": len(set(counter.opened)),
                "exact": found == expected,
            }
            log(f"changed rescan: {stats.summary()}")
            assert found == expected, (
                f"expected (added, updated, removed, decoded, unchanged) = {expected}, got {found}"
            )
            assert set(counter.opened) <= {str(p) for p in rewritten + added}, "an unchanged file was opened"
        finally:
            services.close()
            # Put the cached tree back as it was: the same links of the one seed file.
            for path in added:
                path.unlink(missing_ok=True)
            for path in removed + rewritten:
                path.unlink(missing_ok=True)
                os.link(seed_of(path), path)

    best = min(r["rescan_s"] for r in results["rescans"])
    results["rescan_s_best"] = best
    results["load_average_after"] = os.getloadavg()
    results["rescan_s_median"] = round(statistics.median(r["rescan_s"] for r in results["rescans"]), 3)
    common.write_report(args.out, "bench_rescan.json", results)
    rows = [
        (args.files, f"{r['rescan_s']:.2f}", f"{r['walk_only_s']:.2f}", f"{r['db_read_only_s']:.2f}", r["files_opened"])
        for r in results["rescans"]
    ]
    print("\n".join(common.text_table(("files", "rescan s", "walk s", "db read s", "opened"), rows, ">>>>>")))
    print(
        f"unchanged rescan of {args.files} files: best {best:.2f}s, median {results['rescan_s_median']:.2f}s "
        f"(load average {results['load_average_before'][0]:.1f} before, {results['load_average_after'][0]:.1f} after)"
    )
    changes = results["changes"]
    print(
        f"changes ({k} removed, {k} added, {k} rewritten) found exactly: {changes['exact']} "
        f"in {changes['seconds']:.2f}s; files opened {changes['files_opened']} (only the {2 * k} new/rewritten)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

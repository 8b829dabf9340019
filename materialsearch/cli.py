"""Command line: ``python -m materialsearch scan | serve | search | make-test-model``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from config import Settings, SettingsError

from .model import ModelError


def _services(settings: Settings):
    from .services import Services

    return Services(settings)


def cmd_scan(settings: Settings, _args) -> int:
    """One scan pass with a progress bar, then a summary."""
    if not settings.library:
        print("error: set MS_LIBRARY to the folder(s) to index", file=sys.stderr)
        return 2
    from tqdm import tqdm

    services = _services(settings)
    bar = tqdm(total=0, unit="file", dynamic_ncols=True, desc="walking")
    last_phase = [None]

    def on_progress(progress) -> None:
        if progress.phase != last_phase[0]:
            bar.set_description(progress.phase)
            last_phase[0] = progress.phase
        if bar.total != progress.total:
            bar.total = progress.total
            bar.refresh()
        bar.update(progress.done - bar.n)
        if progress.errors:
            bar.set_postfix(errors=progress.errors, refresh=False)

    try:
        stats = services.scans.run(on_progress)
    except KeyboardInterrupt:
        services.scans.cancel()
        bar.close()
        print("interrupted; work committed so far is kept", file=sys.stderr)
        return 130
    finally:
        bar.close()
        services.close()
    print(stats.summary())
    return 0


def cmd_serve(settings: Settings, _args) -> int:
    """Run the web app (see app.py)."""
    import app as entry

    return entry.serve(settings)


def cmd_search(settings: Settings, args) -> int:
    """Print the top results of a text query as JSON lines."""
    from .search import Page
    from .store import Filters

    services = _services(settings)
    try:
        result = services.search.search(services.search.text_vector(args.text), Filters(), Page(limit=args.limit))
        for hit in result.hits:
            print(json.dumps({"score": round(hit.score, 4), "path": hit.item.path}, ensure_ascii=False))
    finally:
        services.close()
    return 0


def cmd_make_test_model(_settings, args) -> int:
    """Write the tiny, seeded, random CN-CLIP checkpoint used by the tests."""
    from .model import make_test_model

    path = make_test_model(args.file, seed=args.seed)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m materialsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("scan", help="scan the library once (MS_LIBRARY) and exit with a summary")
    sub.add_parser("serve", help="run the web app and REST API")
    search = sub.add_parser("search", help="print the best matches for a sentence")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=10)
    make = sub.add_parser("make-test-model", help="write a tiny random CN-CLIP checkpoint for tests")
    make.add_argument("file")
    make.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"scan": cmd_scan, "serve": cmd_serve, "search": cmd_search, "make-test-model": cmd_make_test_model}
    try:
        settings = Settings.from_env() if args.command != "make-test-model" else None
        return handlers[args.command](settings, args)
    except (SettingsError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

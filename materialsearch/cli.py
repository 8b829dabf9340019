"""Command line: ``python -m materialsearch scan | serve | search | make-test-model``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from config import Settings, SettingsError

from .model import ModelError


def _services(settings: Settings, claim: bool = True):
    from .services import Services

    return Services(settings, claim=claim)


class ScanBar:
    """A tqdm bar that follows a scan: files found while walking, then items embedded with rate and ETA."""

    def __init__(self, file=None):
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit="file", dynamic_ncols=True, desc="walking", file=file)
        self.phase: str | None = None

    def __call__(self, progress) -> None:
        """The scan's ``on_progress`` callback."""
        bar = self.bar
        if progress.phase != self.phase:
            self.phase = progress.phase
            if progress.phase == "embedding":
                # A fresh bar for the real work, so rate and ETA are of embedding, not of the walk.
                bar.reset(total=progress.total)
            bar.set_description(progress.phase)
        if progress.phase == "walking":
            bar.set_postfix(found=progress.found, refresh=False)
            bar.refresh()
            return
        if bar.total != progress.total:
            bar.total = progress.total
            bar.refresh()
        bar.update(progress.done - bar.n)
        if progress.errors:
            bar.set_postfix(errors=progress.errors, refresh=False)

    def close(self) -> None:
        """Finish the bar's line."""
        self.bar.close()


def cmd_scan(settings: Settings, _args) -> int:
    """One scan pass with a progress bar, then a summary. SIGINT/SIGTERM stop it after the current batch."""
    if not settings.library:
        print("error: set MS_LIBRARY to the folder(s) to index", file=sys.stderr)
        return 2
    from .services import ScanRefused

    services = _services(settings)
    if not services.owner:
        print(f"error: {services.scans.refusal}", file=sys.stderr)
        services.close()
        return 1
    bar = ScanBar()
    stopped = []

    def stop(signum, _frame) -> None:
        # Finish the batch in hand (it is committed), save the index, then exit; a second signal ends it at once.
        stopped.append(signum)
        services.scans.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = services.scans.run(bar)
    except ScanRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        bar.close()
        services.close()
    print(stats.summary())
    if stopped:
        print("interrupted; work committed so far is kept", file=sys.stderr)
        return 130
    return 0


def cmd_serve(settings: Settings, _args) -> int:
    """Run the web app (see app.py)."""
    import app as entry

    return entry.serve(settings)


def cmd_search(settings: Settings, args) -> int:
    """Print the top results of a text query as JSON lines."""
    from .search import Page
    from .store import Filters

    services = _services(settings, claim=False)  # searching never takes the scanner's place
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

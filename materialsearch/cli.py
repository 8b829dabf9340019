"""Command line: ``python -m materialsearch scan | serve | worker | search | token | hash-password | download-model |
make-test-model | settings-doc``."""

from __future__ import annotations

import getpass
import json
import logging
import sys

from config import Settings, SettingsError
from materialsearch.catalog.migrations import SchemaError
from materialsearch.encoders import ModelError
from materialsearch.jobs.shutdown import graceful_stop
from materialsearch.organise.tags import LabelError


def _services(settings: Settings, claim: bool = True):
    from materialsearch.services import Services

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
    from materialsearch.scan.manager import ScanRefused

    services = _services(settings)
    if not services.owner:
        print(f"error: {services.scans.refusal}", file=sys.stderr)
        services.close()
        return 1
    bar = ScanBar()
    try:
        # Finish the batch in hand (it is committed), save the index, then exit; a second signal ends it at once.
        with graceful_stop(lambda _signum: services.scans.cancel()) as stopped:
            stats = services.scans.run(bar)
    except ScanRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        services.close()
    print(stats.summary())
    if stopped:
        print("interrupted; work committed so far is kept", file=sys.stderr)
        return 130
    return 0


def cmd_worker(settings: Settings, args) -> int:
    """A scan worker: embed the files scans plan into the PostgreSQL catalog's work queue, on this host, until
    stopped (or, with ``--once``, until the queue is empty). SIGINT/SIGTERM stop it after the batch in hand."""
    import functools
    import threading

    from materialsearch.scan.worker import QueueWorker

    if not settings.database_url:
        print(
            "error: a scan worker takes its work from a PostgreSQL catalog: set MS_DATABASE_URL (with the embedded "
            "SQLite catalog the app's own scan embeds everything)",
            file=sys.stderr,
        )
        return 2
    services = _services(settings, claim=False)
    queue = services.catalog.work_queue(settings.worker_lease)
    worker = QueueWorker(services.scanner, queue, "worker")
    stop = threading.Event()
    print(f"scan worker {worker.name}: taking files from {services.store.location}", file=sys.stderr)
    try:
        with graceful_stop(lambda _signum: stop.set()):
            embedding = functools.partial(services.scanner.queue_embedding, should_stop=stop.is_set)
            written = worker.serve(embedding, stop, once=args.once)
    finally:
        services.close()
    print(f"scan worker {worker.name}: {written} files written")
    if worker.blind:
        print(f"error: this host cannot see {worker.blind}: mount the library at the app's path", file=sys.stderr)
        return 1
    return 0  # a signal is how a worker is stopped (docker stop): not a failure


def _run_pass(services, job, label: str) -> int:
    """Run a background pass (OCR, faces) in the foreground until done, then a summary; SIGINT/SIGTERM stop it
    after the unit in hand. Closes ``services``."""
    try:
        with graceful_stop(lambda _signum: job.cancel()) as stopped:
            stats = job.run()
    except RuntimeError as exc:  # the pass is off, or another process owns the data dir
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    print(f"{label}: {stats.summary()}")
    return 130 if stopped else 0


def cmd_ocr(settings: Settings, _args) -> int:
    """The OCR pass over the photos still waiting for it, then a summary. SIGINT/SIGTERM stop it after the photo."""
    services = _services(settings)
    return _run_pass(services, services.ocr, "OCR")


def cmd_faces(settings: Settings, args) -> int:
    """The faces pass over the photos still waiting for it (then the grouping), or ``--delete``: forget every face
    and person. SIGINT/SIGTERM stop the pass after the batch."""
    services = _services(settings)
    if not args.delete:
        return _run_pass(services, services.faces, "faces")
    try:
        services.people.forget_all()
    finally:
        services.close()
    print("faces: every face, person, name and cover deleted")
    return 0


def cmd_serve(settings: Settings, _args) -> int:
    """Run the web app (see app.py)."""
    import app as entry

    return entry.serve(settings)


def cmd_serve_encoder(settings: Settings, _args) -> int:
    """Run this machine's model as an encoder service for apps elsewhere (MS_ENCODER_URLS there)."""
    import waitress

    from materialsearch.encoders import make_encoder
    from materialsearch.encoders.service import create_encoder_app

    if settings.encoder_urls:
        print("error: MS_ENCODER_URLS is set: an encoder service embeds with its own model", file=sys.stderr)
        return 2
    if not settings.encoder_token and settings.host not in {"127.0.0.1", "localhost", "::1"}:
        print(
            f"warning: MS_ENCODER_TOKEN is empty and MS_HOST={settings.host}: anyone who reaches the port can use "
            "the model",
            file=sys.stderr,
        )
    encoder = make_encoder(settings)
    facts = encoder.describe()  # loads the model once, before the first request
    print(
        f"encoder service: {facts.arch} ({facts.backend} {facts.precision}) on http://{settings.host}:{settings.port}"
    )
    waitress.serve(
        create_encoder_app(encoder, settings.encoder_token),
        host=settings.host,
        port=settings.port,
        threads=4,
        channel_timeout=int(settings.encoder_timeout) + 60,
    )
    return 0


def cmd_search(settings: Settings, args) -> int:
    """Print the top results of a text query as JSON lines."""
    from materialsearch.catalog.filters import Filters
    from materialsearch.search.service import Page

    services = _services(settings, claim=False)  # searching never takes the scanner's place
    try:
        result = services.search.search(services.search.text_vector(args.text), Filters(), Page(limit=args.limit))
        for hit in result.hits:
            print(json.dumps({"score": round(hit.score, 4), "path": hit.item.path}, ensure_ascii=False))
    finally:
        services.close()
    return 0


def _token_store(settings: Settings):
    # Only the database: token commands must not load the model (seconds, GBs) and work while the server runs.
    from materialsearch.catalog.core import Catalog

    return Catalog.open_store(settings.data_dir, settings.database_url)


def cmd_token(settings: Settings, args) -> int:
    """Create, list or revoke API tokens (stored hashed in the database the server reads)."""
    from materialsearch import auth

    store = _token_store(settings)
    tokens = store.tokens
    try:
        if args.action == "create":
            try:
                token = auth.create_token(tokens, args.name)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(token)
            print(
                f"token {args.name!r} created; it is shown only this once. Send it as: Authorization: Bearer <token>",
                file=sys.stderr,
            )
            return 0
        if args.action == "revoke":
            if not auth.revoke_token(tokens, args.name):
                print(f"error: no token named {args.name!r}", file=sys.stderr)
                return 1
            print(f"token {args.name!r} revoked", file=sys.stderr)
            return 0
        for info in tokens.all():
            used = info.last_used_at.isoformat() if info.last_used_at else "never"
            print(f"{info.name}\tcreated {info.created_at.isoformat()}\tlast used {used}")
        return 0
    finally:
        store.close()


def cmd_hash_password(_settings, args) -> int:
    """Print a hash of a password for MS_PASSWORD_HASH (read from the terminal, or stdin when piped)."""
    from materialsearch.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: the password is empty", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def cmd_download_model(settings: Settings, _args) -> int:
    """Fetch MS_MODEL's weights into $MS_DATA_DIR/models (to prepare an offline machine or a Docker image)."""
    from materialsearch.encoders.weights import download_weights

    print(download_weights(settings))
    return 0


def cmd_make_test_model(_settings, args) -> int:
    """Write the tiny, seeded, random CN-CLIP checkpoint used by the tests."""
    from materialsearch.encoders.tiny import make_test_model

    path = make_test_model(args.file, seed=args.seed)
    print(path)
    return 0


def cmd_settings_doc(_settings, args) -> int:
    """Print the README's settings table, generated from config.py, or rewrite it in README.md (``--write``)."""
    from materialsearch import settings_doc

    if not args.write:
        print(settings_doc.markdown_table(), end="")
        return 0
    changed = settings_doc.write_readme()
    print(f"{settings_doc.README}: {'settings table updated' if changed else 'already up to date'}", file=sys.stderr)
    return 0


# Commands that run without reading the settings (so a bad setting cannot stop them).
WITHOUT_SETTINGS = {"make-test-model", "hash-password", "settings-doc"}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from materialsearch.settings_doc import argument_parser

    parser = argument_parser("python -m materialsearch", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("scan", help="scan the library once (MS_LIBRARY) and exit with a summary")
    sub.add_parser("serve", help="run the web app and REST API")
    worker = sub.add_parser(
        "worker", help="with MS_DATABASE_URL: embed the files scans plan, on this host, beside the app's own scan"
    )
    worker.add_argument("--once", action="store_true", help="exit when no planned file is left instead of waiting")
    sub.add_parser("serve-encoder", help="run the model as an encoder service for MS_ENCODER_URLS on other hosts")
    sub.add_parser(
        "ocr",
        help="read the text in indexed photos still waiting for it and exit (the server does it after each scan)",
    )
    faces = sub.add_parser(
        "faces", help="find the faces in photos still waiting for it and group them into people, then exit"
    )
    faces.add_argument("--delete", action="store_true", help="delete every stored face, person and name instead")
    search = sub.add_parser("search", help="print the best matches for a sentence")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=10)
    token = sub.add_parser("token", help="API tokens for scripts: create NAME (printed once) | list | revoke NAME")
    actions = token.add_subparsers(dest="action", required=True)
    actions.add_parser("create", help="make a token and print it (only this once)").add_argument("name")
    actions.add_parser("list", help="list token names and when they were created and last used")
    actions.add_parser("revoke", help="delete a token: it stops working at once").add_argument("name")
    sub.add_parser("hash-password", help="print a hash of a password for MS_PASSWORD_HASH")
    sub.add_parser("download-model", help="download MS_MODEL's weights into $MS_DATA_DIR/models and exit")
    make = sub.add_parser("make-test-model", help="write a tiny random CN-CLIP checkpoint for tests")
    make.add_argument("file")
    make.add_argument("--seed", type=int, default=0)
    doc = sub.add_parser("settings-doc", help="print the README's settings table (generated from config.py)")
    doc.add_argument("--write", action="store_true", help="rewrite the table in README.md instead")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handlers = {
        "scan": cmd_scan,
        "serve": cmd_serve,
        "serve-encoder": cmd_serve_encoder,
        "worker": cmd_worker,
        "ocr": cmd_ocr,
        "faces": cmd_faces,
        "search": cmd_search,
        "token": cmd_token,
        "hash-password": cmd_hash_password,
        "download-model": cmd_download_model,
        "make-test-model": cmd_make_test_model,
        "settings-doc": cmd_settings_doc,
    }
    try:
        settings = Settings.from_env() if args.command not in WITHOUT_SETTINGS else None
        return handlers[args.command](settings, args)
    except (SettingsError, ModelError, SchemaError, LabelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

"""Entry point: ``python app.py`` builds the app, starts scheduled and start-up scans, and serves it.

SIGTERM (what ``docker stop`` sends) and Ctrl-C stop it gracefully: the running scan finishes its current batch,
the index is saved, the database closed, and the process exits 0. A second signal stops it at once (a scan is
crash-safe anyway).
"""

from __future__ import annotations

import logging
import signal
import sys

from config import Settings, SettingsError

log = logging.getLogger("materialsearch.app")

# Request bodies beyond the upload limit are refused by waitress before they are read; multipart framing and
# form fields around the picture get this much room on top.
BODY_OVERHEAD_BYTES = 1024 * 1024
SERVER_THREADS = 8


def server_options(settings: Settings) -> dict:
    """waitress options: one process, bounded request sizes and idle time, optional trusted reverse proxy."""
    options = {
        "threads": SERVER_THREADS,
        "channel_timeout": settings.request_timeout,
        "max_request_body_size": settings.max_upload_bytes + BODY_OVERHEAD_BYTES,
        "max_request_header_size": 64 * 1024,
        "ident": "materialsearch",
    }
    if settings.trusted_proxy:
        options.update(
            trusted_proxy=settings.trusted_proxy,
            trusted_proxy_count=1,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
            clear_untrusted_proxy_headers=True,
        )
    return options


class _Stop(SystemExit):
    """Raised in the main thread by the signal handler to leave the server loop (waitress re-raises SystemExit)."""


def _stop(_signum: int) -> None:
    raise _Stop(0)  # waitress's loop ends on SystemExit; anywhere else it unwinds to serve()'s finally


def serve(settings: Settings | None = None) -> int:
    """Serve the app with waitress until SIGTERM/SIGINT, then shut down cleanly."""
    from waitress import create_server

    from materialsearch.auth import exposure_warning
    from materialsearch.catalog.migrations import SchemaError
    from materialsearch.encoders import ModelError
    from materialsearch.jobs.shutdown import graceful_stop
    from materialsearch.organise.tags import LabelError
    from materialsearch.web import create_app, services_of

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings or Settings.from_env()
        app = create_app(settings)
    except (SettingsError, ModelError, SchemaError, LabelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warning = exposure_warning(settings)
    if warning:
        log.warning(warning)
    services = services_of(app)
    try:
        server = create_server(app, host=settings.host, port=settings.port, **server_options(settings))
    except OSError as exc:
        services.close()
        print(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2
    with graceful_stop(_stop) as stopping:
        try:
            services.start_background()
            # The port actually bound (MS_PORT=0 picks a free one).
            print(f"materialsearch: http://{settings.host}:{server.effective_port}", flush=True)
            server.run()
        except _Stop:
            pass  # the signal came outside waitress's loop (which ends quietly on it)
        finally:
            if stopping:
                name = signal.Signals(stopping[0]).name
                log.info("%s: stopping: finishing the current scan batch and saving the index", name)
            server.close()
            server.task_dispatcher.shutdown(timeout=5)  # let requests in flight finish
            services.close()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python app.py``: serve; ``--help`` describes it and lists the settings (environment variables)."""
    from materialsearch.settings_doc import argument_parser

    argument_parser("python app.py", __doc__).parse_args(argv)
    return serve()


if __name__ == "__main__":
    from materialsearch.jobs.shutdown import exit_now

    exit_now(main())

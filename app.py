"""Entry point: ``python app.py`` builds the app, starts a first scan in the background and serves it."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from config import Settings, SettingsError

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


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def serve(settings: Settings | None = None) -> int:
    """Serve the app with waitress (one process, so there is one scanner and one database writer)."""
    from waitress import create_server

    from materialsearch.auth import exposure_warning
    from materialsearch.model import ModelError
    from materialsearch.web import create_app, services_of

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings or Settings.from_env()
        app = create_app(settings)
    except (SettingsError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warning = exposure_warning(settings)
    if warning:
        logging.warning(warning)
    services = services_of(app)
    try:
        server = create_server(app, host=settings.host, port=settings.port, **server_options(settings))
    except OSError as exc:
        services.close()
        print(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2
    if settings.library:
        services.scans.start()
    else:
        logging.warning("MS_LIBRARY is not set: nothing will be indexed until it is")
    if threading.current_thread() is threading.main_thread():
        # `docker stop` sends SIGTERM: stop like Ctrl+C, so the scan stops after its batch and the index is saved.
        signal.signal(signal.SIGTERM, _interrupt)
    # The port actually bound (MS_PORT=0 picks a free one).
    print(f"materialsearch: http://{settings.host}:{server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve())

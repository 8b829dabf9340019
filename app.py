"""Entry point: ``python app.py`` builds the app, starts a first scan in the background and serves it."""

from __future__ import annotations

import logging
import sys

from config import Settings, SettingsError


def serve(settings: Settings | None = None) -> int:
    """Serve the app with waitress (one process, so there is one scanner and one database writer)."""
    from waitress import serve as waitress_serve

    from materialsearch.model import ModelError
    from materialsearch.web import create_app, services_of

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings or Settings.from_env()
        app = create_app(settings)
    except (SettingsError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    services = services_of(app)
    if settings.library:
        services.scans.start()
    else:
        logging.warning("MS_LIBRARY is not set: nothing will be indexed until it is")
    print(f"materialsearch: http://{settings.host}:{settings.port}", flush=True)
    try:
        waitress_serve(app, host=settings.host, port=settings.port, threads=8, channel_timeout=120)
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve())

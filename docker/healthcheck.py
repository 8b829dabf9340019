"""Docker HEALTHCHECK: exit 0 when the server in this container answers GET /healthz with {"ok": true}, else 1.

Uses only the standard library and ignores proxy variables (the check is local).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

TIMEOUT_S = 8.0
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "*"}


def health_url(environ=os.environ) -> str:
    """Where this container's server answers: MS_HOST (or loopback for a wildcard) and MS_PORT."""
    host = environ.get("MS_HOST", "127.0.0.1").strip()
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{environ.get('MS_PORT', '5000').strip()}/healthz"


def main() -> int:
    """Probe once; print why on failure."""
    url = health_url()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_S) as response:
            body = json.loads(response.read().decode("utf-8"))
            status = response.status
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200 or body.get("ok") is not True:
        print(f"unhealthy: {url} answered {status} {body!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Search latency under load, with and without a scan running, against the real server over HTTP.

Starts ``python app.py`` (waitress, the product's entry point) as a subprocess on a free port, lets its start-up
scan index ``--photos`` pictures, then runs ``--searchers`` threads (default 16), each sending text searches
(``GET /api/search?q=...&limit=20``, mixed Chinese and English sentences) back to back over a keep-alive
connection:

1. **idle**: for ``--duration`` seconds, nothing else running;
2. **scanning**: ``--extra`` new pictures appear in the library and ``POST /api/scan`` starts a scan; the searchers
   run until it finishes (or ``--max-scan`` seconds, after which it is cancelled).

Every response that is not a 200 with a JSON body, and every connection error, counts as an error. It reports
p50/p90/p99/max latency, searches/s and errors for each phase, the scan's own rate while searched, and whether the
number of searchable items grew during the scan. The server is stopped with SIGTERM and must exit 0.

Inputs are made once and cached (``--cache``, default ``$MS_BENCH_CACHE`` or /tmp/ms-bench-cache).

    .venv/bin/python bench/bench_concurrent_search.py                     # tiny model, 400 + 400 pictures
    .venv/bin/python bench/bench_concurrent_search.py --model vit-b-16 --photos 64 --extra 64

Prints a table and writes ``<out>/bench_concurrent_search.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_concurrent_search.py): import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import QUERIES, REPO, log

INPUT_VERSION = 2  # bump when the pictures change, so cached ones are remade


def make_pictures(folder: Path, count: int, seed: int) -> None:
    """``count`` distinct 1024x768 JPEGs of smooth random colour fields (cheap to make, realistic to decode)."""
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((1024, 768), Image.Resampling.BICUBIC)
        image.save(folder / f"P{seed:02d}_{i:05d}.jpg", quality=88)


def ensure_inputs(cache: Path, photos: int, extra: int) -> tuple[Path, Path]:
    """(library, extra): ``photos`` pictures indexed before measuring and ``extra`` added during it (cached)."""

    def make(root: Path) -> None:
        log(f"making {photos} + {extra} pictures ...")
        make_pictures(root / "library", photos, seed=1)
        make_pictures(root / "extra", extra, seed=2)

    root = common.cached_dir(cache / f"concurrent-v{INPUT_VERSION}-{photos}-{extra}", make)
    return root / "library", root / "extra"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, timeout: float = 60.0) -> tuple[int, dict]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            self.conn.request(method, path)
            response = self.conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if body else {}
        except Exception:
            self.conn.close()
            self.conn = None
            raise


def status(port: int) -> dict:
    return Client(port).request("GET", "/api/status")[1]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def run_phase(port: int, searchers: int, until) -> dict:
    """Run ``searchers`` threads of back-to-back searches until ``until()`` is true; latencies and errors."""
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    totals: list[int] = []
    lock = threading.Lock()

    def searcher(n: int) -> None:
        client = Client(port)
        i = n
        while not stop.is_set():
            query = urllib.parse.quote(QUERIES[i % len(QUERIES)])
            i += 1
            started = time.perf_counter()
            try:
                code, body = client.request("GET", f"/api/search?q={query}&limit=20")
                elapsed = time.perf_counter() - started
                with lock:
                    if code == 200 and "results" in body:
                        latencies.append(elapsed)
                        totals.append(body["total"])
                    else:
                        errors.append(f"HTTP {code}: {str(body)[:200]}")
            except Exception as exc:  # noqa: BLE001 - every failure of a search is counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=searcher, args=(n,), daemon=True) for n in range(searchers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while not until():
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(120)
    seconds = time.monotonic() - started
    summary = common.percentiles([x * 1000 for x in latencies], (50, 90, 99), digits=1) if latencies else {}
    return {
        "searchers": searchers,
        "seconds": round(seconds, 2),
        "searches": len(latencies),
        "searches_per_s": round(len(latencies) / seconds, 1) if seconds else None,
        "errors": len(errors),
        "error_samples": errors[:5],
        **{f"{key}_ms": summary.get(key) for key in ("p50", "p90", "p99", "max", "mean")},
        "total_first": totals[0] if totals else None,
        "total_last": totals[-1] if totals else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny (default), vit-b-16, or a checkpoint path")
    parser.add_argument("--photos", type=int, default=400, help="pictures indexed before measuring")
    parser.add_argument("--extra", type=int, default=400, help="pictures added for the scan measured under load")
    parser.add_argument("--searchers", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of the idle phase")
    parser.add_argument("--max-scan", type=float, default=120.0, help="longest the scanning phase may last")
    common.add_place_arguments(parser, "bench_concurrent_search.json")
    args = parser.parse_args(argv)

    cache = Path(args.cache)
    model_path, model_what = common.ensure_model(cache, args.model)
    library, extra = ensure_inputs(cache, args.photos, args.extra)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ms-bench-concurrent-") as work:
        work = Path(work)
        added = work / "added"
        added.mkdir()
        env = dict(os.environ)  # the caller's MS_* tuning applies, except for these:
        env.update(
            {
                "MS_LIBRARY": f"{library}{os.pathsep}{added}",
                "MS_DATA_DIR": str(work / "data"),
                "MS_MODEL": str(model_path),
                "MS_PORT": str(port),
                "MS_HOST": "127.0.0.1",
                "MS_SCAN_ON_START": "true",
                "MS_SCAN_CRON": "",
                "MS_SCAN_INTERVAL": "0",
                "MS_SCAN_WINDOW": "",
            }
        )
        server_log = open(work / "server.log", "w")  # noqa: SIM115 - open for the server's whole life
        server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=server_log, stderr=server_log)
        try:
            wait_until(lambda: Client(port).request("GET", "/healthz")[0] == 200, 180, "the server to start")
            log("server up; waiting for the start-up scan ...")
            wait_until(lambda: (s := status(port)["scan"])["state"] == "idle" and s["last"], 3600, "the first scan")
            indexed = status(port)["counts"]["images"]
            log(f"{indexed} pictures indexed; warming up")
            run_phase(port, 2, (lambda end: lambda: time.monotonic() > end)(time.monotonic() + 2))

            log(f"idle phase: {args.searchers} searchers for {args.duration}s")
            idle = run_phase(
                port, args.searchers, (lambda end: lambda: time.monotonic() > end)(time.monotonic() + args.duration)
            )

            for picture in sorted(extra.glob("*.jpg")):
                os.link(picture, added / picture.name)
            code, body = Client(port).request("POST", "/api/scan")
            if code != 202:
                raise SystemExit(f"POST /api/scan answered {code}: {body}")
            log(f"scanning phase: {args.extra} new pictures, {args.searchers} searchers until the scan ends")
            deadline = time.monotonic() + args.max_scan
            samples: list[dict] = []

            def scan_over() -> bool:
                scan = status(port)["scan"]
                if scan["progress"]:
                    samples.append(scan["progress"])
                return scan["state"] == "idle" or time.monotonic() > deadline

            scanning = run_phase(port, args.searchers, scan_over)
            scan = status(port)["scan"]
            if scan["state"] != "idle":
                Client(port).request("POST", "/api/scan/cancel")
                wait_until(lambda: status(port)["scan"]["state"] == "idle", 300, "the cancelled scan to stop")
                scan = status(port)["scan"]
            last = scan["last"]
            rates = [s["rate"] for s in samples if s.get("rate")]
            scanning["scan"] = {
                "summary": last["summary"],
                "added": last["stats"]["added"] if last["stats"] else None,
                "seconds": last["seconds"],
                "items_per_s": round(last["stats"]["added"] / last["seconds"], 2) if last["stats"] else None,
                "reported_rate_median": round(statistics.median(rates), 2) if rates else None,
                "cancelled": last["cancelled"],
            }
            server.send_signal(signal.SIGTERM)
            exit_code = server.wait(120)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            server_log.close()

    results = {
        "model": f"{args.model}: {model_what}",
        "pictures_indexed_before": indexed,
        "searchers": args.searchers,
        "idle": idle,
        "scanning": scanning,
        "server_exit_code_on_sigterm": exit_code,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),  # other processes' load makes the numbers noisier
    }
    common.write_report(args.out, "bench_concurrent_search.json", results)
    print(f"model {results['model']}; {indexed} pictures indexed; {args.searchers} concurrent searchers over HTTP")
    keys = ("searches", "searches_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors")
    rows = [(name, *(phase[k] for k in keys)) for name, phase in (("idle", idle), ("scanning", scanning))]
    header = ("phase", "searches", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors")
    print("\n".join(common.text_table(header, rows, "<>>>>>>>")))
    print(
        f"scan under load: {scanning['scan']['summary']} ({scanning['scan']['items_per_s']} items/s); "
        f"searchable items grew {scanning['total_first']} -> {scanning['total_last']} during it; "
        f"server exit code on SIGTERM: {exit_code}; load average {results['load_average_at_end'][0]:.1f}"
    )
    return 0 if idle["errors"] == scanning["errors"] == 0 and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Query latency over HTTP, per backend choice: what a user waits for a text or an image search.

For each backend choice (``--configs``; default ``auto`` — the product's own measured choice, per use — then torch
fp32, onnx int8 and onnx fp32 forced through MS_BACKEND/MS_PRECISION), it starts the real server (``python app.py``,
waitress) on a fresh data dir over a library of ``--photos`` generated 12 MP JPEGs, waits until the start-up scan
and the OCR pass are over, and then, one request at a time over a keep-alive connection:

- ``--text`` text searches ``GET /api/search?q=...&limit=20``, every sentence new (Chinese and English, no dates
  or places, so the model encodes every one: the server keeps recent sentences' vectors and would answer a repeat
  without the model), after ``--warmup`` untimed ones;
- ``--images`` image searches ``POST /api/search`` (multipart ``image``) with one of the library's JPEGs and a real
  12 MP iPhone HEIC of the media set (decode + encode + search + lookup; the server keeps nothing of a picture).

It reports p50 / p99 / max ms per kind, what ran each use (the status's reason: for ``auto`` the scan's backend
and each query use's own, with every candidate's batch-1 timings from the stored decision), the load average
before and after each config (the machine may be shared), and the server's first-start cost (ONNX export and
``auto``'s measuring). Prints a table, writes ``<out>/bench_queries.json``.

    .venv/bin/python bench/bench_queries.py                         # ViT-B-16 (random weights), 4 configs
    .venv/bin/python bench/bench_queries.py --configs auto --wait-quiet 120
    .venv/bin/python bench/bench_queries.py --smoke --out /tmp/b    # tiny model, 2 photos (a test runs it)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_queries.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.bench_concurrent_search import free_port, wait_until
from bench.common import QUERIES, REPO, log, percentiles

DEFAULT_CONFIGS = ("auto", "torch:fp32", "onnx:int8", "onnx:fp32")
HEIC_QUERY = "heic_iphone12pro_orient6_irot_gps.heic"  # a real 12 MP iPhone photo, with its embedded thumbnail
# Words added to the bench's sentences so that every query is new (none is a date, a place or a tag name).
EXTRA_WORDS = (
    "在黄昏",
    "with a red umbrella",
    "下雨天",
    "next to an old bicycle",
    "很多人",
    "under soft light",
    "小猫和小狗",
    "seen from above",
    "有一点模糊",
    "close up",
    "远处的山",
    "and a wooden fence",
)


def new_sentences(count: int) -> list[str]:
    """``count`` distinct sentences: the bench's QUERIES, each with other words added in turn."""
    if count > len(QUERIES) * (len(EXTRA_WORDS) + 1):
        raise SystemExit(f"at most {len(QUERIES) * (len(EXTRA_WORDS) + 1)} distinct sentences")
    sentences = []
    for i in range(count):
        base, turn = QUERIES[i % len(QUERIES)], i // len(QUERIES)
        sentences.append(base if turn == 0 else f"{base} {EXTRA_WORDS[turn - 1]}")
    return sentences


class Client:
    """One keep-alive HTTP connection to the server; each request's milliseconds, as the client sees them."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        return response.status, (json.loads(data) if data else {}), elapsed_ms

    def close(self) -> None:
        self.conn.close()


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, dict]:
    """A multipart/form-data body holding one file field."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(body))}


def server_env(config: str, library: Path, data_dir: Path, model: Path, port: int) -> dict:
    """The server's environment: the caller's MS_* tuning, except for what this benchmark decides."""
    env = {k: v for k, v in os.environ.items() if k not in ("MS_BACKEND", "MS_PRECISION")}
    backend, _, precision = config.partition(":")
    env.update(
        {
            "MS_LIBRARY": str(library),
            "MS_DATA_DIR": str(data_dir),
            "MS_MODEL": str(model),
            "MS_PORT": str(port),
            "MS_HOST": "127.0.0.1",
            "MS_SCAN_ON_START": "true",
            "MS_SCAN_CRON": "",
            "MS_SCAN_INTERVAL": "0",
            "MS_SCAN_WINDOW": "",
            "MS_FACES": "false",  # a background pass no query needs; the OCR pass runs (q= searches its text)
            "MS_BACKEND": backend,
            "MS_PRECISION": precision or "auto",
        }
    )
    return env


def measure_config(config: str, args, model: Path, library: Path, pictures: dict[str, bytes], dirs) -> dict:
    """Start the server with ``config``, wait for its scan and OCR pass, then time the queries."""
    port = free_port()
    data_dir = dirs.new()
    server_log_path = data_dir / "server.log"
    load_before = os.getloadavg()
    started = time.perf_counter()
    with open(server_log_path, "w") as server_log:
        env = server_env(config, library, data_dir, model, port)
        server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=server_log, stderr=server_log)
        try:
            status = _wait_ready(port, server, server_log_path)
            ready_s = time.perf_counter() - started
            if args.wait_quiet:
                common.wait_quiet(args.wait_quiet)
            result = {"config": config, "ready_s": round(ready_s, 1), "load_before": load_before}
            result.update(_backend_facts(status))
            result["indexed"] = status["counts"]["images"]
            client = Client(port)
            try:
                result["text_ms"], result["text_sentences"] = _text_queries(client, args)
                result["image_ms"] = _image_queries(client, args, pictures)
            finally:
                client.close()
            result["load_after"] = os.getloadavg()
            result["query_timings"] = _query_timings(data_dir)
            server.send_signal(signal.SIGTERM)
            result["server_exit_code"] = server.wait(120)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    return result


def _status(port: int) -> dict:
    client = Client(port)
    try:
        return client.request("GET", "/api/status")[1]
    finally:
        client.close()


def _wait_ready(port: int, server, log_path: Path) -> dict:
    """The status once the server answers and its start-up scan and OCR pass are over."""

    def up() -> bool:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}); its log:\n{log_path.read_text()[-3000:]}")
        client = Client(port)
        try:
            return client.request("GET", "/healthz")[0] == 200
        finally:
            client.close()

    wait_until(up, 900, "the server to start (the first start with auto measures the backends)")

    def settled():
        status = _status(port)
        scan, ocr = status["scan"], status["ocr"]
        return status if scan["state"] == "idle" and scan["last"] and ocr["state"] == "idle" else None

    return wait_until(settled, 3600, "the start-up scan and the OCR pass")


def _backend_facts(status: dict) -> dict:
    model = status["model"]
    choice = model["choice"]
    return {
        "scan_backend": f"{model['backend']} {model['precision']}",
        "reason": choice["reason"],
        "measure_cost_s": choice["measure_cost_s"],
    }


def _query_timings(data_dir: Path) -> list[dict]:
    """``auto``'s batch-1 timings of every candidate per query use, from the decision its first start stored
    (none where the backend was forced)."""
    try:
        record = json.loads((data_dir / "backend-choice.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return record.get("query_timings", [])


def _text_queries(client: Client, args) -> tuple[dict, list[str]]:
    sentences = new_sentences(args.warmup + args.text)
    samples = []
    for i, sentence in enumerate(sentences):
        code, body, ms = client.request("GET", "/api/search?" + urllib.parse.urlencode({"q": sentence, "limit": 20}))
        if code != 200 or "results" not in body:
            raise SystemExit(f"GET /api/search?q={sentence} answered {code}: {str(body)[:300]}")
        if i >= args.warmup:
            samples.append(ms)
    return _summary(samples), sentences[args.warmup :]


def _image_queries(client: Client, args, pictures: dict[str, bytes]) -> dict:
    out = {}
    for label, data in pictures.items():
        body, headers = multipart("image", label, data)
        samples = []
        for i in range(args.warmup + args.images):
            code, answer, ms = client.request("POST", "/api/search", body, headers)
            if code != 200 or "results" not in answer:
                raise SystemExit(f"POST /api/search with {label} answered {code}: {str(answer)[:300]}")
            if i >= args.warmup:
                samples.append(ms)
        out[label] = _summary(samples)
    return out


def _summary(samples: list[float]) -> dict:
    return {**percentiles(samples, (50, 99), 1), "max": round(max(samples), 1), "n": len(samples)}


def render(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"Query latency over HTTP, one request at a time - {report['when']}",
        f"model: {report['model']}; machine: {machine['nproc']} cores, {machine['cpu']}; library: "
        f"{report['photos']} {report['size']} JPEGs; text: new sentences each time; image queries: one of those "
        "JPEGs and a real 12 MP iPhone HEIC",
        "",
    ]
    header = ("config", "text p50", "text p99", "text max", "JPEG p50", "JPEG p99", "HEIC p50", "HEIC p99", "load")
    rows = []
    for row in report["rows"]:
        images = row["image_ms"]
        cells = [row["config"], row["text_ms"]["p50"], row["text_ms"]["p99"], row["text_ms"]["max"]]
        for label in ("jpeg", "heic"):
            cells += [images[label]["p50"], images[label]["p99"]] if label in images else ["-", "-"]
        cells.append(f"{row['load_before'][0]:.1f}/{row['load_after'][0]:.1f}")
        rows.append(cells)
    lines += common.text_table(header, rows, "<>>>>>>>>")
    lines.append("ms as the client sees them (GET /api/search?q=, POST /api/search with the picture); load: 1-min")
    lines.append("load average before the server started / after the queries")
    for row in report["rows"]:
        lines.append(f"{row['config']}: scan {row['scan_backend']}; {row['reason']}")
        for timing in row["query_timings"]:
            ms = "-" if timing["ms"] is None else f"{timing['ms']:.1f} ms"
            cosine = "-" if timing["cosine"] is None else f"{timing['cosine']:.5f}"
            lines.append(
                f"  {timing['use']:<15} {timing['backend']:>5} {timing['precision']:<4} {ms:>10} at batch 1, "
                f"cosine {cosine} {timing['note']}"
            )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default="vit-b-16", help="vit-b-16 (default, random weights), tiny, or a path")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="auto and/or backend:precision list")
    parser.add_argument("--photos", type=int, default=24, help="12 MP JPEGs in the library (default 24)")
    parser.add_argument("--text", type=int, default=60, help="timed text searches per config (default 60)")
    parser.add_argument("--images", type=int, default=10, help="timed image searches per picture (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed searches of each kind first (default 2)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S", help="wait for an idle machine first")
    common.add_place_arguments(parser, "bench_queries.json", media=True)
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 small photos, a few queries")
    args = parser.parse_args(argv)
    args.width, args.height = 4032, 3024
    if args.smoke:
        args.model, args.photos, args.text, args.images, args.warmup = "tiny", 2, 4, 2, 1
        args.width, args.height = 1152, 864
        args.configs = args.configs if argv and "--configs" in argv else "auto,onnx:int8"
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cache = Path(args.cache).expanduser().resolve()
    model, model_desc = common.ensure_model(cache, args.model)
    library = common.ensure_images(cache, args.photos, args.width, args.height, 90, 6.0, args.media)
    pictures = {"jpeg": next(iter(sorted(library.glob("*.jpg")))).read_bytes()}
    heic = Path(args.media) / HEIC_QUERY
    if heic.is_file():
        pictures["heic"] = heic.read_bytes()
    report = {
        "when": common.now_iso(),
        "smoke": args.smoke,
        "machine": common.machine_facts(),
        "model": f"{args.model}: {model_desc}",
        "photos": args.photos,
        "size": f"{args.width}x{args.height}",
        "rows": [],
    }
    # ONNX exports are made once (in the cache) and shared; each config's data dir is fresh, so ``auto`` measures
    # as at a first start.
    dirs = common.DataDirs("ms-bench-queries-", shared_models=cache / "data-models")
    try:
        for config in args.configs:
            log(f"{config}: starting the server ...")
            row = measure_config(config, args, model, library, pictures, dirs)
            report["rows"].append(row)
            log(
                f"{config}: text p50 {row['text_ms']['p50']} ms p99 {row['text_ms']['p99']} ms; "
                + ", ".join(f"{k} p50 {v['p50']} ms" for k, v in row["image_ms"].items())
            )
    finally:
        dirs.cleanup()
    common.publish(args.out, "bench_queries.json", report, render(report))
    return 0 if all(row["server_exit_code"] == 0 for row in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())

"""OCR cost per photo (pre-pass alone and full) and ``text=`` search latency at 100k items with text.

    python -m bench.bench_ocr                          # 16 x 12 MP JPEGs, the shared text photos, 100k items
    python -m bench.bench_ocr --smoke --out /tmp/b     # 2 photos, 2k items (seconds)

Per photo it times ``OcrEngine.read_file`` (decode small + pre-pass, and only for text: decode at OCR size +
detection + recognition), in wall-clock and in this process's CPU seconds (the second is what the photo costs on
an idle core; on a shared machine the first follows the others' load). Text-free photos are the generated
phone-like 12 MP JPEGs (those derived from ``jpg_orient1.jpg`` carry its "top/left/right/bottom" labels, so the
pre-pass rightly sends them on); text-heavy photos are the ``ocr_*`` ones of the media set, with the share of the
MANIFEST's visible phrases found. The index part fills a ``TextIndex`` on a temp SQLite file with synthetic lines
(half Chinese, half English from a Zipf vocabulary) and times queries by kind.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_ocr.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product

REPORT = "bench_ocr.json"


def time_photo(engine, data: bytes, max_pixels: int) -> dict:
    """One photo through ``read_file``: wall and CPU milliseconds, the pre-pass verdict and the lines read."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = engine.read_file(data, max_pixels=max_pixels)
    return {
        "wall_ms": round((time.perf_counter() - wall0) * 1000, 1),
        "cpu_ms": round((time.process_time() - cpu0) * 1000, 1),
        "prepass_wall_ms": round(result.prepass_seconds * 1000, 1),
        "full_wall_ms": round(result.full_seconds * 1000, 1),
        "has_text": result.has_text,
        "lines": [line.text for line in result.lines],
    }


def time_prepass_steps(engine, data: bytes, max_pixels: int) -> dict:
    """CPU milliseconds of the pre-pass's two steps: the small decode, and the detector on the decoded picture
    (what the pre-pass would cost on a picture the embedding pass already decoded)."""
    cpu0 = time.process_time()
    small = product.decode_for_prepass(data, engine.config, max_pixels=max_pixels)
    cpu1 = time.process_time()
    engine.has_text(small)
    cpu2 = time.process_time()
    return {"decode_cpu_ms": round((cpu1 - cpu0) * 1000, 1), "detect_cpu_ms": round((cpu2 - cpu1) * 1000, 1)}


def text_photos(media: Path) -> list[tuple[Path, list[str]]]:
    with open(media / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(media / r["file"], common.visible_phrases(r["notes"])) for r in rows if r["file"].startswith("ocr_")]


def synthetic_lines(rng: random.Random, vocabulary: list[str], weights: list[float]) -> list[str]:
    """1–8 lines: half Chinese (random common characters), half English words (Zipf) with a number."""
    lines = []
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.5:
            lines.append("".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(rng.randint(4, 16))))
        else:
            lines.append(" ".join(rng.choices(vocabulary, weights, k=rng.randint(2, 6))) + f" {rng.randint(0, 99999)}")
    return lines


def measure_index(items: int, rounds: int) -> dict:
    """Fill a TextIndex with ``items`` items of synthetic text, then time each query kind ``rounds`` times."""
    rng = random.Random(0)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(5000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    folder = tempfile.mkdtemp(prefix="bench-ocr-")
    connection = sqlite3.connect(Path(folder) / "catalog.db")
    index = product.TextIndex(connection, "ocr_text")
    index.create()
    box = (0.1, 0.1, 0.5, 0.2)
    started = time.perf_counter()
    batch = []
    for item_id in range(items):
        batch.append((item_id, [product.OcrLine(t, box, 0.9) for t in synthetic_lines(rng, vocabulary, weights)]))
        if len(batch) == 1000:
            with connection:
                index.replace_many(batch)
            batch = []
    with connection:
        index.replace_many(batch)
        index.replace(items, [product.OcrLine("诺贝尔化学奖得主", box, 0.99)])
    fill_s = time.perf_counter() - started
    lines = connection.execute(f"SELECT count(*) FROM {index.lines_table}").fetchone()[0]
    queries = {
        "CJK phrase (6 chars, 1 item)": "诺贝尔化学奖",
        "CJK 2 chars": "化学",
        "CJK 1 char": "奖",
        "English word (rare)": vocabulary[2000],
        "English word (most common: a third of the lines)": vocabulary[0],
        "English two words": f"{vocabulary[1]} {vocabulary[2]}",
        "English 2 letters": vocabulary[3][:2],
        "no match": "nosuchwordanywhere",
    }
    results = {}
    for kind, query in queries.items():
        samples = []
        for _ in range(rounds):
            wall0 = time.perf_counter()
            hits = index.search(query, 20)
            samples.append((time.perf_counter() - wall0) * 1000)
        results[kind] = {"query": query, "hits": len(hits), **common.percentiles(samples)}
    connection.close()
    return {"items": items, "lines": lines, "fill_s": round(fill_s, 1), "queries": results}


def measure_indexing(args, cache: Path, free: list[Path], media: Path) -> dict:
    """The OCR's share of indexing on a phone-like library: scan with MS_OCR off, scan with it on (the scan then
    takes the pre-pass verdict on its own decode), then the OCR pass; each on a fresh data dir, with the same
    library, model and forced backend. Share = (scan on − scan off + OCR pass) / scan off, in wall and in CPU."""
    library = Path(tempfile.mkdtemp(prefix="bench-ocr-library-"))
    texts = [path for path, _ in text_photos(media)]
    with_text = max(1, round(args.text_share * len(free) / (1 - args.text_share)))
    for number, path in enumerate(free):
        common.link_or_copy(path, library / f"free_{number:03}.jpg")
    for number in range(with_text):  # copies of the shared text photos, each read like any other photo
        source = texts[number % len(texts)]
        common.link_or_copy(source, library / f"text_{number:03}{source.suffix}")
    checkpoint, model_desc = common.ensure_model(cache, args.model)
    data_dirs = common.DataDirs("ms-bench-ocr-", shared_models=cache / "data-models")
    values = {
        "library": str(library),
        "model": str(checkpoint),
        "backend": args.backend,
        "precision": args.precision,
        "ocr_prelook": args.prelook,
    }
    if not args.shipped_tags:
        # Random weights tag photos at random, and a text tag sends a photo to the full OCR pass: one label that
        # names no text keeps the measurement to what the pre-pass decides (see --shipped-tags).
        labels = library.parent / f"{library.name}-tags.tsv"
        labels.write_text("beach\t海滩\tbeach\n", encoding="utf-8")
        values |= {"tags_file": str(labels), "tags_replace": True}
    runs: list[dict] = []
    try:
        for repeat in range(args.repeat):  # off and on alternate, so a disturbance falls on both alike
            for ocr in (False, True):
                runs.append(scan_once(values, ocr, data_dirs, len(free) + with_text, f"{repeat + 1}"))
    finally:
        data_dirs.cleanup()
        shutil.rmtree(library, ignore_errors=True)
        library.parent.joinpath(f"{library.name}-tags.tsv").unlink(missing_ok=True)

    def median(ocr: bool, step: str, key: str) -> float:
        return statistics.median(run[step][key] for run in runs if run["ocr"] == ocr)

    share = {}
    for key, name in (("wall_s", "share_wall"), ("own_cpu_s", "share_cpu")):
        added = median(True, "scan", key) - median(False, "scan", key) + median(True, "pass", key)
        share[name] = round(added / median(False, "scan", key), 3)
    last = runs[-1]
    return {
        "photos": len(free) + with_text,
        "with_text": with_text,
        "model": f"{model_desc}, {args.backend} {args.precision}",
        "ocr_prelook": args.prelook,
        "runs": runs,
        "medians": {
            "scan, MS_OCR=off": {key: median(False, "scan", key) for key in ("wall_s", "own_cpu_s")},
            "scan, MS_OCR=on": {key: median(True, "scan", key) for key in ("wall_s", "own_cpu_s")},
            "OCR pass": {key: median(True, "pass", key) for key in ("wall_s", "own_cpu_s")},
        },
        "ocr_read": last["read"],
        "ocr_found_text": last["with_text"],
        **share,
    }


def scan_once(values: dict, ocr: bool, data_dirs, photos: int, label: str) -> dict:
    """One scan of the library on a fresh data dir (and, with OCR on, the OCR pass after it), timed."""
    settings = product.Settings.from_env(environ={}, **values, ocr=ocr, data_dir=str(data_dirs.new()))
    services = product.Services(settings)
    phases: dict = {}
    try:
        services.ocr_engine.load()  # loaded once per process; not part of a library's time
        with common.Phase("scan", phases):
            stats = services.scans.run()
        if stats.added != photos:
            raise SystemExit(f"the scan indexed {stats.added} of {photos} photos")
        read = None
        if ocr:
            services.tagger.refresh()  # tags follow every scan, OCR or not: their time is not the OCR's
            with common.Phase("pass", phases):
                read = services.ocr.run()
    finally:
        services.close()
    common.log(f"run {label}, MS_OCR={'on' if ocr else 'off'}: scan {phases['scan']['wall_s']:.2f} s")
    return {
        "ocr": ocr,
        **phases,
        "read": read.read if read else 0,
        "with_text": read.with_text if read else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_place_arguments(parser, REPORT, media=True)
    parser.add_argument("--photos", type=int, default=16, help="generated 12 MP text-free JPEGs (default 16)")
    parser.add_argument("--items", type=int, default=100_000, help="items with text in the index (default 100k)")
    parser.add_argument("--rounds", type=int, default=20, help="timed runs per query kind (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model (default 1)")
    parser.add_argument(
        "--text-share", type=float, default=0.15, help="share of photos with text in the indexing library (0.15)"
    )
    parser.add_argument("--model", default="vit-b-16", help="model of the indexing part (default vit-b-16, random)")
    parser.add_argument("--backend", default="onnx", help="MS_BACKEND of the indexing part (default onnx)")
    parser.add_argument("--precision", default="int8", help="MS_PRECISION of the indexing part (default int8)")
    parser.add_argument(
        "--prelook", default="auto", choices=("auto", "scan", "pass"), help="MS_OCR_PRELOOK (default auto)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="scans per MS_OCR setting, alternating (default 3)")
    parser.add_argument(
        "--shipped-tags",
        action="store_true",
        help="keep the shipped labels in the indexing part (photos tagged as showing text are read in full; with "
        "random weights those tags are random)",
    )
    parser.add_argument("--no-indexing", action="store_true", help="leave out the OCR share of indexing")
    parser.add_argument("--smoke", action="store_true", help="2 photos, 2k items, 3 rounds, tiny model")
    args = parser.parse_args()
    if args.smoke:
        args.photos, args.items, args.rounds, args.model, args.backend = 2, 2000, 3, "tiny", "torch"
        args.repeat = 1
        args.precision = "fp32"
    media = Path(args.media)
    max_pixels = 200_000_000
    product.configure_pillow()
    phases: dict = {}
    with common.Phase("load", phases):
        engine = product.OcrEngine(product.OcrConfig(threads=args.threads)).load()
    folder = common.ensure_images(Path(args.cache), args.photos, 4032, 3024, 90, 6.0, str(media))
    plain = []
    with common.Phase("text-free photos", phases):
        for path in sorted(folder.glob("*.jpg"))[: args.photos]:
            data = path.read_bytes()
            plain.append(
                {
                    "file": path.name,
                    **time_photo(engine, data, max_pixels),
                    **time_prepass_steps(engine, data, max_pixels),
                }
            )
    heavy = []
    with common.Phase("text photos", phases):
        for path, phrases in text_photos(media):
            timing = time_photo(engine, path.read_bytes(), max_pixels)
            text = "".join(product.normalize_text(line) for line in timing["lines"])
            found = [p for p in phrases if product.normalize_text(p) in text]
            heavy.append({"file": path.name, **timing, "phrases": phrases, "found": found})
    with common.Phase("text index", phases):
        index = measure_index(args.items, args.rounds)
    indexing = None
    if not args.no_indexing:
        # Text-free means what the pre-pass said: generated photos that carry a label count as text photos.
        free = [folder / photo["file"] for photo in plain if not photo["has_text"]]
        indexing = measure_indexing(args, Path(args.cache).expanduser().resolve(), free, media)

    skipped = [p for p in plain if not p["has_text"]]
    report = {
        "when": common.now_iso(),
        "machine": {"cpu": common.cpu_model(), "threads": args.threads},
        "config": vars(args),
        "phases": phases,
        "text_free": plain,
        "text_heavy": heavy,
        "index": index,
        "indexing": indexing,
    }

    def row(label: str, photos: list[dict]) -> list[object]:
        if not photos:
            return [label, 0, "-", "-", "-"]
        cpu = [p["cpu_ms"] for p in photos]
        wall = [p["wall_ms"] for p in photos]
        return [
            label,
            len(photos),
            f"{statistics.median(cpu):.0f}",
            f"{max(cpu):.0f}",
            f"{statistics.median(wall):.0f}",
        ]

    phrases = sum(len(p["phrases"]) for p in heavy)
    found = sum(len(p["found"]) for p in heavy)
    lines = [f"OCR per photo, {args.threads} ONNX thread(s), CPU: {common.cpu_model()}", ""]
    lines += common.text_table(
        ["photos", "n", "CPU ms p50", "CPU ms max", "wall ms p50"],
        [
            row("generated 12 MP, pre-pass says no text", skipped),
            row("generated 12 MP, pre-pass says text", [p for p in plain if p["has_text"]]),
            row("ocr_* text photos (pre-pass + full)", heavy),
        ],
        "<>>>>",
    )
    if skipped:
        decode = statistics.median(p["decode_cpu_ms"] for p in skipped)
        detect = statistics.median(p["detect_cpu_ms"] for p in skipped)
        lines += [
            "",
            f"pre-pass on a text-free 12 MP photo, CPU ms p50: small decode {decode:.0f} + detector {detect:.0f}",
        ]
    lines += ["", f"pre-pass found text in {sum(p['has_text'] for p in heavy)}/{len(heavy)} text photos;"]
    lines += [f"MANIFEST phrases read: {found}/{phrases}", ""]
    lines += [f"text index: {index['items']} items, {index['lines']} lines (filled in {index['fill_s']} s)"]
    lines += common.text_table(
        ["query", "hits", "p50 ms", "p99 ms"],
        [[kind, q["hits"], q["p50"], q["p99"]] for kind, q in index["queries"].items()],
        "<>>>",
    )
    if indexing:
        ph = indexing["medians"]
        share = indexing["with_text"] / indexing["photos"]
        lines += ["", f"OCR's share of indexing: {indexing['photos']} photos, {indexing['with_text']} with text"]
        lines[-1] += f" ({share:.0%}),"
        lines += [
            f"model {indexing['model']}; MS_OCR_PRELOOK={indexing['ocr_prelook']}; "
            f"medians of {args.repeat} alternating runs"
        ]
        lines += common.text_table(
            ["step", "wall s", "CPU s"],
            [[name, ph[name]["wall_s"], ph[name]["own_cpu_s"]] for name in ph],
            "<>>",
        )
        lines += [
            f"OCR adds {indexing['share_wall']:.0%} to indexing wall time ({indexing['share_cpu']:.0%} in CPU);"
            f" the pass read {indexing['ocr_read']} photos, {indexing['ocr_found_text']} with text"
        ]
    common.publish(args.out, REPORT, report, "\n".join(lines))


if __name__ == "__main__":
    main()

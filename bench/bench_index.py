#!/usr/bin/env python
"""Indexing and query benchmark for materialsearch, measured in ONE process so the ratios mean something.

What it measures, in this order, through the product's own code:

1. model load (``Services(...)``: read checkpoint, build CLIP, open store and index);
2. per-image stage costs on one thread (read, hash, decode in JPEG draft mode exactly as the scanner calls it,
   thumbnail, preprocess) and decode-only throughput on 1 thread and on the scanner's decode pool;
3. the model alone: ``encoder.encode_images`` on already-preprocessed inputs at ``settings.batch_size``;
4. end-to-end indexing: ``services.scans.run()`` over the folder on a fresh data dir (walk + read + hash + decode
   + thumbnail + preprocess + encode + store + index), and the ratio end-to-end / model-alone;
5. text-query latency: ``search.search(search.text_vector(q), Filters(), Page(limit=20))`` and its parts;
6. peak RSS of this process (inputs are generated in a child process so they do not count).

Inputs are generated once and cached (``--cache``, default ``$MS_BENCH_CACHE`` or /tmp/ms-bench-cache): a folder of
large JPEGs made from the real photos in ``--media`` (crop, flip, colour and grain variation per image, EXIF with
capture time; portrait shots stored sideways with Orientation=6 as phones do), and a random-weight
checkpoint with the real ViT-B-16 architecture in cn_clip's format (real weights cannot be downloaded here; speed
does not depend on the weights' values).

    .venv/bin/python bench/bench_index.py                # ViT-B-16, 64 x 12 MP JPEGs
    .venv/bin/python bench/bench_index.py --smoke --out /tmp/x   # tiny model, 8 x ~1 MP, 5 queries (seconds)

Prints a table and writes ``<out>/bench_index.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `config` and `materialsearch` live at the repository root

SCHEMA = 1
BUSY_THRESHOLD = 0.05  # share of the machine's CPU used by other processes above which a phase counts as disturbed
GENERATOR_VERSION = 1  # bump when the image generator changes, so cached folders are remade
DEFAULT_CACHE = os.environ.get("MS_BENCH_CACHE", "/tmp/ms-bench-cache")
DEFAULT_MEDIA = os.environ.get("MS_BENCH_MEDIA", "/work/shared/media")
DEFAULT_OUT = str(REPO / "bench" / "results")

# Real photos to derive the benchmark pictures from (whichever of these exist in --media are used).
SOURCE_PHOTOS = (
    "livephoto_iphone6s_train.jpg",  # a real 12 MP iPhone photo
    "heic_iphone12pro_orient6_irot_gps.heic",  # a real 12 MP iPhone HEIC (portrait)
    "jpg_orient1.jpg",
    "webp_lossy_photo.webp",
    "jpeg_nikon_d5000_gps.jpeg",
    "jpg_no_exif.jpg",
    "jpg_pixel7pro_progressive_gps.jpg",
    "jpg_unicode_fin de journée.jpg",  # portrait
    "avif_photo.avif",
)

# Mixed Chinese / English sentences, the kind people type into a photo search box.
QUERIES = (
    "海边的日落",
    "a dog running on the beach",
    "一只在草地上奔跑的小狗",
    "snow covered mountains under a blue sky",
    "城市夜景，高楼大厦灯火通明",
    "a red train at the station",
    "火车站台上的红色列车",
    "birthday cake with candles",
    "生日蛋糕上插着蜡烛",
    "children playing in the park",
    "公园里玩耍的孩子们",
    "a cup of coffee on a wooden table",
    "木桌上的一杯咖啡",
    "old building with a clock tower",
    "有钟楼的老建筑",
    "cat sleeping on the sofa",
    "沙发上睡觉的猫",
    "autumn leaves in the forest",
    "秋天树林里的落叶",
    "people walking in the rain with umbrellas",
    "雨中撑伞行走的人们",
    "a bowl of noodles",
    "一碗热腾腾的牛肉面",
    "fireworks over the river",
    "河面上空的烟花",
    "a bride and groom at a wedding",
    "婚礼上的新郎新娘",
    "sheep grazing on a green hill",
    "绿色山坡上吃草的羊群",
    "a sailing boat on a calm lake",
    "平静湖面上的帆船",
    "蓝天白云",
    "desert with sand dunes",
    "沙漠里的沙丘",
    "a cyclist on a mountain road",
    "山路上骑自行车的人",
    "flowers in a garden in spring",
    "春天花园里盛开的鲜花",
    "a selfie with friends at a restaurant",
    "和朋友在餐厅的合影",
    "screenshot of a chat conversation",
    "聊天记录截图",
    "the Great Wall in winter",
    "冬天的长城",
    "a baby smiling",
    "微笑的婴儿",
    "car parked on a street at night",
    "夜晚停在街边的汽车",
    "Mongolian grassland with horses",
    "草原上奔跑的骏马",
)


# --------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------
def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    current = peak = 0.0
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    if not peak:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024
    return current, peak


def _system_busy_s() -> float | None:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    values = [int(v) for v in fields[1:9]]
    busy = sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


class Phase:
    """Times a phase: wall seconds, this process's CPU seconds, and CPU seconds used by OTHER processes.

    Other processes' CPU is what makes a run on a shared machine unreliable; the report flags it.
    """

    def __init__(self, name: str, phases: dict, quiet_s: float = 0.0):
        self.name, self.phases, self.quiet_s = name, phases, quiet_s

    def __enter__(self) -> Phase:
        self.waited = wait_quiet(self.quiet_s) if self.quiet_s > 0 else 0.0
        if self.waited > 3.5:
            log(f"waited {self.waited:.0f}s for other processes to quieten")
        self.wall0, self.own0, self.busy0 = time.perf_counter(), _own_cpu_s(), _system_busy_s()
        return self

    def __exit__(self, *_exc) -> None:
        wall = time.perf_counter() - self.wall0
        own = _own_cpu_s() - self.own0
        busy1 = _system_busy_s()
        others = None if self.busy0 is None or busy1 is None else max(0.0, busy1 - self.busy0 - own)
        cpus = os.cpu_count() or 1
        self.phases[self.name] = {
            "wall_s": round(wall, 3),
            "own_cpu_s": round(own, 3),
            "own_cpu_cores": round(own / wall, 2) if wall else 0.0,
            "others_cpu_s": None if others is None else round(others, 3),
            "others_share_of_machine": None if others is None or not wall else round(others / (wall * cpus), 3),
            "waited_for_quiet_s": round(self.waited, 1),
        }


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def wait_quiet(max_s: float, threshold: float = 0.05, window_s: float = 1.0, needed: int = 3) -> float:
    """Wait (at most ``max_s``) until other processes use under ``threshold`` of the machine for ``needed``
    consecutive windows; returns the seconds waited. For shared machines, where other jobs come and go."""
    started = time.perf_counter()
    cpus = os.cpu_count() or 1
    quiet = 0
    while quiet < needed and time.perf_counter() - started < max_s:
        busy0, own0 = _system_busy_s(), _own_cpu_s()
        if busy0 is None:
            break
        time.sleep(window_s)
        others = (_system_busy_s() or busy0) - busy0 - (_own_cpu_s() - own0)
        quiet = quiet + 1 if others < threshold * cpus * window_s else 0
    return time.perf_counter() - started


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p99/mean/min/max of a list of milliseconds (linear interpolation, like numpy's default)."""
    import numpy as np

    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "n": int(values.size),
        "p50": round(float(np.percentile(values, 50)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
        "mean": round(float(values.mean()), 2),
        "min": round(float(values.min()), 2),
        "max": round(float(values.max()), 2),
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def atomic_dir(final: Path) -> Path:
    """A fresh temporary sibling of ``final`` to fill and then rename into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))


# --------------------------------------------------------------------------------------------------------------
# Input generation (runs in a child process: its memory must not count towards the measured peak RSS)
# --------------------------------------------------------------------------------------------------------------
_SOURCES_CACHE: dict[str, object] = {}


def _load_sources(media: str) -> list:
    """Upright RGB PIL images of the real photos found in ``media`` (decoded by the product's own decoder)."""
    from materialsearch.decode import decode_image

    images = []
    for name in SOURCE_PHOTOS:
        path = os.path.join(media, name)
        if not os.path.isfile(path):
            continue
        if path not in _SOURCES_CACHE:
            with open(path, "rb") as handle:
                _SOURCES_CACHE[path] = decode_image(handle.read(), min_side=1 << 20, max_pixels=1 << 30).image
        images.append(_SOURCES_CACHE[path])
    return images


def _synthetic_source(seed: int):
    """A stand-in picture when no real photos are available: smooth colour fields plus shapes."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:768, 0:1024].astype(np.float32)
    channels = [
        127 + 100 * np.sin(x / rng.uniform(40, 200) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(40, 200))
        for _ in range(3)
    ]
    image = Image.fromarray(np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, 900)), int(rng.integers(0, 650))
        draw.ellipse(
            [x0, y0, x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200))],
            fill=tuple(int(v) for v in rng.integers(0, 255, 3)),
        )
    return image


def _make_one(job: dict) -> tuple[str, int]:
    """Write picture ``job['index']``: a varied crop of a real photo, resized to the target size, as a JPEG."""
    import numpy as np
    from PIL import Image

    index, width, height = job["index"], job["width"], job["height"]
    rng = np.random.default_rng(1000 + index)
    sources = _load_sources(job["media"])
    source = sources[index % len(sources)] if sources else _synthetic_source(index)
    portrait_source = source.height > source.width
    # Portrait photos are stored sideways (landscape pixels) with EXIF Orientation=6, as phones store them.
    sideways = portrait_source
    out_w, out_h = (height, width) if portrait_source else (width, height)
    # Random crop with the output's aspect ratio, 65-100 % of the largest such crop, at a random offset.
    aspect = out_w / out_h
    max_w = min(source.width, source.height * aspect)
    scale = rng.uniform(0.65, 1.0)
    crop_w, crop_h = max_w * scale, max_w * scale / aspect
    left = rng.uniform(0, source.width - crop_w)
    top = rng.uniform(0, source.height - crop_h)
    image = source.resize((out_w, out_h), Image.Resampling.BICUBIC, box=(left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pixels = np.asarray(image, dtype=np.int16)
    # Colour shift (per-channel gain and offset) and sensor-like grain: upscaled photos are unrealistically
    # smooth, and real 12 MP phone JPEGs (3-5 MB) owe much of their size, and decode time, to fine texture.
    gain = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    offset = rng.uniform(-12, 12, 3).astype(np.float32)
    tile = rng.normal(0, job["grain"], (256, 256, 3)).astype(np.int16)
    reps = (-(-pixels.shape[0] // 256), -(-pixels.shape[1] // 256), 1)
    grain = np.tile(tile, reps)[: pixels.shape[0], : pixels.shape[1]]
    shifted = pixels.astype(np.float32) * gain + offset
    pixels = np.clip(shifted.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if sideways:
        image = image.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise; Orientation=6 turns it back
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPhone (materialsearch bench)"  # Model
    exif[0x0112] = 6 if sideways else 1  # Orientation
    taken = dt.datetime(2024, 1, 1) + dt.timedelta(hours=7 * index)
    exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    path = os.path.join(job["folder"], f"IMG_{index:05d}.jpg")
    image.save(path, "JPEG", quality=job["quality"], exif=exif.tobytes(), subsampling="4:2:0")
    return path, os.path.getsize(path)


def generate_images(folder: str, count: int, width: int, height: int, quality: int, grain: float, media: str) -> None:
    """Fill ``folder`` with ``count`` JPEGs, in parallel processes."""
    from concurrent.futures import ProcessPoolExecutor

    from materialsearch.decode import configure_pillow

    configure_pillow()
    jobs = [
        {
            "index": i,
            "width": width,
            "height": height,
            "quality": quality,
            "grain": grain,
            "media": media,
            "folder": folder,
        }
        for i in range(count)
    ]
    workers = max(1, min(os.cpu_count() or 1, count))
    if workers == 1:
        for job in jobs:
            _make_one(job)
        return
    with ProcessPoolExecutor(workers, initializer=configure_pillow) as pool:
        list(pool.map(_make_one, jobs, chunksize=max(1, count // (workers * 4))))


def make_vit_checkpoint(path: str, arch: str, seed: int = 0) -> None:
    """A random-weight checkpoint with the real ``arch`` (e.g. ViT-B-16), built with cn_clip's own classes."""
    import torch
    from cn_clip.clip.model import CLIP, convert_weights

    from materialsearch.model import ARCH_KEY, model_info_for

    info, _resolution, struct = model_info_for(arch)
    torch.manual_seed(seed)
    model = CLIP(**info)
    convert_weights(model)  # fp16 weights, as cn_clip's released checkpoints
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save({"state_dict": model.state_dict(), ARCH_KEY: struct}, tmp)
    os.replace(tmp, path)


def prepare_main(spec: dict) -> int:
    """Child-process entry: make whatever ``spec`` asks for."""
    if spec["what"] == "images":
        tmp = atomic_dir(Path(spec["folder"]))
        try:
            generate_images(
                str(tmp), spec["count"], spec["width"], spec["height"], spec["quality"], spec["grain"], spec["media"]
            )
            try:
                os.replace(tmp, spec["folder"])
            except OSError:
                if not os.path.isdir(spec["folder"]):  # else a concurrent run made it first: keep theirs
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    elif spec["what"] == "vit":
        Path(spec["path"]).parent.mkdir(parents=True, exist_ok=True)
        make_vit_checkpoint(spec["path"], spec["arch"])
    elif spec["what"] == "tiny":
        from materialsearch.model import make_test_model

        tmp = f"{spec['path']}.{os.getpid()}.tmp"
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        make_test_model(tmp)
        os.replace(tmp, spec["path"])
    else:
        raise SystemExit(f"unknown prepare spec {spec!r}")
    return 0


def run_prepare(spec: dict) -> None:
    started = time.perf_counter()
    subprocess.run([sys.executable, os.path.abspath(__file__), "--prepare", json.dumps(spec)], check=True)
    log(f"prepared {spec['what']} in {time.perf_counter() - started:.1f}s")


def ensure_images(cache: Path, count: int, width: int, height: int, quality: int, grain: float, media: str) -> Path:
    sources = [name for name in SOURCE_PHOTOS if os.path.isfile(os.path.join(media, name))]
    tag = "real" if sources else "synthetic"
    folder = cache / f"images-v{GENERATOR_VERSION}-{tag}-{count}x{width}x{height}-q{quality}-g{grain:g}"
    if not folder.is_dir():
        log(f"generating {count} JPEGs of {width}x{height} from {len(sources)} real photos into {folder} ...")
        run_prepare(
            {
                "what": "images",
                "folder": str(folder),
                "count": count,
                "width": width,
                "height": height,
                "quality": quality,
                "grain": grain,
                "media": media,
            }
        )
    return folder


def ensure_model(cache: Path, model: str) -> tuple[Path, str]:
    """(checkpoint path, what it is) for ``--model`` (vit-b-16 / tiny / a checkpoint file)."""
    if model == "tiny":
        path = cache / "models" / "tiny-test-seed0.pt"
        if not path.is_file():  # a few MB: made in this process (torch is imported anyway), saving a start-up
            prepare_main({"what": "tiny", "path": str(path)})
        return path, "tiny test model (make_test_model), random weights"
    if model.lower() in {"vit-b-16", "vit-l-14", "vit-l-14-336", "vit-h-14", "rn50"}:
        arch = {
            "vit-b-16": "ViT-B-16",
            "vit-l-14": "ViT-L-14",
            "vit-l-14-336": "ViT-L-14-336",
            "vit-h-14": "ViT-H-14",
            "rn50": "RN50",
        }[model.lower()]
        path = cache / "models" / f"{arch}-random-seed0.pt"
        if not path.is_file():
            log(f"building a random-weight {arch} checkpoint at {path} ...")
            run_prepare({"what": "vit", "path": str(path), "arch": arch})
        return path, f"{arch} architecture, random weights (cn_clip format)"
    if os.path.isfile(model):
        return Path(model).resolve(), "checkpoint file"
    raise SystemExit(f"--model {model!r}: use vit-b-16, tiny, another cn_clip architecture, or a checkpoint path")


# --------------------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------------------
def machine_facts() -> dict:
    import faiss
    import numpy
    import PIL
    import torch
    from PIL import features

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda_available": torch.cuda.is_available(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "libjpeg_turbo": bool(features.check_feature("libjpeg_turbo")),
        "faiss": faiss.__version__,
    }


def measure_stages(paths: list[str], services) -> tuple[dict, list]:
    """One thread, per image: read, hash, decode (as the scanner calls it), thumbnail, preprocess.

    Returns per-stage totals and the preprocessed inputs (for the model-alone measurement).
    """
    from materialsearch.decode import decode_image, decode_sizes, encode_jpeg, render

    settings, encoder = services.settings, services.encoder
    sizes = decode_sizes(settings, encoder)  # exactly what the scanner asks for
    totals = {"read": 0.0, "hash": 0.0, "decode": 0.0, "thumbnail": 0.0, "preprocess": 0.0}
    pixels, decoded_sizes = [], []
    for path in paths:
        t0 = time.perf_counter()
        with open(path, "rb") as handle:
            data = handle.read()
        t1 = time.perf_counter()
        hashlib.blake2b(data, digest_size=20).hexdigest()
        t2 = time.perf_counter()
        decoded = decode_image(data, max_pixels=settings.max_image_pixels, **sizes)
        t3 = time.perf_counter()
        encode_jpeg(render(decoded, settings.thumbnail_size))
        t4 = time.perf_counter()
        pixels.append(encoder.preprocess(decoded.image))
        t5 = time.perf_counter()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            totals[key] += seconds
        decoded_sizes.append(decoded.image.size)
    return {"totals_s": totals, "decoded_size_example": list(decoded_sizes[0]), "min_side": sizes["min_side"]}, pixels


def measure_decode_pool(paths: list[str], services, threads: int) -> float:
    """Seconds to read + decode every file on a pool of ``threads`` threads (the scanner's decode pool size)."""
    from concurrent.futures import ThreadPoolExecutor

    from materialsearch.decode import decode_image, decode_sizes

    settings, encoder = services.settings, services.encoder
    sizes = decode_sizes(settings, encoder)

    def one(path: str) -> None:
        with open(path, "rb") as handle:
            data = handle.read()
        decode_image(data, max_pixels=settings.max_image_pixels, **sizes)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - started


def measure_model_alone(encoder, pixels: list, batch_size: int) -> dict:
    """encode_images on preprocessed inputs, batch by batch, after one warm-up batch."""
    encoder.encode_images(pixels[:batch_size])  # warm-up (allocator, oneDNN kernels), not counted
    batch_seconds = []
    for start in range(0, len(pixels), batch_size):
        t0 = time.perf_counter()
        encoder.encode_images(pixels[start : start + batch_size])
        batch_seconds.append(time.perf_counter() - t0)
    total = sum(batch_seconds)
    return {
        "images": len(pixels),
        "batch_size": batch_size,
        "batches": len(batch_seconds),
        "seconds": total,
        "images_per_s": len(pixels) / total,
        "batch_seconds": [round(s, 4) for s in batch_seconds],
    }


class EncodeTimer:
    """Times the encoder's ``encode_images`` calls while active (wraps the bound method on the instance, which the
    scanner calls through; removed on exit). Costs two clock reads per batch."""

    def __init__(self, encoder):
        self.encoder, self.seconds, self.images, self.calls = encoder, 0.0, 0, 0

    def __enter__(self) -> EncodeTimer:
        original = self.encoder.encode_images

        def timed(pixels):
            t0 = time.perf_counter()
            try:
                return original(pixels)
            finally:
                self.seconds += time.perf_counter() - t0
                self.images += len(pixels)
                self.calls += 1

        self.encoder.encode_images = timed
        return self

    def __exit__(self, *_exc) -> None:
        del self.encoder.encode_images  # back to the class's method


def measure_queries(services, count: int, warmup: int = 2) -> dict:
    from materialsearch.search import Page
    from materialsearch.store import Filters

    search = services.search
    queries = [QUERIES[i % len(QUERIES)] for i in range(count)]
    for query in QUERIES[:warmup]:  # warm the text tower and the tokenizer
        search.search(search.text_vector(query), Filters(), Page(limit=20))
    encode_ms, search_ms, total_ms, hits = [], [], [], []
    for query in queries:
        t0 = time.perf_counter()
        vector = search.text_vector(query)
        t1 = time.perf_counter()
        result = search.search(vector, Filters(), Page(limit=20))
        t2 = time.perf_counter()
        encode_ms.append((t1 - t0) * 1000)
        search_ms.append((t2 - t1) * 1000)
        total_ms.append((t2 - t0) * 1000)
        hits.append(len(result.hits))
    return {
        "queries": count,
        "chinese": sum(1 for q in queries if any("\u4e00" <= ch <= "\u9fff" for ch in q)),
        "total_ms": percentiles(total_ms),
        "encode_ms": percentiles(encode_ms),
        "search_ms": percentiles(search_ms),
        "hits_per_query_min": min(hits),
        "samples_total_ms": [round(v, 2) for v in total_ms],
    }


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
def run(args) -> dict:
    cache = Path(args.cache).expanduser().resolve()
    folder = ensure_images(cache, args.images, args.width, args.height, args.quality, args.grain, args.media)
    checkpoint, model_desc = ensure_model(cache, args.model)
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    if len(paths) != args.images:
        raise SystemExit(f"{folder} holds {len(paths)} JPEGs, expected {args.images}; delete it and run again")
    sizes = [os.path.getsize(p) for p in paths]

    from config import Settings
    from materialsearch.services import Services

    overrides = {"library": str(folder), "model": str(checkpoint)}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.decode_threads:
        overrides["decode_threads"] = args.decode_threads
    data_dirs: list[Path] = []

    def fresh_settings():
        data_dirs.append(Path(tempfile.mkdtemp(prefix="ms-bench-data-")))
        return Settings.from_env(**overrides, data_dir=str(data_dirs[-1]))

    settings = fresh_settings()
    phases: dict[str, dict] = {}
    services = None
    # How to let go of an attempt's result that is not kept (a scan's extra Services).
    release = {"end_to_end_scan": lambda value: value[2].close() if value[2] is not services else None}

    def measure(name: str, fn):
        """Run ``fn(attempt)`` in a Phase; while other processes disturbed it (> BUSY_THRESHOLD of the machine),
        retry up to ``--retries`` times, keeping the least disturbed attempt."""
        best = None
        for attempt in range(1, args.retries + 2):
            record: dict[str, dict] = {}
            with Phase(name, record, args.wait_quiet):
                value = fn(attempt)
            info = {**record[name], "attempt": attempt}
            share = info["others_share_of_machine"] or 0.0
            if best is None or share < (best[1]["others_share_of_machine"] or 0.0):
                if best is not None and name in release:
                    release[name](best[0])
                best = (value, info)
            elif name in release:
                release[name](value)
            if share <= BUSY_THRESHOLD or attempt > args.retries:
                break
            log(f"{name}: other processes used {share:.0%} of the machine; retrying ({attempt}/{args.retries})")
        phases[name] = {**best[1], "attempts": attempt}
        return best[0]

    rss_start, _ = rss_mb()
    try:
        log(f"loading the model ({model_desc}) ...")
        with Phase("model_load", phases, args.wait_quiet):
            t0 = time.perf_counter()
            services = Services(settings)
            load_s = time.perf_counter() - t0
        rss_loaded, peak_loaded = rss_mb()
        encoder = services.encoder
        facts = machine_facts()  # after Services: torch threads as the product leaves them

        log(f"stage costs on 1 thread over {len(paths)} images ...")
        stages, pixels = measure("stages_1_thread", lambda _a: measure_stages(paths, services))
        log(f"decode-only on the decode pool ({settings.decode_threads} threads) ...")
        pool_s = measure("decode_pool", lambda _a: measure_decode_pool(paths, services, settings.decode_threads))
        log(f"model alone: encode_images, batch {settings.batch_size} ...")
        model = measure("model_alone", lambda _a, px=pixels: measure_model_alone(encoder, px, settings.batch_size))
        sweep = {}
        for size in args.sweep_batch:
            if size != settings.batch_size:
                log(f"model alone at another batch size: {size} ...")
                result = measure(
                    f"model_alone_bs{size}", lambda _a, px=pixels, bs=size: measure_model_alone(encoder, px, bs)
                )
                sweep[str(size)] = round(result["images_per_s"], 3)
        del pixels

        def scan(attempt: int):
            # Every attempt scans a fresh data dir; a retry shares the loaded encoder (Services' own parameter).
            target = services if attempt == 1 else Services(fresh_settings(), encoder=encoder)
            with EncodeTimer(encoder) as timer:
                t0 = time.perf_counter()
                stats = target.scans.run()
                wall = time.perf_counter() - t0
            return stats, wall, target, timer

        log("end-to-end scan on a fresh data dir ...")
        stats, scan_wall, scanned, in_scan = measure("end_to_end_scan", scan)
        rss_scanned, _ = rss_mb()
        if stats.added != len(paths) or stats.errors or stats.skipped:
            raise SystemExit(f"the scan did not index every picture: {stats.summary()}")
        log(f"{args.queries} text queries ...")
        queries = measure("queries", lambda _a: measure_queries(scanned, args.queries))
        if queries["hits_per_query_min"] != min(20, len(paths)):
            raise SystemExit(f"a query returned {queries['hits_per_query_min']} hits, expected 20")
        if scanned is not services:
            scanned.close()
    finally:
        if services is not None:
            services.close()
        for data_dir in data_dirs:
            if args.keep_data:
                log(f"data dir kept at {data_dir}")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
    _, peak = rss_mb()

    n = len(paths)
    totals = stages["totals_s"]
    decode_1t = n / totals["decode"]
    e2e = stats.added / stats.seconds
    model_ips = model["images_per_s"]
    per_image_ms = {k: round(v / n * 1000, 2) for k, v in totals.items()}
    prepare_ms = sum(per_image_ms.values())
    return {
        "schema": SCHEMA,
        "when": dt.datetime.now().replace(microsecond=0).isoformat(),
        "smoke": bool(args.smoke),
        "machine": facts,
        "config": {
            "model": args.model,
            "model_desc": model_desc,
            "arch": encoder.spec.arch,
            "input_resolution": encoder.input_resolution,
            "embed_dim": encoder.dim,
            "device": encoder.device,
            "images": n,
            "image_size": [args.width, args.height],
            "jpeg_quality": args.quality,
            "batch_size": settings.batch_size,
            "decode_threads": settings.decode_threads,
            "torch_threads_setting": settings.torch_threads,
            "thumbnail_size": settings.thumbnail_size,
            "decode_min_side": stages["min_side"],
            "decoded_size_example": stages["decoded_size_example"],
            "queries": args.queries,
        },
        "inputs": {
            "folder": str(folder),
            "files": n,
            "total_mb": round(sum(sizes) / 2**20, 1),
            "mean_mb": round(sum(sizes) / n / 2**20, 2),
            "checkpoint": str(checkpoint),
            "checkpoint_mb": round(os.path.getsize(checkpoint) / 2**20, 1),
        },
        "results": {
            "model_load_s": round(load_s, 2),
            "model_alone": {**model, "seconds": round(model["seconds"], 3), "images_per_s": round(model_ips, 3)},
            "end_to_end": {
                "images_per_s": round(e2e, 3),
                "scan_seconds": round(stats.seconds, 3),
                "wall_seconds": round(scan_wall, 3),
                "found": stats.found,
                "added": stats.added,
                "errors": stats.errors,
                "skipped": stats.skipped,
                # Inside the scan: time the scanner's thread spent in encode_images, and the rest of the scan
                # (waiting for decoded pictures, SQLite, FAISS, walk, index save).
                "encode_seconds_in_scan": round(in_scan.seconds, 3),
                "encode_images_per_s_in_scan": round(in_scan.images / in_scan.seconds, 3) if in_scan.seconds else None,
                "encode_calls_in_scan": in_scan.calls,
                "not_encoding_seconds": round(stats.seconds - in_scan.seconds, 3),
            },
            "model_alone_other_batch_sizes_images_per_s": sweep,
            "ratio_end_to_end_over_model_alone": round(e2e / model_ips, 3),
            "decode_only": {
                "images_per_s_1_thread": round(decode_1t, 3),
                "images_per_s_pool": round(n / pool_s, 3),
                "pool_threads": settings.decode_threads,
            },
            "per_image_ms_1_thread": per_image_ms,
            "prepare_ms_per_image_1_thread": round(prepare_ms, 2),
            "model_ms_per_image": round(1000 / model_ips, 2),
            "queries": queries,
            "phases": phases,
            "machine_busy_elsewhere": max(
                (p["others_share_of_machine"] or 0.0 for p in phases.values() if p["wall_s"] > 0.5), default=0.0
            ),
            "rss_mb": {
                "start": round(rss_start, 1),
                "after_model_load": round(rss_loaded, 1),
                "peak_after_model_load": round(peak_loaded, 1),
                "after_scan": round(rss_scanned, 1),
                "peak": round(peak, 1),
            },
        },
    }


def table_rows(report: dict) -> list[tuple[str, str, str]]:
    cfg, res, inp, machine = report["config"], report["results"], report["inputs"], report["machine"]
    q, e2e, dec = res["queries"], res["end_to_end"], res["decode_only"]
    b = cfg["batch_size"]
    rows = [
        ("model load (Services init)", f"{res['model_load_s']:.2f}", "s"),
        (f"model alone: encode_images, batch {b}", f"{res['model_alone']['images_per_s']:.2f}", "images/s"),
        *(
            (f"  model alone at batch {size} (--sweep-batch)", f"{ips:.2f}", "images/s")
            for size, ips in res["model_alone_other_batch_sizes_images_per_s"].items()
        ),
        (
            f"end-to-end scan ({inp['files']} files, {inp['mean_mb']:.1f} MB avg)",
            f"{e2e['images_per_s']:.2f}",
            "images/s",
        ),
        ("end-to-end / model-alone", f"{res['ratio_end_to_end_over_model_alone']:.2f}", "x"),
        (
            "  in scan: encode_images (shares CPU with decoding)",
            f"{e2e['encode_images_per_s_in_scan'] or 0:.2f}",
            "images/s",
        ),
        (
            "  in scan: time outside encode_images",
            f"{e2e['not_encoding_seconds']:.2f}",
            f"s of {e2e['scan_seconds']:.2f} s",
        ),
        ("decode-only: decode_image, 1 thread", f"{dec['images_per_s_1_thread']:.2f}", "images/s"),
        (
            f"decode-only: read + decode_image, {dec['pool_threads']} threads",
            f"{dec['images_per_s_pool']:.2f}",
            "images/s",
        ),
        *((f"  per image, 1 thread: {stage}", f"{ms:.1f}", "ms") for stage, ms in res["per_image_ms_1_thread"].items()),
        ("  per image, 1 thread: all of the above (no model)", f"{res['prepare_ms_per_image_1_thread']:.1f}", "ms"),
        (
            f"  per image: encode_images ({machine['torch_threads']} torch threads)",
            f"{res['model_ms_per_image']:.1f}",
            "ms",
        ),
        (f"text query total p50 (n={q['queries']})", f"{q['total_ms']['p50']:.1f}", "ms"),
        (f"text query total p99 (n={q['queries']})", f"{q['total_ms']['p99']:.1f}", "ms"),
        ("  text encode-only (text_vector) p50", f"{q['encode_ms']['p50']:.1f}", "ms"),
        ("  text encode-only (text_vector) p99", f"{q['encode_ms']['p99']:.1f}", "ms"),
        ("  search-only (FAISS + SQLite) p50", f"{q['search_ms']['p50']:.2f}", "ms"),
        ("  search-only (FAISS + SQLite) p99", f"{q['search_ms']['p99']:.2f}", "ms"),
        ("RSS after model load", f"{res['rss_mb']['after_model_load']:.0f}", "MiB"),
        ("peak RSS (whole run)", f"{res['rss_mb']['peak']:.0f}", "MiB"),
    ]
    return rows


def render_table(report: dict) -> str:
    cfg, machine = report["config"], report["machine"]
    rows = table_rows(report)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [
        f"materialsearch index benchmark{' (SMOKE)' if report['smoke'] else ''} - {report['when']}",
        f"model: {cfg['model_desc']} [{cfg['arch']}, {cfg['input_resolution']} px, dim {cfg['embed_dim']}] "
        f"on {cfg['device']}",
        f"images: {cfg['images']} x {cfg['image_size'][0]}x{cfg['image_size'][1]} JPEG q{cfg['jpeg_quality']}, "
        f"decoded at {cfg['decoded_size_example'][0]}x{cfg['decoded_size_example'][1]} "
        f"(draft, min_side {cfg['decode_min_side']}); batch_size {cfg['batch_size']}, "
        f"decode_threads {cfg['decode_threads']}",
        f"machine: nproc {machine['nproc']}, {machine['cpu']}, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), pillow {machine['pillow']} "
        f"(libjpeg-turbo {machine['libjpeg_turbo']}), python {machine['python']}",
        "",
        f"{'metric':<{width}}  {'value':>{value_width}}  unit",
        f"{'-' * width}  {'-' * value_width}  --------",
    ]
    lines += [f"{name:<{width}}  {value:>{value_width}}  {unit}" for name, value, unit in rows]
    lines += ["", f"end-to-end / model-alone = {report['results']['ratio_end_to_end_over_model_alone']:.2f}"]
    phases = report["results"]["phases"]
    busy = ", ".join(
        f"{name} {p['others_share_of_machine'] * 100:.0f}%"
        for name, p in phases.items()
        if p["others_share_of_machine"] is not None
    )
    lines.append(f"other processes' share of the machine's CPU per phase: {busy or 'unknown'}")
    if report["results"]["machine_busy_elsewhere"] > BUSY_THRESHOLD:
        lines.append("WARNING: other processes used more than 5% of the machine during a phase; numbers are noisy")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--images", type=int, default=64, help="number of pictures (default 64)")
    parser.add_argument("--width", type=int, default=4032, help="picture width (default 4032: 12 MP)")
    parser.add_argument("--height", type=int, default=3024, help="picture height (default 3024)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument(
        "--grain",
        type=float,
        default=6.0,
        help="std-dev of the added sensor grain (default 6: ~3 MB per 12 MP JPEG, like a real phone's)",
    )
    parser.add_argument(
        "--model",
        default="vit-b-16",
        help="vit-b-16 (default; real architecture, random weights), tiny, or a checkpoint path",
    )
    parser.add_argument("--batch-size", type=int, default=0, help="MS_BATCH_SIZE for this run (default: setting)")
    parser.add_argument("--decode-threads", type=int, default=0, help="MS_DECODE_THREADS (default: setting)")
    parser.add_argument("--queries", type=int, default=50, help="text queries timed (default 50)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for bench_index.json (default {DEFAULT_OUT})")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"generated inputs cache (default {DEFAULT_CACHE})")
    parser.add_argument("--media", default=DEFAULT_MEDIA, help=f"real photos to derive from (default {DEFAULT_MEDIA})")
    parser.add_argument("--keep-data", action="store_true", help="keep the scan's data dir (for inspection)")
    parser.add_argument(
        "--sweep-batch",
        type=lambda raw: [int(part) for part in raw.split(",") if part.strip()],
        default=[],
        metavar="B1,B2",
        help="also time the model alone at these batch sizes (e.g. 4,8,32), to choose MS_BATCH_SIZE",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="K",
        help="re-run a phase up to K times while other processes disturbed it (> 5%% of the machine's CPU), "
        "keeping the least disturbed attempt (default 0)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each phase wait up to S seconds for other processes to leave the CPUs idle "
        "(shared machines; default 0: do not wait)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model, 8 pictures of ~1 MP, 5 queries: a few seconds, for tests"
    )
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # internal: child process making inputs
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.images, args.width, args.height, args.queries = "tiny", 8, 1152, 864, 5
        args.wait_quiet, args.retries, args.sweep_batch = 0.0, 0, [4]
    for name in ("images", "width", "height", "queries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if any(size < 1 for size in args.sweep_batch):
        parser.error("--sweep-batch sizes must be at least 1")
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be 1-100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        return prepare_main(json.loads(args.prepare))
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "bench_index.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    print(render_table(report))
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: defaults, logging, timed phases and percentiles, the machine's description, cached
inputs (pictures, checkpoints, data dirs), measurements more than one script makes, and result files and tables.

Light to import: the product's names come through ``bench.product``, which imports each on first use, and numpy,
PIL or torch are imported by the functions that need them (the HTTP client of ``bench_concurrent_search`` and the
processes that make inputs load no more than they use).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bench import product

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = os.environ.get("MS_BENCH_CACHE", "/tmp/ms-bench-cache")
DEFAULT_MEDIA = os.environ.get("MS_BENCH_MEDIA", str(REPO.parent / "shared" / "media"))
DEFAULT_OUT = str(REPO / "bench" / "results")
BUSY_THRESHOLD = 0.05  # share of the machine's CPU used by other processes above which a phase counts as disturbed
GENERATOR_VERSION = 1  # bump when the image generator changes, so cached folders are remade

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

# cn_clip architectures ``--model`` accepts by a short name (random weights; speed does not depend on their values).
ARCHITECTURES = {
    "vit-b-16": "ViT-B-16",
    "vit-l-14": "ViT-L-14",
    "vit-l-14-336": "ViT-L-14-336",
    "vit-h-14": "ViT-H-14",
    "rn50": "RN50",
}

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
# Logging, timing, percentiles, memory
# --------------------------------------------------------------------------------------------------------------
def log(message: str) -> None:
    """A progress line on stderr (stdout holds the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(wall seconds, result) of calling ``fn``."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def percentiles(samples_ms: Sequence[float], points: Sequence[int] = (50, 99), digits: int = 2) -> dict[str, float]:
    """n, the ``points`` percentiles (``p50`` ...), mean, min and max of milliseconds (linear interpolation, like
    numpy's default), rounded to ``digits``."""
    import numpy as np

    values = np.asarray(samples_ms, dtype=np.float64)
    summary: dict[str, float] = {"n": int(values.size)}
    summary.update({f"p{p}": round(float(np.percentile(values, p)), digits) for p in points})
    summary.update(
        mean=round(float(values.mean()), digits),
        min=round(float(values.min()), digits),
        max=round(float(values.max()), digits),
    )
    return summary


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
        pass  # not Linux: the peak comes from getrusage below, the current RSS stays unknown (0)
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


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def wait_quiet(max_s: float, threshold: float = BUSY_THRESHOLD, window_s: float = 1.0, needed: int = 3) -> float:
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


class Phase:
    """Times a phase into ``phases[name]``: wall seconds, this process's CPU seconds, and CPU seconds used by OTHER
    processes (what makes a run on a shared machine unreliable; the reports flag it)."""

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


# --------------------------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('' where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        return ""


def machine_facts() -> dict:
    """The machine and library versions the numbers depend on (torch threads as the product has set them)."""
    import faiss
    import numpy
    import PIL
    import torch
    from PIL import features

    return {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu_model(),
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


# --------------------------------------------------------------------------------------------------------------
# Cached inputs: made once under --cache, never in the repository
# --------------------------------------------------------------------------------------------------------------
def cached_dir(final: Path, make: Callable[[Path], None]) -> Path:
    """``final``, made once: ``make(folder)`` fills a fresh temporary sibling, which is then renamed into place, so
    a run stopped halfway leaves nothing half-made behind. When two runs race, the first to finish wins."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        make(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir():  # else a concurrent run made it first: keep theirs
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link of ``source`` at ``target``, or a copy where the file system cannot link them."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def prepare_in_child(what: str, fn: Callable, *args) -> None:
    """Make ``what`` by ``fn(*args)`` in a fresh Python process (its memory does not count towards this one's peak
    RSS)."""
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(target=fn, args=args, name=f"bench-prepare-{what}")
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"preparing {what} failed in its process (exit code {child.exitcode})")
    log(f"prepared {what} in {time.perf_counter() - started:.1f}s")


_SOURCES_CACHE: dict[str, object] = {}


def _load_sources(media: str) -> list:
    """Upright RGB PIL images of the real photos found in ``media`` (decoded by the product's own decoder)."""
    images = []
    for name in SOURCE_PHOTOS:
        path = os.path.join(media, name)
        if not os.path.isfile(path):
            continue
        if path not in _SOURCES_CACHE:
            with open(path, "rb") as handle:
                _SOURCES_CACHE[path] = product.decode_image(handle.read(), min_side=1 << 20, max_pixels=1 << 30).image
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

    product.configure_pillow()
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
    with ProcessPoolExecutor(workers, initializer=product.configure_pillow) as pool:
        list(pool.map(_make_one, jobs, chunksize=max(1, count // (workers * 4))))


def _make_images_dir(folder: str, *spec) -> None:
    """Child-process entry: the cached picture folder ``folder`` (see ``generate_images`` for ``spec``)."""
    cached_dir(Path(folder), lambda tmp: generate_images(str(tmp), *spec))


def ensure_images(cache: Path, count: int, width: int, height: int, quality: int, grain: float, media: str) -> Path:
    """The cached folder of ``count`` phone-like JPEGs derived from the real photos in ``media`` (made once, in a
    child process)."""
    sources = [name for name in SOURCE_PHOTOS if os.path.isfile(os.path.join(media, name))]
    tag = "real" if sources else "synthetic"
    folder = Path(cache).expanduser().resolve()
    folder /= f"images-v{GENERATOR_VERSION}-{tag}-{count}x{width}x{height}-q{quality}-g{grain:g}"
    if not folder.is_dir():
        log(f"generating {count} JPEGs of {width}x{height} from {len(sources)} real photos into {folder} ...")
        prepare_in_child("images", _make_images_dir, str(folder), count, width, height, quality, grain, media)
    return folder


def make_vit_checkpoint(path: str, arch: str, seed: int = 0) -> None:
    """A random-weight checkpoint with the real ``arch`` (e.g. ViT-B-16), built with cn_clip's own classes."""
    import torch
    from cn_clip.clip.model import CLIP, convert_weights

    info, _resolution, struct = product.model_info_for(arch)
    torch.manual_seed(seed)
    model = CLIP(**info)
    convert_weights(model)  # fp16 weights, as cn_clip's released checkpoints
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save({"state_dict": model.state_dict(), product.ARCH_KEY: struct}, tmp)
    os.replace(tmp, path)


def ensure_model(cache: Path, model: str) -> tuple[Path, str]:
    """(checkpoint path, what it is) for ``--model``: tiny, a name in ARCHITECTURES, or a checkpoint file."""
    models = Path(cache).expanduser().resolve() / "models"
    if model == "tiny":
        path = models / "tiny-test-seed0.pt"
        if not path.is_file():  # a few MB: made in this process (torch is imported anyway), saving a start-up
            models.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            product.make_test_model(tmp)
            os.replace(tmp, path)
        return path, "tiny test model (make_test_model), random weights"
    if model.lower() in ARCHITECTURES:
        arch = ARCHITECTURES[model.lower()]
        path = models / f"{arch}-random-seed0.pt"
        if not path.is_file():
            log(f"building a random-weight {arch} checkpoint at {path} ...")
            models.mkdir(parents=True, exist_ok=True)
            prepare_in_child("vit", make_vit_checkpoint, str(path), arch)
        return path, f"{arch} architecture, random weights (cn_clip format)"
    if os.path.isfile(model):
        return Path(model).resolve(), "checkpoint file"
    raise SystemExit(f"--model {model!r}: use vit-b-16, tiny, another cn_clip architecture, or a checkpoint path")


class DataDirs:
    """Fresh data dirs for the product, removed by ``cleanup``. With ``shared_models`` each one's ``models`` folder
    is a link to it, so ONNX exports are made once per checkpoint rather than once per data dir."""

    def __init__(self, prefix: str, shared_models: Path | None = None):
        self.prefix, self.made = prefix, []
        self.shared_models = None if shared_models is None else Path(shared_models).expanduser().resolve()
        if self.shared_models is not None:  # resolved: a relative --cache must not make relative links
            self.shared_models.mkdir(parents=True, exist_ok=True)

    def new(self, prefix: str | None = None) -> Path:
        """A new empty data dir (linked to the shared models folder, if any)."""
        folder = Path(tempfile.mkdtemp(prefix=prefix or self.prefix))
        self.made.append(folder)
        if self.shared_models is not None:
            (folder / "models").symlink_to(self.shared_models, target_is_directory=True)
        return folder

    def cleanup(self, keep: bool = False) -> None:
        """Remove every data dir made (``keep``: leave them, and say where they are)."""
        for folder in self.made:
            if keep:
                log(f"data dir kept at {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# Measurements more than one benchmark makes
# --------------------------------------------------------------------------------------------------------------
def scanner_decoder(settings, encoder) -> Callable[[bytes], object]:
    """``decode(data)``: decodes a picture exactly as the scanner does (sizes and pixel limit from the settings)."""
    sizes = product.decode_sizes(settings, encoder.describe().input_size)

    def decode(data: bytes):
        return product.decode_image(data, max_pixels=settings.max_image_pixels, **sizes)

    return decode


def measure_model_alone(encoder, pixels: list, batch_size: int) -> dict:
    """encode_prepared on prepared pictures, batch by batch, after one warm-up batch."""
    encoder.encode_prepared(pixels[:batch_size])  # warm-up (allocator, oneDNN kernels), not counted
    batch_seconds = []
    for start in range(0, len(pixels), batch_size):
        t0 = time.perf_counter()
        encoder.encode_prepared(pixels[start : start + batch_size])
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
    """Times the encoder's ``encode_prepared`` calls while active (wraps the bound method on the instance, which the
    scanner calls through; removed on exit). Costs two clock reads per batch."""

    def __init__(self, encoder):
        self.encoder, self.seconds, self.images, self.calls = encoder, 0.0, 0, 0

    def __enter__(self) -> EncodeTimer:
        original = self.encoder.encode_prepared

        def timed_encode(pixels):
            t0 = time.perf_counter()
            try:
                return original(pixels)
            finally:
                self.seconds += time.perf_counter() - t0
                self.images += len(pixels)
                self.calls += 1

        self.encoder.encode_prepared = timed_encode
        return self

    def __exit__(self, *_exc) -> None:
        del self.encoder.encode_prepared  # back to the class's method


class PrepareTimer:
    """CPU-seconds the scan's decode threads spend preparing files (read, hash, decode, thumbnail, preprocess),
    measured with ``time.thread_time`` around each ``prepare`` call (wrapped on the instance while active), so a
    scan's CPU splits into decode and the rest (the model, SQLite, FAISS)."""

    def __init__(self, preparer):
        self.preparer, self.cpu_s, self.files = preparer, 0.0, 0
        self._lock = threading.Lock()

    def __enter__(self) -> PrepareTimer:
        original = self.preparer.prepare

        def timed_prepare(entry, emit):
            t0 = time.thread_time()
            try:
                return original(entry, emit)
            finally:
                spent = time.thread_time() - t0
                with self._lock:
                    self.cpu_s += spent
                    self.files += 1

        self.preparer.prepare = timed_prepare
        return self

    def __exit__(self, *_exc) -> None:
        del self.preparer.prepare  # back to the class's method


def time_text_queries(search, count: int, limit: int = 20, warmup: int = 2) -> dict[str, list]:
    """``count`` sentences (QUERIES in turn) through ``search`` (a SearchService), after ``warmup`` untimed ones:
    per query the encode, search and total milliseconds, the hits, and the sentence. Every sentence is new (QUERIES'
    later rounds carry their round's number): the service keeps recent sentences' vectors, and a repeat would time
    the lookup of a kept vector instead of the text tower."""
    rounds = [""] + [f" #{number}" for number in range(1, count // len(QUERIES) + 1)]
    sentences = [QUERIES[i % len(QUERIES)] + rounds[i // len(QUERIES)] for i in range(count)]
    for sentence in QUERIES[:warmup]:  # warm the text tower and the tokenizer (not the timed sentences' vectors)
        search.search(search.text_vector(f"{sentence} (warm-up)"), product.Filters(), product.Page(limit=limit))
    times: dict[str, list] = {"encode_ms": [], "search_ms": [], "total_ms": [], "hits": [], "sentences": sentences}
    for sentence in sentences:
        t0 = time.perf_counter()
        vector = search.text_vector(sentence)
        t1 = time.perf_counter()
        page = search.search(vector, product.Filters(), product.Page(limit=limit))
        t2 = time.perf_counter()
        times["encode_ms"].append((t1 - t0) * 1000)
        times["search_ms"].append((t2 - t1) * 1000)
        times["total_ms"].append((t2 - t0) * 1000)
        times["hits"].append(len(page.hits))
    return times


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------
def visible_phrases(notes: str) -> list[str]:
    """The phrases the media MANIFEST says are visible in a text photo (parsed from its ``notes`` column)."""
    found = re.search(r"(?:visible(?: phrases| words)?:|visible columns include|reads)\s*([^;]+)", notes)
    return [p.strip() for p in re.sub(r"\(.*?\)", "", found.group(1)).split(",") if p.strip()] if found else []


def add_place_arguments(parser: argparse.ArgumentParser, report: str, media: bool = False) -> None:
    """``--out`` (where ``report`` is written), ``--cache`` (generated inputs) and, with ``media``, ``--media``."""
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for {report} (default {DEFAULT_OUT})")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"generated inputs cache (default {DEFAULT_CACHE})")
    if media:
        parser.add_argument(
            "--media", default=DEFAULT_MEDIA, help=f"real photos to derive from (default {DEFAULT_MEDIA})"
        )


def now_iso() -> str:
    """This moment, local time, to the second (when a report was made)."""
    return dt.datetime.now().replace(microsecond=0).isoformat()


def write_report(out: str | Path, name: str, report: dict) -> Path:
    """Write ``report`` as JSON to ``<out>/<name>`` (through a temporary file, so a reader never sees half)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = target.with_name(f"{name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def publish(out: str | Path, name: str, report: dict, text: str) -> Path:
    """Write ``report`` to ``<out>/<name>``, then print ``text`` and where the report went."""
    target = write_report(out, name, report)
    print(text)
    print(f"\nwrote {target}")
    return target


def text_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str) -> list[str]:
    """Lines of aligned columns, two spaces apart, each as wide as its widest cell, with a rule under ``header``.

    ``align`` has one character per column: ``<`` left, ``>`` right.
    """
    cells = [[str(cell) for cell in row] for row in (header, *rows)]
    if any(len(row) != len(align) for row in cells):
        raise ValueError(f"every row needs {len(align)} cells, as align {align!r} says")
    widths = [max(len(row[i]) for row in cells) for i in range(len(align))]

    def line(row: list[str]) -> str:
        return "  ".join(f"{cell:{side}{width}}" for cell, side, width in zip(row, align, widths, strict=True)).rstrip()

    return [line(cells[0]), line(["-" * width for width in widths]), *(line(row) for row in cells[1:])]

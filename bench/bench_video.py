"""Video indexing benchmark: real-time factor of sampling, decoding and end-to-end scanning, in one process.

    .venv/bin/python bench/bench_video.py                  # 1080p H.264 (60 s) + HEVC (30 s), ViT-B-16 random weights
    .venv/bin/python bench/bench_video.py --smoke          # 180p, 3 s each, tiny model (seconds)
    .venv/bin/python bench/bench_video.py --model tiny --interval 1

For each input it measures, in order, on the same file:
  sample     ``sample_frames`` at the frame interval (what the scanner does: decodes only the GOPs it samples and
             converts only the sampled frames)
  decode-all every frame decoded, none converted (the cheapest way that looks at every frame)
  convert-all every frame decoded and converted to RGB (what frame-count-based samplers that grab every frame pay)
  scan       ``services.scans.run()`` on a library holding only that video: probe, sample, thumbnail, preprocess,
             embed, SQLite, FAISS
  model      ``encode_prepared`` alone on as many frames as the scan embedded
Real-time factor = video seconds / wall seconds (higher is faster). Inputs are generated once (a slow pan over a
real 12 MP photo, phone-like GOP of 1 s) and cached under ``--cache``; results go to ``<out>/bench_video.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_video.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import product
from bench.common import (
    DataDirs,
    add_place_arguments,
    ensure_model,
    link_or_copy,
    log,
    measure_model_alone,
    rss_mb,
    timed,
    write_report,
)


def make_video(path: Path, codec: str, seconds: float, size: tuple[int, int], fps: int, source: Path) -> None:
    """A phone-like clip: a slow pan and zoom over a real photo, keyframes every second."""
    import av
    from PIL import Image

    width, height = size
    picture = Image.open(source).convert("RGB")
    # Panning over a picture ~3x the frame keeps generation fast; 1080p still pans over the full 12 MP photo.
    picture.thumbnail((width * 3, height * 3))
    tmp = path.with_suffix(f".{os.getpid()}.tmp{path.suffix}")
    frames = int(seconds * fps)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = fps
        stream.options = {"preset": "ultrafast"} if codec in {"libx264", "libx265"} else {}
        if codec == "libx265":
            stream.options["x265-params"] = f"keyint={fps}:log-level=error"
        for i in range(frames):
            progress = i / max(frames - 1, 1)
            zoom = 1.0 - 0.3 * progress
            crop_w, crop_h = picture.width * zoom, picture.width * zoom * height / width
            left = (picture.width - crop_w) * progress
            top = (picture.height - crop_h) * (0.5 + 0.4 * (progress - 0.5))
            box = (left, max(0.0, top), left + crop_w, max(0.0, top) + crop_h)
            frame = av.VideoFrame.from_image(picture.resize(size, Image.Resampling.BILINEAR, box=box))
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(tmp, path)


def decode_all(path: str, convert: bool) -> int:
    import av

    count = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if convert:
                frame.to_ndarray(format="rgb24")
            count += 1
    return count


def measure(video: Path, label: str, args, checkpoint: Path, data_dirs: DataDirs) -> dict:
    """Sampling, decoding every frame (with and without conversion), the scan and the model alone on ``video``."""
    info = product.probe(str(video))
    seconds = info.duration_ms / 1000
    interval_ms = round(args.interval * 1000)
    stats: dict = {}
    sample_s, frames = timed(lambda: list(product.sample_frames(str(video), interval_ms, 224, 384, stats=stats)))
    decode_s, decoded = timed(lambda: decode_all(str(video), convert=False))
    convert_s, _ = timed(lambda: decode_all(str(video), convert=True))

    with tempfile.TemporaryDirectory(prefix="ms-bench-video-") as library:
        link_or_copy(video, Path(library) / video.name)
        settings = product.Settings.from_env(
            environ={},
            library=library,
            data_dir=str(data_dirs.new()),
            model=str(checkpoint),
            frame_interval=args.interval,
        )
        services = product.Services(settings)
        try:
            scan = services.scans.run()
            embedded = services.index.ntotal
            pixels = [services.encoder.prepare(f.image) for f in frames[: max(embedded, 1)]]
            model_s = measure_model_alone(services.encoder, pixels, settings.batch_size)["seconds"]
        finally:
            services.close()
    return {
        "input": label,
        "file": video.name,
        "codec": info.codec,
        "size": f"{info.width}x{info.height}",
        "video_s": round(seconds, 2),
        "frames_in_file": decoded,
        "sampled": len(frames),
        "decoded_by_sampler": stats["decoded"],
        "sample_s": round(sample_s, 3),
        "decode_all_s": round(decode_s, 3),
        "convert_all_s": round(convert_s, 3),
        "scan_s": round(scan.seconds, 3),
        "embedded_frames": embedded,
        "model_alone_s": round(model_s, 3),
        "rtf_sample": round(seconds / sample_s, 1),
        "rtf_decode_all": round(seconds / decode_s, 1),
        "rtf_convert_all": round(seconds / convert_s, 1),
        "rtf_scan": round(seconds / scan.seconds, 2),
        "rtf_model_alone": round(seconds / model_s, 2),
        "scan_vs_model": round(model_s / scan.seconds, 2),
    }


def measure_long(video: Path, args) -> dict:
    """Sampling a long video: real-time factor and how much the process grows (memory must stay bounded)."""
    seconds = product.probe(str(video)).duration_ms / 1000
    before, _peak = rss_mb()
    stats: dict = {}
    count = 0
    started = time.perf_counter()
    for _frame in product.sample_frames(str(video), round(args.interval * 1000), 224, 384, stats=stats):
        count += 1  # frames are dropped at once, as the scanner hands them to the model
    elapsed = time.perf_counter() - started
    after, _peak = rss_mb()
    return {
        "video_s": round(seconds, 1),
        "sampled": count,
        "decoded_by_sampler": stats["decoded"],
        "packets": stats["packets"],
        "sample_s": round(elapsed, 2),
        "rtf_sample": round(seconds / elapsed, 1),
        "rss_growth_mb": round(after - before, 1),
    }


def render(rows: list[dict], interval: float) -> str:
    lines = [
        f"video indexing at MS_FRAME_INTERVAL={interval:g} s (real-time factor = video s / wall s; higher is faster)",
        "| input | video s | frames (file / sampled / decoded to sample) | sample | decode every frame | "
        "decode+convert every frame | end-to-end scan | model alone | scan / model |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['input']} ({r['codec']} {r['size']}) | {r['video_s']} | {r['frames_in_file']} / {r['sampled']} / "
            f"{r['decoded_by_sampler']} | {r['rtf_sample']}x ({r['sample_s']} s) | {r['rtf_decode_all']}x "
            f"({r['decode_all_s']} s) | {r['rtf_convert_all']}x ({r['convert_all_s']} s) | {r['rtf_scan']}x "
            f"({r['scan_s']} s) | {r['rtf_model_alone']}x ({r['model_alone_s']} s) | {r['scan_vs_model']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small inputs and the tiny model: checks it runs")
    parser.add_argument("--model", default=None, help="vit-b-16 (default), tiny, or a checkpoint path")
    parser.add_argument("--interval", type=float, default=2.0, help="frame interval in seconds (default 2)")
    add_place_arguments(parser, "bench_video.json", media=True)
    parser.add_argument("--long-minutes", type=float, default=None, help="also sample a long 320x180 video")
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    model = args.model or ("tiny" if args.smoke else "vit-b-16")
    checkpoint, described = ensure_model(cache, model)
    rows, long_row = run_inputs(cache, Path(args.media), checkpoint, args)
    current, peak = rss_mb()
    table = render(rows, args.interval)
    print(f"model: {described}\n{table}")
    if long_row:
        print(render_long(long_row))
    print(f"RSS now {current:.0f} MB, peak {peak:.0f} MB")
    report = {
        "model": described,
        "interval_s": args.interval,
        "rows": rows,
        "long": long_row,
        "rss_mb": current,
        "peak_rss_mb": peak,
    }
    write_report(args.out, "bench_video.json", report)
    return 0


def render_long(row: dict) -> str:
    """One line about sampling the long video."""
    return (
        f"long video: {row['video_s']} s of 320x180 H.264 sampled into {row['sampled']} frames "
        f"(decoded {row['decoded_by_sampler']} of {row['packets']}) in {row['sample_s']} s = "
        f"{row['rtf_sample']}x real time; RSS grew {row['rss_growth_mb']} MB"
    )


def run_inputs(cache: Path, media: Path, checkpoint: Path, args) -> tuple[list[dict], dict | None]:
    """Make (once) and measure the inputs; ``args`` needs ``smoke``, ``interval`` and ``long_minutes``."""
    source = media / "livephoto_iphone6s_train.jpg"
    if args.smoke:
        specs = [("H.264 180p", "libx264", 3, (320, 180)), ("HEVC 180p", "libx265", 3, (320, 180))]
    else:
        specs = [("H.264 1080p", "libx264", 60, (1920, 1080)), ("HEVC 1080p", "libx265", 30, (1920, 1080))]
    rows = []
    # ONNX exports are made once per model (tens of seconds for ViT-B-16): every data dir shares the cache's.
    data_dirs = DataDirs("ms-bench-video-data-", shared_models=Path(cache) / "data-models")
    try:
        for label, codec, seconds, size in specs:
            path = cache / "video" / f"{codec}-{size[0]}x{size[1]}-{seconds}s-30fps-gop30.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_file():
                log(f"making {path.name} ...")
                make_video(path, codec, seconds, size, 30, source)
            log(f"measuring {label} ...")
            rows.append(measure(path, label, args, checkpoint, data_dirs))
    finally:
        data_dirs.cleanup()
    long_minutes = args.long_minutes if args.long_minutes is not None else (0 if args.smoke else 60)
    long_row = None
    if long_minutes:
        path = cache / "video" / f"libx264-320x180-{long_minutes:g}min-30fps-gop30.mp4"
        if not path.is_file():
            log(f"making {path.name} ...")
            make_video(path, "libx264", long_minutes * 60, (320, 180), 30, source)
        log("sampling the long video ...")
        long_row = measure_long(path, args)
    return rows, long_row


if __name__ == "__main__":
    sys.exit(main())

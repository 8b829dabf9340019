"""Synthetic test videos written with PyAV (libx264): scenes at known times, variable frame rate, frame counters.

Used by the video tests and the benchmark; everything is written into tmp dirs, never into the library.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np
from PIL import Image

COUNTER_BITS = 10
COUNTER_BLOCK = 32


def write_video(
    path: str,
    frames: Iterable[tuple[float, Image.Image]],
    size: tuple[int, int],
    gop: int = 30,
    declared_rate: int = 30,
    codec: str = "libx264",
    audio_seconds: float = 0.0,
    options: dict[str, str] | None = None,
) -> None:
    """Encode (time in seconds, picture) pairs at exactly those presentation times (any spacing: VFR)."""
    width, height = size
    with av.open(path, "w") as out:
        stream = out.add_stream(codec, rate=declared_rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "bf": "0", **(options or {})} if codec == "libx264" else {}
        audio = None
        if audio_seconds > 0:
            audio = out.add_stream("aac", rate=48000)
            audio.layout = "stereo"
        for time_s, picture in frames:
            frame = av.VideoFrame.from_image(picture.convert("RGB").resize((width, height)))
            frame.pts = round(time_s * 1000)
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if audio is not None:
            samples = 1024
            total = int(audio_seconds * 48000)
            for start in range(0, total, samples):
                t = (np.arange(samples) + start) / 48000
                wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
                frame.sample_rate = 48000
                frame.pts = start
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)


def scene_times(scenes: list[float], frame_gaps: tuple[float, ...] = (0.05, 0.12, 0.08)) -> list[tuple[float, int]]:
    """(time, scene index) of each frame for scenes of the given lengths, with irregular gaps (variable rate)."""
    result = []
    start = 0.0
    for index, length in enumerate(scenes):
        t = start
        i = 0
        while t < start + length - 1e-9:
            result.append((round(t, 3), index))
            t += frame_gaps[i % len(frame_gaps)]
            i += 1
        start += length
    return result


def scene_video(path: str, pictures: list[Image.Image], lengths: list[float], size=(320, 240), **kwargs) -> None:
    """A variable-frame-rate video that shows ``pictures[i]`` for ``lengths[i]`` seconds, one after another."""
    scaled = [p.convert("RGB").resize(size) for p in pictures]
    write_video(path, ((t, scaled[i]) for t, i in scene_times(lengths)), size, **kwargs)


def counter_picture(number: int, size=(COUNTER_BLOCK * COUNTER_BITS, COUNTER_BLOCK * 2)) -> Image.Image:
    """A picture whose top row of blocks spells ``number`` in binary (white = 1), robust to lossy coding."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    block = width // COUNTER_BITS
    for bit in range(COUNTER_BITS):
        if number >> bit & 1:
            pixels[:, bit * block : (bit + 1) * block] = 255
    return Image.fromarray(pixels)


def read_counter(picture: Image.Image) -> int:
    """The number spelled by ``counter_picture`` (after any scaling or lossy coding)."""
    gray = np.asarray(picture.convert("L"), dtype=np.float32)
    block = gray.shape[1] / COUNTER_BITS
    number = 0
    for bit in range(COUNTER_BITS):
        middle = gray[:, int(bit * block + block / 4) : int((bit + 1) * block - block / 4)]
        if middle.mean() > 127:
            number |= 1 << bit
    return number


def counter_video(
    path: str, count: int, fps: int = 25, gop: int = 50, audio: bool = True, options: dict[str, str] | None = None
) -> None:
    """``count`` frames at ``fps``, frame i showing the number i; keyframes every ``gop`` frames."""
    size = (COUNTER_BLOCK * COUNTER_BITS, COUNTER_BLOCK * 2)
    frames = ((i / fps, counter_picture(i, size)) for i in range(count))
    audio_seconds = count / fps if audio else 0.0
    write_video(path, frames, size, gop=gop, declared_rate=fps, audio_seconds=audio_seconds, options=options)

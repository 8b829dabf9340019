"""Video decoding with PyAV: probe a file, and sample upright frames every N milliseconds by presentation time.

Sampling is driven by each frame's presentation timestamp (PTS), never by frame counts or the declared frame
rate: both lie in real files (a 30-frame MKV declaring 1072 frames at 1000 fps; frames that never decode).
Only the frames that are sampled are converted to RGB, and packets of a GOP that holds no sample are never
decoded at all: the demuxer tells keyframes apart, so the decoder starts at the keyframe before each sample.
Memory stays bounded for hours-long files: at most one GOP of compressed packets is held.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import math
import os
from collections.abc import Iterator

import av
from PIL import Image

from materialsearch.errors import ProblemCode
from materialsearch.media.capture_time import video_capture_time
from materialsearch.media.gps import NO_LOCATION, LocationReading, video_location

log = logging.getLogger(__name__)

# Containers and codecs a browser's <video> plays as they are; everything else gets an H.264 rendition.
BROWSER_CONTAINERS = {"mp4", "mov", "m4v", "webm"}
BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
BROWSER_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
# Decoded frames the frame threads of one decoder may hold together; a 10-bit 4:2:0 frame takes ~3 bytes/pixel.
FRAME_THREADS_BUDGET_BYTES = 256 << 20
BYTES_PER_PIXEL_10BIT = 3


class VideoError(ValueError):
    """A video that cannot be read; the message says why, for the errors list, and ``code`` is its stable code."""

    code: ProblemCode = ProblemCode.CORRUPT_VIDEO

    def __init__(self, message: str, code: ProblemCode | None = None):
        super().__init__(message)
        self.code = code or type(self).code


class NotAVideo(VideoError):
    """A readable media file without any video stream (an audio-only MP4/M4A): skipped, not broken."""

    code = ProblemCode.NOT_A_VIDEO


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video file is: its upright size, duration, codec and the metadata we use."""

    width: int
    height: int
    duration_ms: int | None
    codec: str
    pixel_format: str | None
    container: str
    rotation: int
    has_audio: bool
    created_at: dt.datetime | None
    content_identifier: str | None
    location: LocationReading = NO_LOCATION

    @property
    def browser_playable(self) -> bool:
        """Whether browsers play the original as it is (H.264 8-bit in MP4/MOV, VP8/VP9/AV1 in WebM)."""
        if self.codec not in BROWSER_CODECS:
            return False
        if self.codec == "h264" and self.pixel_format not in BROWSER_PIXEL_FORMATS:
            return False  # 10-bit or 4:2:2 H.264 does not play in browsers
        return self.container in BROWSER_CONTAINERS


@dataclasses.dataclass
class Frame:
    """A sampled frame: its presentation time and the upright RGB picture."""

    time_ms: int
    image: Image.Image


def _open(source: str | bytes):
    """Open a path or in-memory bytes with PyAV; VideoError with the reason if it is not a video."""
    try:
        container = av.open(io.BytesIO(source) if isinstance(source, bytes) else source, metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoError(f"not a readable video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise NotAVideo("not a video: the file holds no video stream")
    if container.streams.video[0].codec_context is None:
        # FFmpeg knows the container but has no decoder for the stream (e.g. Dolby Vision over AV1, "dav1").
        container.close()
        raise VideoError("no decoder for this video's codec in the bundled FFmpeg", ProblemCode.NO_DECODER)
    return container


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.rstrip(".").lower() if text else type(exc).__name__


def _container_name(container) -> str:
    names = container.format.name.split(",")
    # PyAV names ISO media "mov,mp4,m4a,3gp,3g2,mj2"; the file's major brand tells MP4 from QuickTime.
    if "mov" in names:
        brand = container.metadata.get("major_brand", "").strip()
        return "mov" if brand == "qt" else "mp4"
    if "matroska" in names:
        # Matroska and WebM share a demuxer; only VP8/VP9/AV1 in it is WebM (what browsers play).
        return "webm" if container.streams.video[0].codec_context.name in {"vp8", "vp9", "av1"} else "mkv"
    return names[0]


def _display_rotation(frame) -> int:
    """Degrees ``frame`` must be turned counter-clockwise for display (0, 90, 180, 270); 0 without a frame."""
    return round(getattr(frame, "rotation", 0) or 0) % 360


def probe(source: str | bytes, fallback_zone: dt.tzinfo | None = None) -> VideoInfo:
    """Read a video's upright size, duration, codec and capture metadata (decodes one frame for the rotation).

    ``fallback_zone`` converts a UTC creation time when the file carries no offset or location (None: local).
    """
    with _open(source) as container:
        stream = container.streams.video[0]
        _bound_decoder_threads(stream)
        metadata = {**container.metadata, **stream.metadata}
        try:
            first = next(iter(container.decode(stream)), None)
        except (av.FFmpegError, EOFError):
            first = None
        rotation = _display_rotation(first)
        width, height = stream.codec_context.width, stream.codec_context.height
        if first is not None:
            width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        duration_ms = _duration_ms(container, stream)
        codec_format = stream.codec_context.format
        return VideoInfo(
            width=width,
            height=height,
            duration_ms=duration_ms,
            codec=stream.codec_context.name,
            pixel_format=codec_format.name if codec_format is not None else None,
            container=_container_name(container),
            rotation=rotation,
            has_audio=bool(container.streams.audio),
            created_at=video_capture_time(metadata, fallback_zone),
            content_identifier=metadata.get("com.apple.quicktime.content.identifier"),
            location=video_location(metadata),
        )


def read_metadata(source: str | bytes) -> dict[str, str]:
    """A video's container and stream metadata (tags such as its ISO 6709 location), without decoding a frame."""
    with _open(source) as container:
        return {**container.metadata, **container.streams.video[0].metadata}


def _duration_ms(container, stream) -> int | None:
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base) * 1000)
    if container.duration is not None:
        return round(container.duration / 1000)  # microseconds
    return None


def _scaled_size(width: int, height: int, min_side: int, min_long_side: int) -> tuple[int, int]:
    """The smallest size (same aspect) whose short side ≥ min_side and long side ≥ min_long_side; never upscales."""
    short, long = min(width, height), max(width, height)
    scale = max(min_side / short, min_long_side / long)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _upright(image: Image.Image, rotation: int) -> Image.Image:
    # ``rotation`` is counter-clockwise, as PIL's rotate; transpose is exact and cheap on a small frame.
    if rotation == 90:
        return image.transpose(Image.Transpose.ROTATE_90)
    if rotation == 180:
        return image.transpose(Image.Transpose.ROTATE_180)
    if rotation == 270:
        return image.transpose(Image.Transpose.ROTATE_270)
    return image


def _to_image(frame, min_side: int, min_long_side: int) -> Image.Image:
    rotation = _display_rotation(frame)
    width, height = frame.width, frame.height
    if rotation in (90, 270):  # the size limits are about the upright picture
        w, h = _scaled_size(height, width, min_side, min_long_side)
        w, h = h, w
    else:
        w, h = _scaled_size(width, height, min_side, min_long_side)
    image = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_image()
    return _upright(image, rotation)


def decoder_threads(width: int, height: int, cpus: int) -> int:
    """How many frame threads a decoder may use: each holds a whole decoded frame, so large frames get fewer.

    FFmpeg's default is one thread per core (plus one): on a 16-core NAS an 8K HEVC decode then holds ~1.8 GB
    (measured: 485 MB with 1-2 threads, 1.0 GB with 8, 1.8 GB with 16). The threads' frames stay within
    ``FRAME_THREADS_BUDGET_BYTES``; small videos still get every core.
    """
    frame_bytes = max(1, width * height * BYTES_PER_PIXEL_10BIT)
    return max(1, min(cpus, FRAME_THREADS_BUDGET_BYTES // frame_bytes))


def _bound_decoder_threads(stream) -> None:
    context = stream.codec_context
    stream.thread_type = "AUTO"
    context.thread_count = decoder_threads(context.width or 0, context.height or 0, os.cpu_count() or 1)


def _pts_ms(pts, time_base) -> int | None:
    if pts is None or time_base is None:
        return None
    return math.floor(float(pts * time_base) * 1000 + 0.5)


def sample_frames(
    source: str | bytes, interval_ms: int, min_side: int = 224, min_long_side: int = 0, stats: dict | None = None
) -> Iterator[Frame]:
    """Yield one upright frame at or after every multiple of ``interval_ms`` (by PTS); at least one frame.

    Frames are scaled down (never up) to the smallest size with short side ≥ ``min_side`` and long side ≥
    ``min_long_side``. Undecodable packets are skipped; VideoError if no frame decodes at all. ``stats``, if
    given, receives how many packets were read and how many frames were decoded (for benchmarks and tests).
    """
    if interval_ms <= 0:
        raise ValueError("interval_ms must be positive")
    with _open(source) as container:
        stream = container.streams.video[0]
        _bound_decoder_threads(stream)
        # Frames no other frame refers to are never decoded: a sample is the first *reference* frame at or after
        # its time (a frame or two later at most). Where keyframes are far apart (a 6-minute 4K60 AV1 with one
        # every 5.35 s) nearly every frame must be decoded to reach the samples, and skipping the others halves
        # that work or better (measured there: 2.6x fewer seconds).
        stream.codec_context.skip_frame = "NONREF"
        time_base = stream.time_base
        sampler = _GopSampler(stream.codec_context, time_base, interval_ms)
        yielded = 0
        errors = 0
        last_error = ""
        try:
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except (av.FFmpegError, EOFError) as exc:  # a damaged container: keep what decoded so far
                    last_error = _reason(exc)
                    errors += 1
                    break
                for frame in sampler.feed(packet):
                    yielded += 1
                    yield Frame(sampler.last_time_ms, _to_image(frame, min_side, min_long_side))
            for frame in sampler.finish():
                yielded += 1
                yield Frame(sampler.last_time_ms, _to_image(frame, min_side, min_long_side))
        finally:
            errors += sampler.errors
            last_error = sampler.last_error or last_error
            if stats is not None:
                stats.update(packets=sampler.packets, decoded=sampler.decoded, sampled=yielded)
        if yielded == 0:
            detail = f" ({last_error})" if last_error else ""
            raise VideoError(f"no decodable video frame{detail}", ProblemCode.NO_VIDEO_FRAMES)
        if errors:
            name = source if isinstance(source, str) else "embedded video"
            log.info("%s: %d undecodable packets skipped (%s)", name, errors, last_error)


class _GopSampler:
    """Decides which packets to decode: only those from the keyframe before a sample up to the sampled frame.

    Packets after a sample are held (not decoded) until either a keyframe arrives — then they can never be
    needed and are dropped — or a packet reaches the next sample time, when the held run is decoded. When the
    timestamps are missing, every packet is decoded and sampling falls back to decoded-frame times.
    """

    def __init__(self, codec_context, time_base, interval_ms: int):
        self.codec = codec_context
        self.time_base = time_base
        self.interval_ms = interval_ms
        self.next_ms = 0
        self.held: list = []
        self.in_sync = True  # the decoder has seen every packet since the last keyframe that was held
        self.active = True  # decoding until a frame reaches next_ms
        self.last_time_ms = 0
        self.errors = 0
        self.last_error = ""
        self.packets = 0
        self.decoded = 0

    def _decode(self, packet) -> list:
        try:
            frames = self.codec.decode(packet)
            self.decoded += len(frames)
            return frames
        except (av.FFmpegError, EOFError, ValueError) as exc:
            self.errors += 1
            self.last_error = _reason(exc)
            return []

    def _is_sample(self, frame) -> bool:
        """Whether ``frame`` is the next sample (then the next sample time moves on)."""
        time_ms = _pts_ms(frame.pts, self.time_base)
        if time_ms is None:
            time_ms = _pts_ms(getattr(frame, "dts", None), self.time_base)
        if time_ms is None or time_ms < self.next_ms:
            return False
        self.last_time_ms = max(time_ms, 0)
        self.next_ms = (self.last_time_ms // self.interval_ms + 1) * self.interval_ms
        self.active = False
        return True

    def feed(self, packet) -> Iterator:
        """Yield the sample frames this packet completes."""
        if packet.size == 0:
            return
        self.packets += 1
        packet_ms = _pts_ms(packet.pts, self.time_base)
        if packet_ms is None:
            packet_ms = _pts_ms(packet.dts, self.time_base)
        if not self.active:
            if packet.is_keyframe:
                self.held = [packet]
                self.in_sync = False
            else:
                self.held.append(packet)
            if packet_ms is None or packet_ms >= self.next_ms:
                self.active = True
                if not self.in_sync:
                    self.codec.flush_buffers()
                to_decode, self.held = self.held, []
                self.in_sync = True
                for held_packet in to_decode:
                    yield from self._emit(held_packet)
            return
        yield from self._emit(packet)

    def _emit(self, packet) -> Iterator:
        # After a sample the rest of the packet's frames only keep the decoder in step: none is converted.
        for frame in self._decode(packet):
            if self.active and self._is_sample(frame):
                yield frame

    def finish(self) -> Iterator:
        """Drain the decoder at the end of the stream (only a sample still being looked for needs it)."""
        if self.active:
            yield from self._emit(None)


def frame_at(source: str | bytes, time_ms: int, min_side: int = 224, min_long_side: int = 0) -> Image.Image:
    """The upright frame shown at ``time_ms`` (the first frame whose PTS is ≥ it), by seeking to the keyframe before.

    Where the seek leaves nothing to decode (an MPEG-TS/AVCHD stream whose first frames come before its declared
    start time), the stream is decoded from its beginning instead.
    """
    with _open(source) as container:
        stream = container.streams.video[0]
        _bound_decoder_threads(stream)
        try:
            container.seek(int(time_ms / 1000 / stream.time_base), stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            container.seek(0)
        last, error = _decode_until(container, stream, time_ms, min_side, min_long_side)
    if last is None and error is None:
        with _open(source) as container:
            stream = container.streams.video[0]
            _bound_decoder_threads(stream)
            last, error = _decode_until(container, stream, time_ms, min_side, min_long_side)
    if last is None:
        detail = f" ({error})" if error else ""
        raise VideoError(f"no decodable frame at {time_ms} ms{detail}", ProblemCode.NO_VIDEO_FRAMES)
    return last


def _decode_until(
    container, stream, time_ms: int, min_side: int, min_long_side: int
) -> tuple[Image.Image | None, str | None]:
    """Decode from where ``container`` stands up to the first frame at or after ``time_ms`` (or the last one):
    that frame, upright, and the decoder's complaint when nothing decoded because of an error."""
    time_base = stream.time_base
    last = None
    try:
        for frame in container.decode(stream):
            last = frame
            frame_ms = _pts_ms(frame.pts, time_base)
            if frame_ms is not None and frame_ms >= time_ms:
                break
    except (av.FFmpegError, EOFError) as exc:
        if last is None:
            return None, _reason(exc)
    return (None if last is None else _to_image(last, min_side, min_long_side)), None

"""Browser-playable MP4s cut or converted from library videos with ffmpeg, cached under the data dir.

ffmpeg comes from the ``imageio-ffmpeg`` wheel (a static build with libx264), so nothing is downloaded at run
time. Clips are re-encoded, not stream-copied: a keyframe copy would start on the keyframe before ``start``
(black or early frames); re-encoding with input seeking starts exactly at the first frame at or after ``start``.
Outputs are written to a temporary name and renamed, so a half-written file is never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import threading
import time

log = logging.getLogger(__name__)

# Longest side of converted videos: enough for a browser view, and much faster to encode than 4K.
MAX_RENDITION_SIDE = 1920
# How long one ffmpeg run may take before it is stopped (a clip is bounded by MS_MAX_CLIP_SECONDS).
FFMPEG_TIMEOUT_S = 3600


class TranscodeError(RuntimeError):
    """ffmpeg could not produce the file; the message says why."""


def ffmpeg_executable() -> str:
    """The ffmpeg binary shipped by imageio-ffmpeg (or IMAGEIO_FFMPEG_EXE / a system ffmpeg it finds)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _key(*parts) -> str:
    return hashlib.blake2b("\x00".join(str(p) for p in parts).encode(), digest_size=16).hexdigest()


class Transcoder:
    """Makes and caches clips and full H.264 renditions; at most ``workers`` ffmpeg runs at a time."""

    def __init__(self, root: str, cache_bytes: int, workers: int = 1, threads: int = 2):
        self.root = root
        self.cache_bytes = cache_bytes
        self.threads = threads
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._building: dict[str, threading.Event] = {}
        self._failed: dict[str, str] = {}

    # --- public -----------------------------------------------------------------------------------------------
    def clip_path(self, source: str, size: int, mtime_ns: int, start_ms: int, end_ms: int) -> str:
        """Where the clip [start_ms, end_ms) of this exact file version is cached."""
        return os.path.join(self.root, "clips", _key("clip", source, size, mtime_ns, start_ms, end_ms) + ".mp4")

    def rendition_path(self, source: str, size: int, mtime_ns: int, offset: int = 0) -> str:
        """Where the full H.264 rendition of this exact file version (from byte ``offset``) is cached."""
        return os.path.join(self.root, "renditions", _key("full", source, size, mtime_ns, offset) + ".mp4")

    def clip(self, source: str, size: int, mtime_ns: int, start_ms: int, end_ms: int) -> str:
        """The cached clip, made now if needed (blocks)."""
        target = self.clip_path(source, size, mtime_ns, start_ms, end_ms)
        # Both bounds as input options: they then refer to the source's own timeline, so the clip holds exactly
        # the frames shown in [start, end).
        args = ["-ss", _seconds(start_ms), "-to", _seconds(end_ms), "-i", source]
        return self._make(target, args)

    def rendition(self, source: str, size: int, mtime_ns: int, offset: int = 0) -> str:
        """The cached full rendition, made now if needed (blocks)."""
        target = self.rendition_path(source, size, mtime_ns, offset)
        return self._make(target, self._input_args(source, offset))

    def start_rendition(self, source: str, size: int, mtime_ns: int, offset: int = 0) -> tuple[str, str | None]:
        """Start making the full rendition in the background: ("ready"|"working"|"failed", path or reason)."""
        target = self.rendition_path(source, size, mtime_ns, offset)
        if os.path.isfile(target):
            return "ready", target
        with self._lock:
            if target in self._failed:
                return "failed", self._failed[target]
            if target in self._building:
                return "working", None
        thread = threading.Thread(
            target=self._background, args=(target, self._input_args(source, offset)), name="transcode", daemon=True
        )
        thread.start()
        return "working", None

    # --- internals --------------------------------------------------------------------------------------------
    @staticmethod
    def _input_args(source: str, offset: int) -> list[str]:
        if offset:
            # A motion photo: the MP4 starts inside the still's file; ffmpeg's subfile protocol reads it in place.
            return ["-i", f"subfile,,start,{offset},end,0,,:{source}"]
        return ["-i", source]

    def _background(self, target: str, args: list[str]) -> None:
        try:
            self._make(target, args)
        except TranscodeError as exc:  # recorded in _failed by _make; start_rendition reports it
            log.warning("cannot make %s: %s", target, exc)

    def _make(self, target: str, input_args: list[str]) -> str:
        while True:
            if os.path.isfile(target):
                _touch(target)
                return target
            with self._lock:
                waiting = self._building.get(target)
                if waiting is None:
                    mine = threading.Event()
                    self._building[target] = mine
            if waiting is not None:
                waiting.wait()
                with self._lock:
                    if target in self._failed:
                        raise TranscodeError(self._failed[target])
                continue
            try:
                with self._slots:
                    self._run_ffmpeg(target, input_args)
                self._evict(keep=target)
                return target
            except TranscodeError as exc:
                with self._lock:
                    self._failed[target] = str(exc)
                raise
            finally:
                with self._lock:
                    del self._building[target]
                mine.set()

    def _run_ffmpeg(self, target: str, input_args: list[str]) -> None:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = f"{target}.{os.getpid()}.{threading.get_ident()}.part"
        scale = (
            f"scale='min(iw,{MAX_RENDITION_SIDE})':'min(ih,{MAX_RENDITION_SIDE})'"
            ":force_original_aspect_ratio=decrease:force_divisible_by=2"
        )
        command = [
            ffmpeg_executable(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            *input_args,
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-vf",
            scale,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
            "-threads",
            str(self.threads),
            "-f",
            "mp4",
            "-y",
            partial,
        ]
        started = time.monotonic()
        try:
            result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            _remove(partial)
            raise TranscodeError(f"ffmpeg took longer than {FFMPEG_TIMEOUT_S} s") from None
        except OSError as exc:
            raise TranscodeError(f"cannot run ffmpeg ({exc.strerror or exc})") from None
        if result.returncode != 0 or not os.path.isfile(partial) or os.path.getsize(partial) == 0:
            _remove(partial)
            detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TranscodeError("ffmpeg failed: " + (detail[-1] if detail else f"exit status {result.returncode}"))
        os.replace(partial, target)
        log.info("made %s in %.1fs", os.path.basename(target), time.monotonic() - started)

    def _evict(self, keep: str) -> None:
        """Delete the least recently used cached files beyond the cache size."""
        files = []
        for folder in ("clips", "renditions"):
            directory = os.path.join(self.root, folder)
            if not os.path.isdir(directory):
                continue
            for entry in os.scandir(directory):
                if entry.is_file() and entry.name.endswith(".mp4"):
                    stat = entry.stat()
                    files.append((stat.st_mtime, stat.st_size, entry.path))
        total = sum(size for _mtime, size, _path in files)
        for _mtime, size, path in sorted(files):
            if total <= self.cache_bytes:
                break
            if path == keep:
                continue
            _remove(path)
            total -= size


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _touch(path: str) -> None:
    # Used files move to the back of the eviction queue (mtime, since atime is often off on NAS mounts).
    with contextlib.suppress(OSError):  # a read-only cache still serves; it just evicts less precisely
        os.utime(path)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)

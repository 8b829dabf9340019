"""Typed settings for materialsearch, read from environment variables.

Every setting lives in one registry (``REGISTRY``) with its default and help text; the README documents
each one and a test proves it. This module imports nothing heavy and has no side effects.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_paths(raw: str) -> tuple[str, ...]:
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in raw.split(os.pathsep) if p.strip())


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_extensions(raw: str) -> tuple[str, ...]:
    return tuple(part.lower().lstrip(".") for part in _parse_list(raw))


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(f"must be more than 0, got {value}")
    return value


def _device(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"auto", "cpu", "cuda"} and not value.startswith("cuda:"):
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {raw!r}")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a TCP port 0-65535, got {value}")
    return value


def _cron(raw: str) -> str:
    value = " ".join(raw.split())
    if value:
        # Imported here: parsing settings must stay light, and only a non-empty value needs the parser.
        from materialsearch.schedule import cron_trigger

        cron_trigger(value)  # raises ValueError with the reason
    return value


def _duration(raw: str) -> int:
    """Seconds from ``90``, ``90s``, ``30m``, ``6h`` or ``1d``; 0 (or empty) means off."""
    value = raw.strip().lower()
    if not value:
        return 0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    factor = units.get(value[-1], 1)
    number = value[:-1] if value[-1] in units else value
    try:
        seconds = int(float(number) * factor)
    except ValueError:
        raise ValueError(f"expected a duration such as 90m, 6h or 1d (or seconds), got {raw!r}") from None
    if seconds < 0 or (0 < seconds < 60):
        raise ValueError(f"must be 0 (off) or at least one minute, got {raw!r}")
    return seconds


def _window(raw: str) -> tuple[int, int] | None:
    """``HH:MM-HH:MM`` → (start, end) in minutes after midnight; empty → None (any time)."""
    value = raw.strip()
    if not value:
        return None
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError(f"expected HH:MM-HH:MM, e.g. 22:30-07:00, got {raw!r}")
    minutes = []
    for part in parts:
        hours, _, mins = part.strip().partition(":")
        if not (hours.isdigit() and mins.isdigit() and int(hours) < 24 and int(mins) < 60):
            raise ValueError(f"expected HH:MM-HH:MM with times 00:00-23:59, e.g. 22:30-07:00, got {raw!r}")
        minutes.append(int(hours) * 60 + int(mins))
    if minutes[0] == minutes[1]:
        raise ValueError(f"the window starts and ends at the same time ({raw!r}); leave it empty for any time")
    return minutes[0], minutes[1]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One entry of the registry: field name, environment variable, parser, default and help."""

    field: str
    env: str
    parse: Callable[[str], Any]
    default: str
    help: str


REGISTRY: tuple[Setting, ...] = (
    Setting(
        "library",
        "MS_LIBRARY",
        _parse_paths,
        "",
        "Folder(s) to index, separated by the OS path separator (`:` on Linux). Never written to.",
    ),
    Setting(
        "data_dir",
        "MS_DATA_DIR",
        lambda r: os.path.abspath(os.path.expanduser(r)),
        "./data",
        "Where everything we write lives: SQLite database, FAISS index, thumbnails, `models/`.",
    ),
    Setting(
        "model",
        "MS_MODEL",
        str.strip,
        "ViT-B-16",
        "A cn_clip model name (RN50, ViT-B-16, ViT-L-14, ViT-L-14-336, ViT-H-14), whose weights are "
        "read from (or downloaded into) `$MS_DATA_DIR/models/`, or the path of a cn_clip checkpoint file.",
    ),
    Setting(
        "model_arch",
        "MS_MODEL_ARCH",
        str.strip,
        "",
        "Architecture of a checkpoint file given in MS_MODEL: a cn_clip name such as `ViT-B-16`, or "
        "`VISION@TEXT` config names. Not needed when the checkpoint records its architecture.",
    ),
    Setting(
        "offline",
        "MS_OFFLINE",
        _parse_bool,
        "false",
        "Never try to download model weights; fail at once with a message saying where to put them.",
    ),
    Setting(
        "device",
        "MS_DEVICE",
        _device,
        "auto",
        "Where the model runs: `auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.",
    ),
    Setting("host", "MS_HOST", str.strip, "127.0.0.1", "Address the web server listens on."),
    Setting("port", "MS_PORT", _port, "5000", "Port the web server listens on."),
    Setting(
        "image_extensions",
        "MS_IMAGE_EXTENSIONS",
        _parse_extensions,
        "jpg,jpeg,png,webp,gif,bmp,tif,tiff,heic,heif,avif",
        "Comma-separated file extensions indexed as images (case-insensitive).",
    ),
    Setting(
        "skip_patterns",
        "MS_SKIP_PATTERNS",
        _parse_list,
        ".*,@eaDir,#recycle,#snapshot,$RECYCLE.BIN,System Volume Information,lost+found",
        "Comma-separated glob patterns; a file or folder whose name matches one is not scanned "
        "(hidden files, NAS thumbnail and recycle folders by default).",
    ),
    Setting(
        "min_image_size",
        "MS_MIN_IMAGE_SIZE",
        _non_negative_int,
        "64",
        "Images whose width or height is below this many pixels (icons, spacers) are skipped.",
    ),
    Setting(
        "max_image_pixels",
        "MS_MAX_IMAGE_PIXELS",
        _positive_int,
        "250000000",
        "Images declaring more pixels than this are refused as decompression bombs "
        "(the default admits 200 MP phone photos).",
    ),
    Setting(
        "batch_size",
        "MS_BATCH_SIZE",
        _positive_int,
        "8",
        "Images encoded by the model at once (8 measured fastest on a 2-core CPU); also the unit of work "
        "committed to the database.",
    ),
    Setting(
        "decode_threads",
        "MS_DECODE_THREADS",
        _positive_int,
        str(min(4, os.cpu_count() or 1)),
        "Threads that read and decode files ahead of the model.",
    ),
    Setting(
        "torch_threads",
        "MS_TORCH_THREADS",
        _non_negative_int,
        "0",
        "Threads torch uses for the model; 0 keeps torch's default (one per core).",
    ),
    Setting(
        "thumbnail_size",
        "MS_THUMBNAIL_SIZE",
        _positive_int,
        "384",
        "Longest edge, in pixels, of the cached thumbnails shown in results.",
    ),
    Setting(
        "preview_size",
        "MS_PREVIEW_SIZE",
        _positive_int,
        "2048",
        "Longest edge of the large rendition shown for formats browsers cannot display (HEIC, TIFF).",
    ),
    Setting("page_size", "MS_PAGE_SIZE", _positive_int, "40", "Results per page when a search does not give `limit`."),
    Setting(
        "max_page_size",
        "MS_MAX_PAGE_SIZE",
        _positive_int,
        "500",
        "Largest `limit` a search accepts; larger asks get a 400.",
    ),
    Setting(
        "max_upload_bytes",
        "MS_MAX_UPLOAD_BYTES",
        _positive_int,
        str(32 * 1024 * 1024),
        "Largest query image (or request body) accepted, in bytes.",
    ),
    # --- videos, Live Photos and motion photos ---
    Setting(
        "video_extensions",
        "MS_VIDEO_EXTENSIONS",
        _parse_extensions,
        "mov,mp4,m4v,mkv,webm,avi,3gp,mts,m2ts",
        "Comma-separated file extensions indexed as videos (case-insensitive). A video with the same name as a "
        "photo in the same folder is treated as that photo's Live Photo motion.",
    ),
    Setting(
        "frame_interval",
        "MS_FRAME_INTERVAL",
        _positive_float,
        "2",
        "Seconds between the video frames that are embedded, by presentation time. 2 s finds scenes that last "
        "a couple of seconds while a 1-hour video costs 1800 frames; lower is finer and slower.",
    ),
    Setting(
        "max_clip_seconds",
        "MS_MAX_CLIP_SECONDS",
        _positive_int,
        "600",
        "Longest span `/api/items/ID/clip` cuts, in seconds (each clip is re-encoded, which costs CPU).",
    ),
    Setting(
        "transcode_cache_mb",
        "MS_TRANSCODE_CACHE_MB",
        _positive_int,
        "2048",
        "Disk space for cached video clips and browser-playable (H.264) renditions, in MiB; least recently "
        "used files are deleted beyond it.",
    ),
    # --- deployment and security (login, API tokens, symlinks, serving) ---------------------------------------
    Setting(
        "password",
        "MS_PASSWORD",
        str,
        "",
        "Password for the web page and the API. Empty (default, with MS_PASSWORD_HASH empty): no login at all, "
        "which is only safe on 127.0.0.1. Set this or MS_PASSWORD_HASH, not both.",
    ),
    Setting(
        "password_hash",
        "MS_PASSWORD_HASH",
        str.strip,
        "",
        "The password as a hash made by `python -m materialsearch hash-password` (so the password itself is not "
        "kept in your compose file); write each `$` as `$$` in docker-compose.yml.",
    ),
    Setting(
        "session_days",
        "MS_SESSION_DAYS",
        _positive_int,
        "30",
        "Days a login lasts without being used; every visit extends it. Changing the password logs everyone out.",
    ),
    Setting(
        "login_attempts",
        "MS_LOGIN_ATTEMPTS",
        _positive_int,
        "5",
        "Failed logins allowed from one client address within MS_LOGIN_WINDOW seconds; further tries get 429 "
        "until the window has passed.",
    ),
    Setting(
        "login_window",
        "MS_LOGIN_WINDOW",
        _positive_int,
        "300",
        "Seconds over which failed logins are counted (see MS_LOGIN_ATTEMPTS).",
    ),
    Setting(
        "trusted_proxy",
        "MS_TRUSTED_PROXY",
        str.strip,
        "",
        "Address of your reverse proxy (or `*`), whose X-Forwarded-For/-Proto/-Host headers are then believed: "
        "login limits apply per real client and cookies are marked Secure behind HTTPS. Empty: headers ignored.",
    ),
    Setting(
        "request_timeout",
        "MS_REQUEST_TIMEOUT",
        _positive_int,
        "120",
        "Seconds a connection may stay idle (slow client, stalled upload) before the server closes it.",
    ),
    Setting(
        "follow_symlinks",
        "MS_FOLLOW_SYMLINKS",
        _parse_bool,
        "false",
        "Index files and folders reached through symlinks that point outside the library (and serve them). "
        "Off by default: such links are skipped and never served.",
    ),
    # --- scheduling (issue 4) ---
    Setting(
        "scan_cron",
        "MS_SCAN_CRON",
        _cron,
        "0 3 * * *",
        "When scheduled scans run: a 5-field cron expression (minute hour day month weekday, 0 or 7 = Sunday) "
        "in the server's local time zone (`TZ`); the default scans daily at 03:00. Empty = no cron schedule.",
    ),
    Setting(
        "scan_interval",
        "MS_SCAN_INTERVAL",
        _duration,
        "0",
        "Also scan every this long, counted from start-up: `90m`, `6h`, `1d` or seconds. `0` = off.",
    ),
    Setting(
        "scan_window",
        "MS_SCAN_WINDOW",
        _window,
        "",
        "Hours in which scheduled and start-up scans may run, `HH:MM-HH:MM` local time, may cross midnight "
        "(`22:30-07:00`). Outside it a running scan pauses; it resumes inside. A scan started or resumed by hand "
        "ignores it. Empty = any time.",
    ),
    Setting(
        "scan_on_start",
        "MS_SCAN_ON_START",
        _parse_bool,
        "true",
        "Scan once when the server starts. (After a model change the re-embedding starts at start-up anyway.)",
    ),
    # --- speed (issue 6) ---
    Setting(
        "backend",
        "MS_BACKEND",
        _choice("auto", "torch", "onnx"),
        "auto",
        "What runs the model: `torch`, `onnx` (ONNX Runtime, CPU; the towers are exported once per model into "
        "`$MS_DATA_DIR/models/onnx/`) or `auto` (torch on CUDA or on a CPU with native bf16, else onnx).",
    ),
    Setting(
        "precision",
        "MS_PRECISION",
        _choice("auto", "fp32", "bf16", "fp16", "int8"),
        "auto",
        "Model precision: `fp32`, `bf16` (torch; fast only on CPUs with AVX512-BF16/AMX), `fp16` (torch on "
        "CUDA), `int8` (onnx: int8 weights, used only when its vectors keep cosine >= 0.999 to fp32 on the "
        "loaded weights, else fp32) or `auto` (fp16 on CUDA, bf16 on a native-bf16 CPU, else int8).",
    ),
    Setting(
        "index_kind",
        "MS_INDEX",
        _choice("auto", "flat", "ivf"),
        "auto",
        "Vector index: `flat` (exact), `ivf` (approximate, FAISS IVF) or `auto` (exact below "
        "MS_ANN_THRESHOLD vectors, IVF above, built and retrained in the background as the collection grows).",
    ),
    Setting(
        "ann_threshold",
        "MS_ANN_THRESHOLD",
        _positive_int,
        "50000",
        "With MS_INDEX=auto, the number of vectors from which search switches from exact to IVF.",
    ),
    Setting(
        "ivf_nprobe",
        "MS_IVF_NPROBE",
        _positive_int,
        "32",
        "IVF lists visited per query: higher is slower and closer to exact (32 gave recall@10 >= 0.98 at 1M).",
    ),
    Setting(
        "index_sq8",
        "MS_INDEX_SQ8",
        _parse_bool,
        "false",
        "Store IVF vectors as 8-bit scalars (4x less memory, slightly lower recall); applies to IVF only.",
    ),
    Setting(
        "heic_thumbnail",
        "MS_HEIC_THUMBNAIL",
        _parse_bool,
        "true",
        "Embed HEIC/HEIF photos from the thumbnail they carry when it covers the model's input size "
        "(~60x faster than a full decode); off decodes the full picture.",
    ),
)

_BY_FIELD = {s.field: s for s in REGISTRY}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The application's settings; build with ``Settings.from_env()``."""

    library: tuple[str, ...]
    data_dir: str
    model: str
    model_arch: str
    offline: bool
    device: str
    host: str
    port: int
    image_extensions: tuple[str, ...]
    skip_patterns: tuple[str, ...]
    min_image_size: int
    max_image_pixels: int
    batch_size: int
    decode_threads: int
    torch_threads: int
    thumbnail_size: int
    preview_size: int
    page_size: int
    max_page_size: int
    max_upload_bytes: int
    video_extensions: tuple[str, ...]
    frame_interval: float
    max_clip_seconds: int
    transcode_cache_mb: int
    password: str = dataclasses.field(repr=False)
    password_hash: str = dataclasses.field(repr=False)
    session_days: int
    login_attempts: int
    login_window: int
    trusted_proxy: str
    request_timeout: int
    follow_symlinks: bool
    scan_cron: str
    scan_interval: int
    scan_window: tuple[int, int] | None
    scan_on_start: bool
    backend: str
    precision: str
    index_kind: str
    ann_threshold: int
    ivf_nprobe: int
    index_sq8: bool
    heic_thumbnail: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default: ``os.environ``); keyword overrides win.

        Overrides may be given as strings (parsed like the environment) or as ready values.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in REGISTRY:
            if setting.field in overrides:
                raw = overrides.pop(setting.field)
                if not isinstance(raw, str):
                    values[setting.field] = raw
                    continue
            else:
                raw = environ.get(setting.env, setting.default)
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{setting.env}={raw!r} is not valid: {exc}") from None
        if overrides:
            raise SettingsError(f"unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    @property
    def models_dir(self) -> str:
        """Folder holding downloaded or copied model weights."""
        return os.path.join(self.data_dir, "models")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (values, not strings)."""
        unknown = set(changes) - set(_BY_FIELD)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

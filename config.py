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

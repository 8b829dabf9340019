"""Settings for materialsearch: each one declared once, here, with its type, default, parser and help.

A setting is a field of ``Settings`` (pydantic-settings); its environment variable is ``MS_`` and the field's
name in capitals, or the field's alias (``index_kind`` reads ``MS_INDEX``). The README's settings table and the
command line's ``--help`` are generated from these declarations (``python -m materialsearch settings-doc
--write`` rewrites the table; a test fails when it is out of date). Importing this module reads nothing and
imports nothing of the application.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "MS_"
# Camera RAW formats (decoded from their embedded preview by LibRaw, materialsearch/raw.py).
RAW_EXTENSIONS = ("dng", "cr2", "cr3", "nef", "arw", "raf", "orf", "rw2")


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


# --- parsers: the text of a variable → a value. Values given ready (not text) skip them; the type still checks.
def _from_text(parse: Callable[[str], Any]) -> BeforeValidator:
    """A validator that applies ``parse`` to text and hands any other value on unchanged."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_path(raw: str) -> str:
    return os.path.abspath(os.path.expanduser(raw))


def _parse_paths(raw: str) -> tuple[str, ...]:
    return tuple(_parse_path(p) for p in raw.split(os.pathsep) if p.strip())


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_urls(raw: str) -> tuple[str, ...]:
    urls = tuple(url.rstrip("/") for url in _parse_list(raw))
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// address")
    return urls


def _parse_extensions(raw: str) -> tuple[str, ...]:
    return tuple(part.lower().lstrip(".") for part in _parse_list(raw))


def _parse_device(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"auto", "cpu", "cuda"} and not value.startswith("cuda:"):
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {raw!r}")
    return value


def _parse_cron(raw: str) -> str:
    value = " ".join(raw.split())
    if value:
        # Imported here: only a non-empty value needs the parser, and reading settings must stay light.
        from materialsearch.jobs.schedule import cron_trigger

        cron_trigger(value)  # raises ValueError with the reason
    return value


def _parse_duration(raw: str) -> int:
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


def _parse_window(raw: str) -> tuple[int, int] | None:
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


def _parse_database_url(raw: str) -> str:
    url = raw.strip()
    if not url:
        return url
    scheme = url.partition("://")[0]
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(
            "must be a PostgreSQL URL, e.g. postgresql://USER:PASSWORD@HOST:5432/DATABASE "
            "(empty: SQLite in MS_DATA_DIR)"
        )
    return url


def _lower(raw: str) -> str:
    return raw.strip().lower()


def _parse_timezone(raw: str) -> str:
    name = raw.strip()
    if name:
        from materialsearch.media.capture_time import fallback_zone

        fallback_zone(name)  # ValueError naming the zone when this system's tz database does not know it
    return name


def _parse_tile_url(raw: str) -> str:
    url = raw.strip()
    if not url:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or "{" in parts.netloc:
        raise ValueError(
            "must be an http(s) URL on one fixed host, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png"
        )
    if not all(key in url for key in ("{z}", "{x}", "{y}")):
        raise ValueError("must contain {z}, {x} and {y}")
    return url


# --- the types settings are declared with ------------------------------------------------------------------------
Flag = Annotated[bool, _from_text(_parse_bool)]
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Folder = Annotated[str, _from_text(_parse_path)]
Folders = Annotated[tuple[str, ...], _from_text(_parse_paths)]
Names = Annotated[tuple[str, ...], _from_text(_parse_list)]
Extensions = Annotated[tuple[str, ...], _from_text(_parse_extensions)]
Urls = Annotated[tuple[str, ...], _from_text(_parse_urls)]
Count = Annotated[int, Field(ge=1)]
CountOrZero = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
Device = Annotated[str, _from_text(_parse_device)]
Cron = Annotated[str, _from_text(_parse_cron)]
Duration = Annotated[int, _from_text(_parse_duration), Field(ge=0)]  # text: 0 or >= 60 s; ready: any seconds
Window = Annotated[tuple[int, int] | None, _from_text(_parse_window)]
TimeZone = Annotated[str, _from_text(_parse_timezone)]


def _default_decode_threads() -> int:
    return min(4, os.cpu_count() or 1)


class _LibrarySettings(BaseSettings):
    """The first part of ``Settings`` (split only to keep each class readable; the fields keep their order):
    the library, the model, serving and decoding."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        validate_default=True,  # defaults go through the same parsers (``./data`` becomes absolute)
        enable_decoding=False,  # lists are comma-separated text, not JSON
        validate_by_name=True,  # keyword overrides use field names, also for fields with an alias
    )

    library: Folders = Field(
        (), description="Folder(s) to index, separated by the OS path separator (`:` on Linux). Never written to."
    )
    data_dir: Folder = Field(
        "./data",
        description="Where everything we write lives: SQLite database, FAISS index, thumbnails, `models/`.",
    )
    database_url: Annotated[str, _from_text(_parse_database_url)] = Field(
        "",
        repr=False,  # may carry a password
        description="Where the catalog lives. Empty (default): SQLite + FAISS in MS_DATA_DIR. "
        "`postgresql://USER:PASSWORD@HOST:5432/DATABASE`: the whole catalog (items, vectors, text, tags, places, "
        "duplicates, faces, tokens) in PostgreSQL with the pgvector extension (created if missing; pg_trgm too); "
        "thumbnails and models stay in MS_DATA_DIR.",
    )
    worker_lease: Seconds = Field(
        120,
        description="With MS_DATABASE_URL: seconds a scan worker's claim on a batch of files lasts without its "
        "heartbeat (renewed every third of it while it works). A worker that dies (killed, its host lost) loses "
        "its files to the next worker after this long; nothing is written twice.",
    )
    pg_index_memory_mb: Count = Field(
        512,
        description="With MS_DATABASE_URL: the memory PostgreSQL may use to build the HNSW vector index "
        "(`maintenance_work_mem`, in MB, for that one statement). A build whose graph outgrows it slows several "
        "times over: give it about 3 KB per vector (ViT-B-16's 512-d), ~3000 for a million photos, if the database "
        "host has that much free memory.",
    )
    model: Text = Field(
        "ViT-B-16",
        description="A cn_clip model name (RN50, ViT-B-16, ViT-L-14, ViT-L-14-336, ViT-H-14), whose weights are "
        "read from (or downloaded into) `$MS_DATA_DIR/models/`, or the path of a cn_clip checkpoint file.",
    )
    model_arch: Text = Field(
        "",
        description="Architecture of the weights given in MS_MODEL: a cn_clip name such as `ViT-B-16`, or "
        "`VISION@TEXT` config names. Not needed when the file records it or its tensor shapes match a released "
        "model (they are read off the shapes).",
    )
    model_source: Annotated[Literal["huggingface", "modelscope"], _from_text(_lower)] = Field(
        "huggingface",
        description="Where a named model's weights are downloaded from when missing: `huggingface` (its mirror "
        "via `HF_ENDPOINT`, e.g. `https://hf-mirror.com`) or `modelscope` (reachable from mainland China).",
    )
    offline: Flag = Field(
        False, description="Never try to download model weights; fail at once with a message saying where to put them."
    )
    device: Device = Field(
        "auto", description="Where the model runs: `auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`."
    )
    host: Text = Field("127.0.0.1", description="Address the web server listens on.")
    port: Port = Field(5000, description="Port the web server listens on.")
    timezone: TimeZone = Field(
        "",
        description="IANA time zone (e.g. `Asia/Shanghai`) for video capture times that carry neither an offset "
        "nor a location; empty: the process's zone (`TZ`, UTC in a container without it). Photo EXIF dates "
        "are camera-local and never converted.",
    )
    image_extensions: Extensions = Field(
        (
            *("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "hif", "heics", "avif", "jxl"),
            *RAW_EXTENSIONS,
        ),
        description="Comma-separated file extensions indexed as images (case-insensitive). Camera RAW files are "
        "indexed from their embedded preview; a RAW beside a same-name JPEG/HEIC is part of that photo's item.",
    )
    skip_patterns: Names = Field(
        (".*", "@eaDir", "#recycle", "#snapshot", "$RECYCLE.BIN", "System Volume Information", "lost+found"),
        description="Comma-separated glob patterns; a file or folder whose name matches one is not scanned "
        "(hidden files, NAS thumbnail and recycle folders by default).",
    )
    min_image_size: CountOrZero = Field(
        64, description="Images whose width or height is below this many pixels (icons, spacers) are skipped."
    )
    max_image_pixels: Count = Field(
        250_000_000,
        description="Images declaring more pixels than this are refused as decompression bombs "
        "(the default admits 200 MP phone photos).",
    )
    batch_size: Count = Field(
        8,
        description="Images encoded by the model at once (8 measured fastest on a 2-core CPU); also the unit of "
        "work committed to the database.",
    )
    decode_threads: Count = Field(
        default_factory=_default_decode_threads,
        description="Threads that read and decode files ahead of the model.",
        json_schema_extra={"shown_default": "min(4, CPU cores)"},
    )
    max_video_decodes: int = Field(
        1,
        ge=1,
        description="Videos decoded at the same time (photos go on beside them). Each 4K/8K decoder holds hundreds "
        "of MB of frames: this bounds the scan's memory whatever the videos.",
    )
    decode_timeout: Seconds = Field(
        120,
        description="Seconds a file's decoding may go without progress before the scan gives it up and lists it "
        "as an error (a decoder stuck on a damaged file, a share that stops answering); a long video keeps "
        "going as long as it yields frames.",
    )
    torch_threads: CountOrZero = Field(
        0, description="Threads torch uses for the model; 0 keeps torch's default (one per core)."
    )
    thumbnail_size: Count = Field(
        384, description="Longest edge, in pixels, of the cached thumbnails shown in results."
    )
    preview_size: Count = Field(
        2048,
        description="Longest edge of the screen-sized rendition the viewer shows for larger photos and for formats "
        "browsers cannot display (HEIC, TIFF); the original loads only when the picture is zoomed in.",
    )
    page_size: Count = Field(40, description="Results per page when a search does not give `limit`.")
    max_page_size: Count = Field(500, description="Largest `limit` a search accepts; larger asks get a 400.")
    max_upload_bytes: Count = Field(
        32 * 1024 * 1024, description="Largest query image (or request body) accepted, in bytes."
    )


class Settings(_LibrarySettings):
    """The application's settings (these and ``_LibrarySettings``'s, in that order); build with
    ``Settings.from_env()``."""

    # --- tags (zero-shot labels from the stored vectors) ---
    tags_file: Text = Field(
        "",
        description="A tab-separated file of tag labels (`key`, `zh`, `en`, optional `prompt_zh`, `prompt_en`; the "
        "format of the shipped `materialsearch/data/tags.tsv`) added to the shipped set; a row with a shipped key "
        "replaces that label. Empty = the shipped set only.",
    )
    tags_replace: Flag = Field(False, description="Use only the labels of MS_TAGS_FILE, without the shipped set.")
    seasons: Annotated[Literal["north", "south"], _from_text(_lower)] = Field(
        "north",
        description='Which hemisphere\'s seasons a search sentence means ("last summer", "去年冬天"): `north` '
        "(summer is June–August) or `south` (summer is December–February).",
    )
    stack_cosine: Annotated[float, Field(gt=0, le=1)] = Field(
        0.95,
        description="Search results at least this similar to each other (cosine between their stored vectors) "
        "collapse into one stack: copies are 1, re-encodes, bursts and light edits about 0.95 and up with CLIP.",
    )
    max_download_items: Count = Field(
        1000, description="Most items one `POST /api/download` zip may hold (streamed, never copied to disk)."
    )
    # --- videos, Live Photos and motion photos ---
    video_extensions: Extensions = Field(
        ("mov", "mp4", "m4v", "mkv", "webm", "avi", "3gp", "mts", "m2ts"),
        description="Comma-separated file extensions indexed as videos (case-insensitive). A video with the same "
        "name as a photo in the same folder is treated as that photo's Live Photo motion.",
    )
    frame_interval: Seconds = Field(
        2,
        description="Seconds between the video frames that are embedded, by presentation time. 2 s finds scenes "
        "that last a couple of seconds while a 1-hour video costs 1800 frames; lower is finer and slower.",
    )
    max_clip_seconds: Count = Field(
        600,
        description="Longest span `/api/items/ID/clip` cuts, in seconds (each clip is re-encoded, which costs CPU).",
    )
    transcode_cache_mb: Count = Field(
        2048,
        description="Disk space for cached video clips and browser-playable (H.264) renditions, in MiB; least "
        "recently used files are deleted beyond it.",
    )
    # --- deployment and security (login, API tokens, symlinks, serving) ---
    password: str = Field(
        "",
        repr=False,
        description="Password for the web page and the API. Empty (default, with MS_PASSWORD_HASH empty): no login "
        "at all, which is only safe on 127.0.0.1. Set this or MS_PASSWORD_HASH, not both.",
    )
    password_hash: Text = Field(
        "",
        repr=False,
        description="The password as a hash made by `python -m materialsearch hash-password` (so the password "
        "itself is not kept in your compose file); write each `$` as `$$` in docker-compose.yml.",
    )
    session_days: Count = Field(
        30,
        description="Days a login lasts without being used; every visit extends it. Changing the password logs "
        "everyone out.",
    )
    login_attempts: Count = Field(
        5,
        description="Failed logins allowed from one client address within MS_LOGIN_WINDOW seconds; further tries "
        "get 429 until the window has passed.",
    )
    login_window: Count = Field(
        300, description="Seconds over which failed logins are counted (see MS_LOGIN_ATTEMPTS)."
    )
    trusted_proxy: Text = Field(
        "",
        description="Address of your reverse proxy (or `*`), whose X-Forwarded-For/-Proto/-Host headers are then "
        "believed: login limits apply per real client and cookies are marked Secure behind HTTPS. Empty: headers "
        "ignored.",
    )
    request_timeout: Count = Field(
        120, description="Seconds a connection may stay idle (slow client, stalled upload) before the server closes it."
    )
    follow_symlinks: Flag = Field(
        False,
        description="Index files and folders reached through symlinks that point outside the library (and serve "
        "them). Off by default: such links are skipped and never served.",
    )
    # --- scheduling ---
    scan_cron: Cron = Field(
        "0 3 * * *",
        description="When scheduled scans run: a 5-field cron expression (minute hour day month weekday, 0 or 7 = "
        "Sunday) in the server's local time zone (`TZ`); the default scans daily at 03:00. Empty = no cron "
        "schedule.",
    )
    scan_interval: Duration = Field(
        0, description="Also scan every this long, counted from start-up: `90m`, `6h`, `1d` or seconds. `0` = off."
    )
    scan_window: Window = Field(
        None,
        description="Hours in which scheduled and start-up scans may run, `HH:MM-HH:MM` local time, may cross "
        "midnight (`22:30-07:00`). Outside it a running scan pauses; it resumes inside. A scan started or resumed "
        "by hand ignores it. Empty = any time.",
    )
    scan_on_start: Flag = Field(
        True,
        description="Scan once when the server starts. (After a model change the re-embedding starts at start-up "
        "anyway.)",
    )
    # --- speed ---
    backend: Annotated[Literal["auto", "torch", "onnx"], _from_text(_lower)] = Field(
        "auto",
        description="What runs the model: `torch`, `onnx` (ONNX Runtime, CPU; the towers are exported once per "
        "model into `$MS_DATA_DIR/models/onnx/`) or `auto` (torch fp16 on CUDA; on a CPU, with MS_PRECISION=auto too, "
        "every backend/precision is timed at the first start and the fastest within cosine 0.999 of fp32 is kept, "
        "in `$MS_DATA_DIR/backend-choice.json`, until the CPU, libraries or weights change).",
    )
    encoder_urls: Urls = Field(
        (),
        description="Encoder services on other hosts (`python -m materialsearch serve-encoder` there, e.g. on a "
        "machine with a GPU), comma-separated, tried in order: pictures (small JPEGs at the model's input size) and "
        "sentences are embedded there instead of here; each batch of pictures is shared among those that answer, "
        "in proportion to their speed. Empty (default): this machine embeds.",
    )
    encoder_token: str = Field(
        "",
        repr=False,
        description="The shared secret between the app and its encoder services (`serve-encoder` requires it from "
        "callers; the app sends it). Set the same value on both sides.",
    )
    encoder_fallback: Annotated[Literal["wait", "local"], _from_text(_lower)] = Field(
        "wait",
        description="When no encoder service in MS_ENCODER_URLS answers: `wait` (the scan waits and goes on by itself "
        "when one answers again; nothing is marked failed) or `local` (embed on this machine meanwhile, only if its "
        "model gives the same vectors: the same identity).",
    )
    encoder_timeout: Seconds = Field(
        60.0,
        description="Seconds an encoder service may take for one batch before the next address is tried.",
    )
    precision: Annotated[Literal["auto", "fp32", "bf16", "fp16", "int8"], _from_text(_lower)] = Field(
        "auto",
        description="Model precision: `fp32`, `bf16` (torch; fast only on CPUs with AVX512-BF16/AMX), `fp16` (torch "
        "on CUDA), `int8` (onnx: int8 weights, used only when its vectors keep cosine >= 0.999 to fp32 on the "
        "loaded weights, else fp32) or `auto` (fp16 on CUDA; on a CPU measured with MS_BACKEND=auto, int8 with onnx, "
        "and with torch bf16 on a native-bf16 CPU, else fp32).",
    )
    index_kind: Annotated[Literal["auto", "flat", "ivf"], _from_text(_lower)] = Field(
        "auto",
        validation_alias="MS_INDEX",
        description="Vector index: `flat` (exact), `ivf` (approximate, FAISS IVF) or `auto` (exact below "
        "MS_ANN_THRESHOLD vectors, IVF above, built and retrained in the background as the collection grows).",
    )
    ann_threshold: Count = Field(
        50_000,
        description="With MS_INDEX=auto, the number of vectors from which search switches from exact to IVF.",
    )
    ivf_nprobe: Count = Field(
        32,
        description="IVF lists visited per query: higher is slower and closer to exact (32 gave recall@10 >= 0.98 "
        "at 1M).",
    )
    index_sq8: Flag = Field(
        False,
        description="Store IVF vectors as 8-bit scalars (4x less memory, slightly lower recall); applies to IVF only.",
    )
    heic_thumbnail: Flag = Field(
        True,
        description="Embed HEIC/HEIF photos from the thumbnail they carry when it covers the model's input size "
        "(~60x faster than a full decode); off decodes the full picture.",
    )
    # --- text in photos (OCR) ---
    ocr: Flag = Field(
        True,
        description="Read the text in photos (screenshots, signs, documents; Chinese and English) in a second "
        "background pass after embedding, so `text=` and plain queries find it (a quick look for text comes first, "
        "in the scan or in that pass: `MS_OCR_PRELOOK`). `off`: neither (text already read is kept and still "
        "searched).",
    )
    ocr_prelook: Annotated[Literal["auto", "scan", "pass"], _from_text(_lower)] = Field(
        "auto",
        description="Where the quick look for text runs: `scan` on the picture the scan decodes anyway (no second "
        "decode), `pass` in the OCR pass after the scan (the scan is faster by that look, ~25 ms of a core a "
        "photo: 0.84 → 0.94 of the model's speed with ViT-B-16 on 2 AVX2 cores), `auto` in the scan only while it "
        "costs at most 5 % of what a picture costs in the model, measured as the scan goes (ViT-L/14 and larger on "
        "a CPU), else in the pass. The scan's status says where and why.",
    )
    ocr_threads: Count = Field(
        1,
        description="CPU threads the OCR runtime (ONNX Runtime) uses per model: the OCR pass's share of the CPU.",
    )
    ocr_duty: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0,
        description="Share of the time the OCR pass may work (0 < x <= 1): at 0.5 it rests as long as it worked "
        "after each photo, leaving the CPU to searches and other programs.",
    )
    # --- people (faces) ---
    faces: Flag = Field(
        True,
        description="Find the faces in photos and videos' sampled frames (YuNet + SFace, bundled models, CPU) in a "
        "background pass after each scan, group them into people, and let `person=` search by who is in a photo. "
        "Stored: each face's box, landmarks, score and 128-number embedding, and the people with their names. "
        "`false`: no faces are looked for (what is stored stays; `python -m materialsearch faces --delete` removes "
        "it).",
    )
    map_tile_url: Annotated[str, _from_text(_parse_tile_url)] = Field(
        "",
        description="Map tiles for the places view, as a URL template on one host (e.g. "
        "`https://tile.openstreetmap.org/{z}/{x}/{y}.png`; mind the tile server's usage policy). Empty: no map, "
        "and the page's Content-Security-Policy allows no tile host; set, it allows exactly that host.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword values only: ``from_env`` reads the environment (or any mapping) into them, so that settings
        built from a given mapping never mix in ``os.environ``; no .env or secrets files."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default: ``os.environ``); keyword overrides win.

        Overrides may be given as strings (parsed like the environment) or as ready values. A bad value raises
        ``SettingsError`` naming the variable.
        """
        unknown = set(overrides) - set(cls.model_fields)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        environ = os.environ if environ is None else environ
        found = _EnvironSource(cls, environ)()  # keyed by field name, or by alias (``MS_INDEX``)
        values = {**{_field_of(key): value for key, value in found.items()}, **overrides}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc, environ, overrides)) from None

    @classmethod
    def describe(cls) -> tuple[SettingInfo, ...]:
        """Every setting as documented: variable, default as one would write it, help; in declaration order."""
        return tuple(SettingInfo.of(name, field) for name, field in cls.model_fields.items())

    @property
    def models_dir(self) -> str:
        """Folder holding downloaded or copied model weights."""
        return os.path.join(self.data_dir, "models")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (values, or strings parsed like the environment)."""
        return type(self).from_env(environ={}, **{**dict(self), **changes})


class _EnvironSource(EnvSettingsSource):
    """The environment source reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k if self.case_sensitive else k.lower(): v for k, v in self._environ.items()}


def env_name(name: str) -> str:
    """The environment variable of the field ``name``."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


def _field_of(key: str) -> str:
    """The field a source's key (field name, alias or variable, in any case) belongs to; itself if none."""
    for name in Settings.model_fields:
        if key.lower() in (name, env_name(name).lower()):
            return name
    return key


def env_text(value: Any) -> str:
    """A value written as it would be in the environment (the README shows defaults so)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclasses.dataclass(frozen=True)
class SettingInfo:
    """What the documentation says about one setting."""

    name: str
    env: str
    default: str  # as written in the environment; a description for computed defaults
    help: str

    @classmethod
    def of(cls, name: str, field: FieldInfo) -> SettingInfo:
        """The documentation of one field of ``Settings``."""
        extra = field.json_schema_extra or {}
        default = extra["shown_default"] if "shown_default" in extra else env_text(field.default)
        return cls(name, env_name(name), default, field.description or "")


def _explain(exc: ValidationError, environ: Mapping[str, str], overrides: Mapping[str, Any]) -> str:
    """Each bad value, "; "-separated: the variable, what it was given, and why it is refused."""
    lines = []
    for error in exc.errors():
        name = _field_of(str(error["loc"][0])) if error["loc"] else ""
        env = env_name(name) if name in Settings.model_fields else ".".join(map(str, error["loc"])) or "settings"
        raw = overrides[name] if name in overrides else environ.get(env, error.get("input"))
        cause = error.get("ctx", {}).get("error")
        reason = str(cause) if isinstance(cause, ValueError) else error["msg"]
        lines.append(f"{env}={raw!r} is not valid: {reason}")
    return "; ".join(lines)

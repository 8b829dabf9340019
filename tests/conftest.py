"""Shared fixtures: the real sample media, the tiny cn_clip checkpoint, and apps built on tmp data dirs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Resolved: the scanner records real paths, and shared/ may be reached through a symlink.
MEDIA = (REPO.parent / "shared" / "media").resolve()
VIDEO_EXTENSIONS = {".mov", ".mp4", ".m4v", ".mkv", ".webm", ".avi"}


def manifest() -> list[dict[str, str]]:
    """Rows of ../shared/media/MANIFEST.tsv."""
    with open(MEDIA / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def image_rows() -> list[dict[str, str]]:
    """Manifest rows of still images (videos come with the video issue)."""
    return [r for r in manifest() if Path(r["file"]).suffix.lower() not in VIDEO_EXTENSIONS]


@pytest.fixture(scope="session")
def media_dir() -> Path:
    if not (MEDIA / "MANIFEST.tsv").is_file():
        pytest.fail(f"the shared sample media are missing: expected {MEDIA}")
    return MEDIA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """The tiny random CN-CLIP checkpoint (seed 0), written once per session."""
    from materialsearch.encoders.tiny import make_test_model

    return make_test_model(str(tmp_path_factory.mktemp("model") / "tiny.pt"), seed=0)


@pytest.fixture
def make_settings(tiny_model, tmp_path):
    """Build Settings on a tmp data dir with the tiny model; keyword overrides win."""
    from config import Settings

    def build(**overrides):
        values = {"data_dir": str(tmp_path / "data"), "model": tiny_model, "decode_threads": 2}
        values.update(overrides)
        return Settings.from_env(environ={}, **values)

    return build


@pytest.fixture
def library(tmp_path, media_dir) -> Path:
    """A small writable library (copies of a few real files) for incremental-scan tests."""
    root = tmp_path / "library"
    (root / "trip").mkdir(parents=True)
    for name in ["jpg_orient1.jpg", "webp_lossy_photo.webp", "png_rgba_transparent.png"]:
        shutil.copy2(media_dir / name, root / name)
    for name in ["jpeg_nikon_d5000_gps.jpeg", "heic_iphoneXS_2images.heic", "bad_jpg_is_text.jpg"]:
        shutil.copy2(media_dir / name, root / "trip" / name)
    return root


@pytest.fixture
def open_services(make_settings):
    """Open Services (closed at teardown)."""
    from materialsearch.services import Services

    opened = []

    def build(**overrides):
        services = Services(make_settings(**overrides))
        opened.append(services)
        return services

    yield build
    for services in opened:
        services.close()

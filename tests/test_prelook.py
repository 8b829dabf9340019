"""Where the OCR pre-look runs (``scan.prelook``): the gate's rule on costs passed in, and real scans (tiny CLIP, the
real PP-OCRv4 detector) with the look in the scan, left to the OCR pass, or placed by ``auto`` as it measured."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

from materialsearch.scan.prelook import SHARE_MAX, WARMUP_PICTURES, WARMUP_PRELOOKS, PrelookGate
from materialsearch.web import services_of
from tests.conftest import MEDIA

TEXT_PHOTOS = {"ocr_gym_sign_phone_numbers.jpg": "027-88852022", "ocr_english_page.jpg": "MovieShots Dataset"}
OTHER_PHOTOS = [
    "jpg_orient1.jpg",
    "jpg_orient3.jpg",
    "jpg_orient6.jpg",
    "jpg_orient8.jpg",
    "jpg_no_exif.jpg",
    "jpeg_nikon_d5000_gps.jpeg",
    "faces_obama_1.jpg",
    "faces_obama_2.jpg",
    "faces_obama_3.jpg",
    "faces_biden_1.jpg",
    "faces_curie_pair.jpg",
    "faces_obama_biden_two.jpg",
    "png_rgba_transparent.png",
    "heic_iphone12pro_orient6_irot_gps.heic",
    "heic_iphone8plus_arrow_orient6_irot.heic",
    "webp_lossy_photo.webp",
    "avif_photo.avif",
]


def warmed(gate: PrelookGate, prelook_s: float, model_s: float, pictures: int = WARMUP_PICTURES) -> PrelookGate:
    """``gate`` after its warm-up: pre-looks of ``prelook_s`` CPU seconds, batches of 8 at ``model_s`` a picture."""
    for _ in range(WARMUP_PRELOOKS):
        gate.prelook_ran(prelook_s)
    for _ in range(pictures // 8):
        gate.model_ran(model_s * 8 / gate.cores, 8)
    return gate


def test_forced_modes_ignore_the_costs():
    assert warmed(PrelookGate("scan", cores=2), 0.030, 0.005).wanted() is True
    assert warmed(PrelookGate("pass", cores=2), 0.030, 1.0).wanted() is False
    assert PrelookGate("scan").explain() == "in the scan (MS_OCR_PRELOOK=scan)"
    assert PrelookGate("pass").explain() == "in the OCR pass (MS_OCR_PRELOOK=pass)"
    with pytest.raises(ValueError, match="unknown pre-look mode"):
        PrelookGate("sometimes")


def test_auto_looks_in_the_scan_until_both_costs_are_measured():
    gate = PrelookGate("auto", cores=2)
    assert gate.wanted() and gate.explain() is None
    for _ in range(WARMUP_PRELOOKS):
        gate.prelook_ran(0.030)  # far too dear next to the model below, but not judged yet
    gate.model_ran(0.001 * 8 / 2, 8)
    assert gate.costs().pictures == 8 and gate.wanted() and gate.explain() is None
    gate.model_ran(0.001 * 8 / 2, 8)
    assert not gate.wanted()


@pytest.mark.parametrize(
    ("prelook_ms", "model_ms", "in_scan"),
    [
        (27, 3000, True),  # ViT-L/14 on 2 CPU cores: ~1 %
        (27, 300, False),  # ViT-B-16 int8 on 2 AVX2 cores: ~9 %
        (25, 84, False),  # bf16 on 2 AMX cores: ~30 %
        (27, 2, False),  # a GPU or an encoder service: the local cores only feed it
        (5, 100, True),  # exactly at the limit
        (5.1, 100, False),
    ],
)
def test_auto_keeps_the_look_in_the_scan_while_it_is_cheap_next_to_the_model(prelook_ms, model_ms, in_scan):
    gate = warmed(PrelookGate("auto", cores=2), prelook_ms / 1000, model_ms / 1000)
    assert gate.costs().share == pytest.approx(prelook_ms / model_ms)
    assert gate.wanted() is in_scan
    where = "in the scan" if in_scan else "in the OCR pass"
    assert gate.explain().startswith(f"{where}: {prelook_ms:.0f} ms of one core a photo against the model's ")
    assert f"{model_ms:.0f} ms of 2 cores a picture" in gate.explain()
    assert f"up to {SHARE_MAX:.0%}" in gate.explain()


def test_model_cost_counts_every_core_and_follows_a_model_that_changes_speed():
    gate = warmed(PrelookGate("auto", cores=4), 0.025, 3.0)
    assert gate.costs().model_s == pytest.approx(3.0)  # a batch's wall time × 4 cores, per picture
    assert gate.wanted()
    for _ in range(40):  # the encoder service it uses comes back on a GPU: 2 ms a picture
        gate.model_ran(0.002 * 8 / 4, 8)
    assert not gate.wanted() and gate.costs().model_s < 0.01
    for _ in range(40):
        gate.model_ran(4.0 * 8 / 4, 8)
    assert gate.wanted()


def _library(root, names) -> str:
    root.mkdir(parents=True)
    for name in names:
        shutil.copy2(MEDIA / name, root / name)
    return str(root)


def _verdicts(services) -> dict[str, int | None]:
    with sqlite3.connect(services.store.path) as conn:
        return {os.path.basename(path): verdict for path, verdict in conn.execute("SELECT path, has_text FROM items")}


def _finds_the_text_after_the_pass(app) -> None:
    services = services_of(app)
    stats = services.ocr.run()
    assert stats.errors == 0 and stats.with_text >= len(TEXT_PHOTOS)
    client = app.test_client()
    for name, phrase in TEXT_PHOTOS.items():
        names = [hit["name"] for hit in client.get("/api/search", query_string={"text": phrase}).get_json()["results"]]
        assert names[:1] == [name], (phrase, names)


@pytest.mark.slow  # the real OCR detector and recogniser on a few photos: ~10 s on 2 shared cores
def test_pass_mode_leaves_every_look_to_the_ocr_pass_which_still_finds_the_text(make_app, tmp_path):
    library = _library(tmp_path / "library", [*TEXT_PHOTOS, "jpg_orient1.jpg"])
    app = make_app(library=library, decode_threads=1, ocr_prelook="pass")
    services = services_of(app)
    assert services.scans.run().added == 3
    assert set(_verdicts(services).values()) == {None}
    assert services.scanner.preparer.prelook.costs().prelooks == 0
    status = app.test_client().get("/api/status").get_json()["scan"]
    assert status["ocr_prelook"] == "in the OCR pass (MS_OCR_PRELOOK=pass)"
    _finds_the_text_after_the_pass(app)


@pytest.mark.slow  # ~20 photos through the real detector, then the OCR pass
def test_auto_places_the_look_as_it_measured_and_the_text_is_found_either_way(make_app, tmp_path):
    """Whichever way ``auto`` judges on this machine (with the tiny model, the OCR pass on any CPU), the photos it
    looked at in the scan carry a verdict, the others none, the status says which and why, and the pass reads them."""
    names = [*TEXT_PHOTOS, *OTHER_PHOTOS]
    app = make_app(library=_library(tmp_path / "library", names), decode_threads=1, batch_size=4)
    services = services_of(app)
    assert services.scans.run().added == len(names)
    gate = services.scanner.preparer.prelook
    costs = gate.costs()
    assert costs.pictures == len(names)  # the scan's model loop reported every picture it encoded
    assert costs.prelooks >= WARMUP_PRELOOKS
    verdicts = _verdicts(services)
    looked = [name for name, verdict in verdicts.items() if verdict is not None]
    assert len(looked) == costs.prelooks  # every look the gate counted left its verdict, and only those
    explained = app.test_client().get("/api/status").get_json()["scan"]["ocr_prelook"]
    assert explained == gate.explain()
    if costs.share <= SHARE_MAX:
        assert explained.startswith("in the scan: ")
    else:
        assert explained.startswith("in the OCR pass: ") and len(looked) < len(names)
    _finds_the_text_after_the_pass(app)


def test_an_ocr_engine_that_cannot_load_costs_the_scan_its_verdicts_not_its_photos(make_app, tmp_path, monkeypatch):
    app = make_app(library=_library(tmp_path / "library", list(TEXT_PHOTOS)), decode_threads=1, ocr_prelook="scan")
    services = services_of(app)

    def broken():
        raise RuntimeError("the OCR models are missing")

    monkeypatch.setattr(services.ocr_engine, "load", broken)
    stats = services.scans.run()
    assert (stats.added, stats.errors) == (len(TEXT_PHOTOS), 0)
    assert set(_verdicts(services).values()) == {None}  # left to the OCR pass, which reports its own failure

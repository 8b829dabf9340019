"""Only real Live Photos are folded into one item: the right formats, and without identifiers close capture times."""

from __future__ import annotations

import datetime as dt
import shutil
from fractions import Fraction

import av
from PIL import Image

from materialsearch.catalog.records import ItemStatus
from tests.conftest import MEDIA

EXIF_IFD, DATETIME_ORIGINAL = 0x8769, 0x9003


def _still(path, taken: dt.datetime | None) -> None:
    image = Image.open(MEDIA / "jpg_orient1.jpg").convert("RGB")
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    image.save(path, exif=exif)


def _movie(path, created_utc: dt.datetime | None, seconds: float = 2.0) -> None:
    """A short H.264 movie without an Apple content identifier (what other phones and tools write)."""
    with av.open(str(path), "w") as out:
        if created_utc is not None:
            out.metadata["creation_time"] = created_utc.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), (i * 10 % 255, 80, 160)))
            frame.pts, frame.time_base = i * 100, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_only_live_photo_formats_with_close_times_pair(open_services, tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    taken = dt.datetime(2024, 6, 1, 12, 0, 0)  # the still's EXIF: camera-local; the movie's time: UTC
    _still(library / "CLOSE.jpg", taken)
    _movie(library / "CLOSE.mp4", taken)
    _still(library / "FAR.jpg", taken)
    _movie(library / "FAR.mp4", taken + dt.timedelta(hours=3))
    _still(library / "UNDATED.jpg", None)
    _movie(library / "UNDATED.mp4", taken)
    _still(library / "Pentax.jpg", taken)  # a camera's photo next to an unrelated clip of the same name
    _movie(library / "Pentax.avi", taken)
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.jpg", library / "IMG_1.jpg")  # identifiers match
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.mov", library / "IMG_1.MOV")
    services = open_services(library=str(library), timezone="UTC")
    services.scans.run()
    status = {path.rsplit("/", 1)[-1]: state.status for path, state in services.store.file_states().items()}
    assert status["IMG_1.MOV"] == ItemStatus.MOTION
    assert status["CLOSE.mp4"] == ItemStatus.MOTION  # short, no identifiers, captured together
    assert status["FAR.mp4"] == ItemStatus.OK  # three hours apart: a video of its own
    assert status["UNDATED.mp4"] == ItemStatus.OK  # the still has no date: not paired on length alone
    assert status["Pentax.avi"] == ItemStatus.OK  # AVI is no Live Photo container
    assert services.store.file_states()[str(library / "Pentax.avi")].pair_path is None
    # Pairing is stable: an unchanged rescan decodes nothing.
    assert services.scans.run().decoded == 0

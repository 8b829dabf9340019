"""Camera formats beyond the shared samples: HEIF as Sony/Canon/Fujifilm name it (.hif) and JPEG XL."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from materialsearch.catalog.records import ItemStatus
from materialsearch.media.decode import configure_pillow, decode_image


def test_hif_and_jxl_are_walked_decoded_upright_and_indexed(open_services, media_dir, tmp_path):
    configure_pillow()
    library = tmp_path / "camera"
    library.mkdir()
    # A Sony/Canon/Fujifilm camera writes HEIF as .HIF: the same container, another name.
    shutil.copy2(media_dir / "heic_iphone12pro_orient6_irot_gps.heic", library / "DSC00001.HIF")
    # JPEG XL made from an EXIF-orientation-6 JPEG by lossless JPEG reconstruction: identical pixels, same EXIF.
    with Image.open(media_dir / "jpg_orient6.jpg") as jpeg:
        jpeg.save(library / "portrait.jxl", lossless=True)
    services = open_services(library=str(library))
    stats = services.scans.run()
    states = services.store.file_states()
    assert {p.rsplit("/", 1)[-1]: s.status for p, s in states.items()} == {
        "DSC00001.HIF": ItemStatus.OK,
        "portrait.jxl": ItemStatus.OK,
    }
    assert stats.errors == 0
    jxl = decode_image((library / "portrait.jxl").read_bytes(), max_pixels=10**9, min_side=224)
    jpeg = decode_image((media_dir / "jpg_orient6.jpg").read_bytes(), max_pixels=10**9, min_side=224)
    assert (jxl.width, jxl.height) == (jpeg.width, jpeg.height) and jxl.width > jxl.height  # turned upright
    # Both are decoded reduced (the JPEG by draft mode's DCT scaling, the JPEG XL box-averaged by an integer
    # factor): the same picture shrunk to one size is all that may differ.
    size = (jpeg.image.width // 2, jpeg.image.height // 2)
    shrunk = [np.asarray(d.image.resize(size, Image.Resampling.BOX), np.int16) for d in (jxl, jpeg)]
    difference = np.abs(shrunk[0] - shrunk[1])
    assert difference.mean() < 4

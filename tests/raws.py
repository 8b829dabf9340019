"""Real DNG files written for the RAW tests with tifffile (no RAW sample ships in a registry package we may use).

The layout is the one Adobe's DNG Converter and cameras write: IFD0 holds a 256-pixel RGB thumbnail and the DNG
tags (DNGVersion, camera model, Orientation, DateTime); its SubIFDs hold the Bayer sensor data (16-bit CFA, RGGB)
and, optionally, a large JPEG preview. LibRaw reads it like any camera's DNG.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

THUMB_SIZE = (256, 171)
PREVIEW_SIZE = (1200, 800)
SENSOR_SIZE = (1224, 816)
TAKEN = "2024:05:06 07:08:09"


def test_pattern(size: tuple[int, int]) -> np.ndarray:
    """Landscape, red left half and blue right half under a white top band: shows which way is up."""
    width, height = size
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:, : width // 2] = (200, 30, 30)
    picture[:, width // 2 :] = (30, 30, 200)
    picture[: height // 8] = 255
    return picture


def _pass_through_jpeg():
    # tifffile writes pre-encoded strips as they are, but asks for an encoder first: the JPEG is already encoded.
    tifffile.TIFF.COMPRESSORS._codecs.setdefault(7, lambda data, *args, **kwargs: data)


def write_dng(path: Path, orientation: int = 1, preview: bool = True, sensor_value: int = 1000) -> Path:
    """A DNG at ``path`` whose pictures show ``test_pattern``, with EXIF ``orientation``; ``preview``: with a
    1200x800 JPEG preview (else only the 256-pixel thumbnail)."""
    pattern = test_pattern(PREVIEW_SIZE)
    thumbnail = np.asarray(Image.fromarray(pattern).resize(THUMB_SIZE))
    camera = [
        (271, 2, 0, "Testmaker", True),  # Make
        (272, 2, 0, "Test DNG", True),  # Model
        (274, 3, 1, orientation, True),  # Orientation
        (306, 2, 0, TAKEN, True),  # DateTime
        (50706, 1, 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, 1, 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, 2, 0, "Testmaker Test DNG", True),  # UniqueCameraModel
        (50721, 10, 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),  # ColorMatrix1 (identity)
        (50778, 3, 1, 21, True),  # CalibrationIlluminant1: D65
    ]
    width, height = SENSOR_SIZE
    sensor = np.full((height, width), sensor_value, np.uint16)
    with tifffile.TiffWriter(path) as tif:
        tif.write(thumbnail, photometric="rgb", subfiletype=1, subifds=2 if preview else 1, extratags=camera)
        cfa = [(33421, 3, 2, (2, 2), True), (33422, 1, 4, (0, 1, 1, 2), True), (50717, 3, 1, 4095, True)]
        tif.write(sensor, photometric=32803, subfiletype=0, extratags=cfa)
        if preview:
            _pass_through_jpeg()
            encoded = io.BytesIO()
            Image.fromarray(pattern).save(encoded, "JPEG", quality=90)
            w, h = PREVIEW_SIZE
            tif.write(
                iter([encoded.getvalue()]),
                shape=(h, w, 3),
                dtype=np.uint8,
                photometric="ycbcr",
                compression=7,
                subsampling=(2, 2),
                rowsperstrip=h,
                subfiletype=1,
            )
    return path

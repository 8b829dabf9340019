"""A still WebP decoded straight to a smaller size by libwebp's own scaler, so the full-size picture never exists.

Pillow decodes a WebP at full size through libwebp's animation decoder (16 bytes a pixel at its peak) and OpenCV
at full size too (~6); libwebp itself can scale while it decodes (``WebPDecoderOptions.use_scaling``, an area
average): a 250 MP WebP peaked at +0.04 GB in a fresh process (OpenCV: +1.4 GB), and took 1.1 s instead of 7.
Neither library exposes that, so libwebp is called here through ctypes: the copy bundled with Pillow's wheel, else
the system's. ``decode_scaled`` returns None whenever that is not possible, and the caller decodes another way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os

import numpy as np

# decode.h: WEBP_DECODER_ABI_VERSION of libwebp 1.x; libwebp refuses a config whose major version differs.
DECODER_ABI_VERSION = 0x0209
MODE_RGB, MODE_RGBA = 0, 1  # WEBP_CSP_MODE
VP8_STATUS_OK = 0


class _Features(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("has_alpha", ctypes.c_int),
        ("has_animation", ctypes.c_int),
        ("format", ctypes.c_int),
        ("pad", ctypes.c_uint32 * 5),
    ]


class _RGBABuffer(ctypes.Structure):
    _fields_ = [("rgba", ctypes.c_void_p), ("stride", ctypes.c_int), ("size", ctypes.c_size_t)]


class _YUVABuffer(ctypes.Structure):
    _fields_ = [
        ("y", ctypes.c_void_p),
        ("u", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("a", ctypes.c_void_p),
        ("y_stride", ctypes.c_int),
        ("u_stride", ctypes.c_int),
        ("v_stride", ctypes.c_int),
        ("a_stride", ctypes.c_int),
        ("y_size", ctypes.c_size_t),
        ("u_size", ctypes.c_size_t),
        ("v_size", ctypes.c_size_t),
        ("a_size", ctypes.c_size_t),
    ]


class _Buffers(ctypes.Union):
    _fields_ = [("RGBA", _RGBABuffer), ("YUVA", _YUVABuffer)]


class _DecBuffer(ctypes.Structure):
    _fields_ = [
        ("colorspace", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("is_external_memory", ctypes.c_int),
        ("u", _Buffers),
        ("pad", ctypes.c_uint32 * 4),
        ("private_memory", ctypes.c_void_p),
    ]


class _Options(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int)
        for name in (
            "bypass_filtering",
            "no_fancy_upsampling",
            "use_cropping",
            "crop_left",
            "crop_top",
            "crop_width",
            "crop_height",
            "use_scaling",
            "scaled_width",
            "scaled_height",
            "use_threads",
            "dithering_strength",
            "flip",
            "alpha_dithering_strength",
        )
    ] + [("pad", ctypes.c_uint32 * 5)]


class _Config(ctypes.Structure):
    _fields_ = [("input", _Features), ("output", _DecBuffer), ("options", _Options)]


@functools.cache
def _libwebp() -> ctypes.CDLL | None:
    """Pillow's bundled libwebp (the one its WebP support is tested with), else the system's; None if neither."""
    import PIL

    bundled = sorted(glob.glob(os.path.join(os.path.dirname(PIL.__file__), os.pardir, "pillow.libs", "libwebp-*")))
    for path in [*bundled, ctypes.util.find_library("webp")]:
        if not path:
            continue
        try:
            library = ctypes.CDLL(path)
            library.WebPInitDecoderConfigInternal.argtypes = [ctypes.POINTER(_Config), ctypes.c_int]
            library.WebPDecode.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_Config)]
            library.WebPFreeDecBuffer.argtypes = [ctypes.POINTER(_DecBuffer)]
        except (OSError, AttributeError):
            continue
        return library
    return None


def decode_scaled(data: bytes, width: int, height: int, alpha: bool) -> np.ndarray | None:
    """``data`` (a still WebP) decoded at ``width`` x ``height`` (RGBA when ``alpha``, else RGB) as an array, or
    None when libwebp is not at hand or cannot decode it."""
    library = _libwebp()
    if library is None:
        return None
    config = _Config()
    if not library.WebPInitDecoderConfigInternal(ctypes.byref(config), DECODER_ABI_VERSION):
        return None  # a libwebp of another major ABI
    channels = 4 if alpha else 3
    pixels = np.empty((height, width, channels), np.uint8)
    config.options.use_scaling, config.options.scaled_width, config.options.scaled_height = 1, width, height
    config.output.colorspace = MODE_RGBA if alpha else MODE_RGB
    config.output.is_external_memory = 1
    config.output.u.RGBA.rgba = pixels.ctypes.data
    config.output.u.RGBA.stride = width * channels
    config.output.u.RGBA.size = pixels.nbytes
    status = library.WebPDecode(data, len(data), ctypes.byref(config))
    library.WebPFreeDecBuffer(ctypes.byref(config.output))  # frees nothing of ours; its own buffers if any
    return pixels if status == VP8_STATUS_OK else None

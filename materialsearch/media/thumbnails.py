"""Cached renditions (thumbnails and large previews) in the data dir, keyed by the source file's identity."""

from __future__ import annotations

import hashlib
import os
import threading

from PIL import Image

from materialsearch.media.decode import DecodedImage, decode_image, encode_jpeg, render


def rendition_key(path: str, size: int, mtime_ns: int) -> str:
    """A collision-resistant file name stem for one version of one file."""
    return hashlib.blake2b(f"{path}\0{size}\0{mtime_ns}".encode(), digest_size=16).hexdigest()


class Renditions:
    """Thumbnails (written while scanning) and previews (made on first request), as JPEG files."""

    def __init__(self, root: str, thumbnail_size: int, preview_size: int, max_pixels: int):
        self.root = root
        self.thumbnail_size = thumbnail_size
        self.preview_size = preview_size
        self.max_pixels = max_pixels
        os.makedirs(root, exist_ok=True)

    def _path(self, key: str, kind: str) -> str:
        return os.path.join(self.root, key[:2], f"{key}.{kind}.jpg")

    def thumbnail_path(self, key: str) -> str:
        """Where the thumbnail for ``key`` lives."""
        return self._path(key, "thumb")

    def write_thumbnail(self, key: str, decoded: DecodedImage) -> str:
        """Render and store the thumbnail of an already-decoded picture; returns its path."""
        path = self.thumbnail_path(key)
        _write_atomic(path, encode_jpeg(render(decoded, self.thumbnail_size)))
        return path

    def thumbnail(self, key: str, source: str) -> str:
        """The thumbnail's path, re-made from ``source`` if the cache lost it. Raises DecodeError."""
        path = self.thumbnail_path(key)
        if not os.path.isfile(path):
            decoded = self._decode(source, self.thumbnail_size)
            _write_atomic(path, encode_jpeg(render(decoded, self.thumbnail_size)))
        return path

    def preview(self, key: str, source: str) -> str:
        """A large upright JPEG rendition of ``source`` (for formats browsers cannot show). Raises DecodeError."""
        path = self._path(key, "preview")
        if not os.path.isfile(path):
            decoded = self._decode(source, self.preview_size)
            _write_atomic(path, encode_jpeg(render(decoded, self.preview_size), quality=90))
        return path

    def frame_thumbnail_path(self, key: str, time_ms: int) -> str:
        """Where the thumbnail of one video frame lives."""
        return self._path(f"{key}-{int(time_ms)}", "thumb")

    def write_image_thumbnail(self, path: str, image) -> None:
        """Render and store a thumbnail of an upright RGB picture (a video frame) at ``path``."""
        decoded = DecodedImage(image, image.width, image.height, None)
        _write_atomic(path, encode_jpeg(render(decoded, self.thumbnail_size)))

    def video_thumbnail(self, key: str, source: str, time_ms: int | None) -> str:
        """The thumbnail of a video's poster (``time_ms`` None) or of the frame at ``time_ms``, made if missing.

        Raises VideoError when the video cannot be read any more.
        """
        from materialsearch.media.video import frame_at

        path = self.thumbnail_path(key) if time_ms is None else self.frame_thumbnail_path(key, time_ms)
        if not os.path.isfile(path):
            image = frame_at(source, time_ms or 0, min_side=1, min_long_side=self.thumbnail_size)
            self.write_image_thumbnail(path, image)
        return path

    def thumbnail_of_upload(self, data: bytes) -> bytes:
        """A thumbnail-sized upright JPEG of an uploaded picture (a query image the browser cannot show, e.g.
        HEIC), made in memory and never stored. Raises DecodeError."""
        decoded = decode_image(data, min_side=1, min_long_side=self.thumbnail_size, max_pixels=self.max_pixels)
        return encode_jpeg(render(decoded, self.thumbnail_size))

    def _decode(self, source: str, side: int) -> DecodedImage:
        with open(source, "rb") as handle:
            data = handle.read()
        return decode_image(data, min_side=1, min_long_side=side, max_pixels=self.max_pixels)


def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def phash_of_file(path: str) -> int:
    """The 64-bit pHash (imagehash, DCT) of a picture file, as an unsigned int (duplicates confirm pairs with it)."""
    import imagehash

    with Image.open(path) as image:
        return int(str(imagehash.phash(image.convert("RGB"))), 16)

"""A zip of original files, streamed as it is written: no temporary copy, one read buffer per file.

Stored, not compressed (photos and videos are compressed already; storing keeps the server's CPU free and the
first bytes flowing at once). Each file keeps its name and modification time; two files of the same name get
`` (2)``, `` (3)``… before the extension. Zip64 is used for any member of 2 GiB or more.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from collections.abc import Iterator

READ_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Member:
    """A file to put in the zip under ``name``."""

    path: str
    name: str


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that hands what was written to the generator (zipfile then writes data
    descriptors instead of seeking back)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        """What was written since the last drain."""
        data, self._chunks = b"".join(self._chunks), []
        return data


def unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats made unique: ``a.jpg``, ``a (2).jpg``, ``a (3).jpg``."""
    seen: set[str] = set()
    result = []
    for name in names:
        stem, ext = os.path.splitext(name)
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem} ({n}){ext}"
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def zip_stream(members: list[Member]) -> Iterator[bytes]:
    """The bytes of a zip holding ``members``, a piece at a time."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for member in members:
            info = zipfile.ZipInfo.from_file(member.path, member.name, strict_timestamps=False)  # pre-1980: 1980
            info.compress_type = zipfile.ZIP_STORED
            size = os.path.getsize(member.path)
            with open(member.path, "rb") as source, archive.open(info, "w", force_zip64=size >= 2**31) as target:
                while chunk := source.read(READ_CHUNK):
                    target.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()

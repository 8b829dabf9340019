"""An indexed item's files: the original (or its camera RAW), thumbnails and previews, a video's browser-playable
rendition and clips, a Live Photo's motion, and a zip of several originals. Each answer names a file to send
(``FileToSend``); nothing is ever served by a path a client gave."""

from __future__ import annotations

import dataclasses
import mimetypes
import os
from collections.abc import Iterable, Iterator

from materialsearch.application.entries import ItemLookup
from materialsearch.application.errors import ApiError, BadRequest
from materialsearch.catalog.records import ItemStatus, Kind
from materialsearch.catalog.rows import ItemRow as Item
from materialsearch.download import Member, unique_names, zip_stream
from materialsearch.errors import ApiErrorCode as Code
from materialsearch.media.decode import DecodeError
from materialsearch.media.thumbnails import Renditions, rendition_key
from materialsearch.media.transcode import TranscodeError, Transcoder
from materialsearch.media.video import VideoError
from materialsearch.search.service import NotFound

DAY_S = 86400  # renditions are cached by browsers for a day (their URLs carry the file's version)


@dataclasses.dataclass(frozen=True)
class FileToSend:
    """A file to answer with: its media type, the name to offer (None: none), how long browsers may cache it
    (None: revalidate); sent with conditional and Range support."""

    path: str
    media_type: str
    download_name: str | None = None
    max_age: int | None = None


@dataclasses.dataclass(frozen=True)
class ZipDownload:
    """A zip of originals: its file name and its bytes, written as they are read."""

    filename: str
    chunks: Iterator[bytes]


def _rendition(path: str, media_type: str) -> FileToSend:
    return FileToSend(path, media_type, max_age=DAY_S)


def _media_type(item: Item) -> str:
    """The file's media type; a browser-playable QuickTime movie as video/mp4 (the same ISO media format, and the
    only type under which browsers play it)."""
    mimetype = mimetypes.guess_type(item.path)[0] or "application/octet-stream"
    return "video/mp4" if mimetype == "video/quicktime" and item.playable else mimetype


class ItemFiles:
    """The files of indexed items."""

    def __init__(self, lookup: ItemLookup, renditions: Renditions, transcoder: Transcoder, settings):
        self.lookup, self.renditions, self.transcoder, self.settings = lookup, renditions, transcoder, settings

    def original(self, item_id: int) -> FileToSend:
        """The original file of an indexed item, or the camera RAW of a RAW + JPEG pair."""
        item = self.lookup.store.get_item(item_id)
        return self._original(
            item if item is not None and item.status == ItemStatus.RAW else self.lookup.indexed(item_id)
        )

    def thumbnail(self, item_id: int, t: int | None = None) -> FileToSend:
        """The item's thumbnail; for a video, ``t`` (ms) picks one of its indexed frames."""
        item = self.lookup.indexed(item_id)
        key = item.thumbnail or rendition_key(item.path, item.size, item.mtime_ns)
        source = self.lookup.source(item)
        try:
            if item.kind == Kind.VIDEO:
                if t is not None and self.lookup.store.frame_vector(item_id, t) is None:
                    raise NotFound(f"item {item_id} has no indexed frame at {t} ms")
                path = self.renditions.video_thumbnail(key, source, t)
            else:
                path = self.renditions.thumbnail(key, source)
        except (OSError, DecodeError, VideoError) as exc:
            raise self._unreadable(item_id, exc) from None
        return _rendition(path, "image/jpeg")

    def preview(self, item_id: int) -> FileToSend:
        """A screen-sized JPEG rendition (for large photos, and HEIC/TIFF, which browsers cannot show); keyed by
        the file's content, so copies of one photo share it (a 200 MP HEIC is decoded once, not per copy)."""
        item = self.lookup.indexed(item_id)
        key = (
            rendition_key(f"content:{item.content_hash}", 0, 0)
            if item.content_hash
            else rendition_key(item.path, item.size, item.mtime_ns)
        )
        source = self.lookup.source(item)
        try:
            path = self.renditions.preview(key, source)
        except (OSError, DecodeError) as exc:
            raise self._unreadable(item_id, exc) from None
        return _rendition(path, "image/jpeg")

    @staticmethod
    def _unreadable(item_id: int, exc: Exception) -> ApiError:
        return ApiError(404, Code.ORIGINAL_GONE, f"the original of item {item_id} cannot be read any more: {exc}")

    def clip(self, item_id: int, start: float, end: float) -> FileToSend:
        """An MP4 of exactly [start, end) seconds of a video (``end`` past its end is cut to it)."""
        item = self.lookup.video(item_id)
        duration = (item.duration_ms or 0) / 1000
        if duration and start >= duration:
            raise BadRequest(
                f"start ({start:g} s) is past the end of the video ({duration:g} s)", Code.CLIP_OUT_OF_RANGE
            )
        end = min(end, duration) if duration else end
        if end <= start:
            raise BadRequest("end must be after start", Code.CLIP_OUT_OF_RANGE)
        most = self.settings.max_clip_seconds
        if end - start > most:
            raise BadRequest(f"a clip may last at most {most} s (MS_MAX_CLIP_SECONDS)", Code.CLIP_TOO_LONG)
        start_ms, end_ms = round(start * 1000), round(end * 1000)
        try:
            path = self.transcoder.clip(self.lookup.source(item), item.size, item.mtime_ns, start_ms, end_ms)
        except TranscodeError as exc:
            raise ApiError(422, Code.TRANSCODE_FAILED, f"cannot cut this video: {exc}") from None
        stem = os.path.splitext(os.path.basename(item.path))[0]
        name = f"{stem}_{start_ms / 1000:g}-{end_ms / 1000:g}s.mp4"
        return FileToSend(path, "video/mp4", download_name=name, max_age=DAY_S)

    def playable(self, item_id: int) -> FileToSend | None:
        """The video as browsers play it: the original, or its H.264 rendition; None while that is being made."""
        item = self.lookup.video(item_id)
        if item.playable:
            return self._original(item)
        state, detail = self.transcoder.start_rendition(self.lookup.source(item), item.size, item.mtime_ns)
        if state == "ready":
            return _rendition(detail, "video/mp4")
        if state == "failed":
            raise ApiError(422, Code.TRANSCODE_FAILED, f"cannot convert this video: {detail}")
        return None

    def motion(self, item_id: int) -> FileToSend:
        """The motion of a Live Photo (its movie) or an Android motion photo, as a video browsers play."""
        item = self.lookup.indexed(item_id)
        store = self.lookup.store
        movie = store.motions_for([item.path]).get(item.path) if item.kind == Kind.IMAGE else None
        try:
            if movie is not None:
                source = self.lookup.source(movie)
                if not os.path.isfile(source):
                    raise ApiError(404, Code.ORIGINAL_GONE, f"the motion of item {item_id} is gone from the library")
                if movie.playable:
                    return FileToSend(source, _media_type(movie), max_age=DAY_S)
                path = self.transcoder.rendition(source, movie.size, movie.mtime_ns)
            elif item.motion_offset is not None:
                source = self.lookup.source(item)
                path = self.transcoder.rendition(source, item.size, item.mtime_ns, item.motion_offset)
            else:
                raise ApiError(404, Code.NO_MOTION, f"item {item_id} has no motion (not a Live Photo or motion photo)")
        except TranscodeError as exc:
            raise ApiError(422, Code.TRANSCODE_FAILED, f"cannot play this motion: {exc}") from None
        return _rendition(path, "video/mp4")

    def download(self, ids: Iterable[int]) -> ZipDownload:
        """A zip of the originals of ``ids`` (repeats count once); a Live Photo brings its movie along."""
        ids = list(dict.fromkeys(ids))
        most = self.settings.max_download_items
        if len(ids) > most:
            raise BadRequest(f"ids: at most {most} items per download (MS_MAX_DOWNLOAD_ITEMS), got {len(ids)}")
        store = self.lookup.store
        found = store.get_items(ids)
        missing = [i for i in ids if i not in found or found[i].status != ItemStatus.OK]
        if missing:
            raise NotFound(f"no indexed item with id {', '.join(map(str, missing))}")
        items = [found[i] for i in ids]
        motions = store.motions_for([item.path for item in items if item.kind == Kind.IMAGE])
        files = []
        for item in items:
            files += [item] + ([motions[item.path]] if item.path in motions else [])
        paths = [self.lookup.source(item) for item in files]
        gone = [item.id for item, path in zip(files, paths, strict=True) if not os.path.isfile(path)]
        if gone:
            raise NotFound(f"the original of item {', '.join(map(str, gone))} is gone from the library")
        names = unique_names([os.path.basename(item.path) for item in files])
        members = [Member(path, name) for path, name in zip(paths, names, strict=True)]
        return ZipDownload(filename=f"materialsearch-{len(items)}-items.zip", chunks=zip_stream(members))

    def _original(self, item: Item) -> FileToSend:
        source = self.lookup.source(item)
        if not os.path.isfile(source):
            raise ApiError(404, Code.ORIGINAL_GONE, f"the original of item {item.id} is gone from the library")
        return FileToSend(source, _media_type(item), download_name=os.path.basename(item.path))

"""Prepare one library file for the model: photo or video → its ``ItemRecord`` and the frames to embed.

Reads, hashes, decodes, thumbnails (or posters), finds an Android motion photo's embedded video, and decides
whether a video is a Live Photo's motion. Whatever goes wrong with one file is recorded on its record, with the
reason, and costs that file only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable

from config import RAW_EXTENSIONS
from materialsearch.catalog.records import ItemRecord, ItemStatus, Kind
from materialsearch.encoders import Encoder, PreparedPicture
from materialsearch.errors import ProblemCode
from materialsearch.media.capture_time import fallback_zone
from materialsearch.media.decode import DecodedImage, DecodeError, decode_image, decode_sizes, full_size_pixels
from materialsearch.media.motion import (
    LIVE_PHOTO_MAX_TIME_GAP_S,
    LIVE_PHOTO_MAX_UNVERIFIED_MS,
    embedded_motion_offset,
    still_capture_time,
    still_content_identifier,
)
from materialsearch.media.thumbnails import Renditions, phash_of_file, rendition_key
from materialsearch.media.video import NotAVideo, VideoError, VideoInfo, probe, sample_frames
from materialsearch.ocr.engine import OcrEngine
from materialsearch.organise.places import locate
from materialsearch.scan.pipeline import EndMessage, FrameMessage
from materialsearch.scan.prelook import PrelookGate
from materialsearch.scan.walk import FileEntry

log = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20
# Videos can be gigabytes: they are fingerprinted (for move detection) by their size, head and tail.
VIDEO_HASH_SPAN = 1 << 20
# A video poster should not be a black fade-in: skip up to this many dark leading samples.
POSTER_MAX_SKIPPED = 3
POSTER_MIN_BRIGHTNESS = 24
# An embedded motion video counts as playable when a frame decodes within this far into it.
MOTION_PROBE_INTERVAL_MS = 10_000
# How much of an unexpected exception's message goes into the file's recorded reason.
UNEXPECTED_DETAIL_CHARS = 200


# A still held at more pixels than this while it is decoded (any format but a baseline JPEG, which draft decodes
# small) takes one of the scan's heavy permits, as a video does, so two are never decoded at once: they cost 1–6
# bytes a pixel (measured in a scan: a 240 MP RGB PNG +0.9 GB, RGBA +0.9, 16-bit grey +0.5, a 144 MP WebP +0.8, a
# 240 MP progressive 4:4:4 JPEG +1.3 GB), and two 240 MP PNGs side by side took a scan to +1.85 GB over the model.
# Above 48 MP, so that 24/48 MP phone HEICs (decoded from their thumbnail) keep their parallel decode.
HEAVY_STILL_PIXELS = 50_000_000


def is_heavy(entry: FileEntry) -> bool:
    """Whether preparing ``entry`` takes a heavy permit (see ``ReadAhead``): a video, or a still held at more than
    ``HEAVY_STILL_PIXELS`` while it is decoded (only its header is read here)."""
    if entry.kind == Kind.VIDEO:
        return True
    if entry.still is not None or entry.path.rsplit(".", 1)[-1].lower() in RAW_EXTENSIONS:
        return False  # a RAW is decoded from its embedded preview, or not at all when its still is the photo
    return full_size_pixels(entry.path) > HEAVY_STILL_PIXELS


def file_hash(path: str, kind: Kind = Kind.IMAGE) -> str:
    """blake2b of the whole file; for videos, of its size, first and last MiB (reading GBs would be too slow)."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        if kind == Kind.VIDEO:
            size = os.fstat(handle.fileno()).st_size
            digest.update(f"video:{size}:".encode())
            digest.update(handle.read(VIDEO_HASH_SPAN))
            if size > 2 * VIDEO_HASH_SPAN:
                handle.seek(size - VIDEO_HASH_SPAN)
            digest.update(handle.read(VIDEO_HASH_SPAN))
            return digest.hexdigest()
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def entry_hash(entry: FileEntry) -> str:
    """``file_hash`` of a walked file (what the plan compares with a vanished item's hash to detect a move)."""
    return file_hash(entry.path, entry.kind)


class Preparer:
    """Turns walked files into records and frames; holds nothing between files besides its collaborators."""

    def __init__(self, settings, encoder: Encoder, renditions: Renditions, ocr: OcrEngine | None = None):
        self.settings = settings
        self.encoder = encoder
        self.renditions = renditions
        self.ocr = ocr  # takes the OCR pre-pass's verdict on the decode made here (None: MS_OCR off)
        self.prelook = PrelookGate(settings.ocr_prelook)  # whether it does, photo by photo
        self.fallback_zone = fallback_zone(settings.timezone)  # for video times with no offset or place

    @property
    def decode_sizes(self) -> dict[str, int]:
        """How large decoded pictures stay: enough for the model input and the thumbnail."""
        return decode_sizes(self.settings, self.encoder.describe().input_size)

    def stalled(self, entry: FileEntry, seconds: float) -> EndMessage:
        """The end of a file given up because its decoding made no progress for ``seconds``."""
        limit = self.settings.decode_timeout
        record = error_record(
            entry,
            f"decoding stalled: no progress for {seconds:.0f} s (MS_DECODE_TIMEOUT is {limit:g} s)",
            ProblemCode.DECODE_STALLED,
        )
        log.warning("giving up %s: %s", entry.path, record.error)
        return EndMessage(record)

    def prepare(self, entry: FileEntry, emit: Callable[[FrameMessage], None]) -> EndMessage:
        """Prepare one file, handing a video's frames to ``emit`` as they are decoded; never raises for the file.

        Whatever a decoder, probe, parser or thumbnailer raises costs this one file, never the scan: the file is
        recorded with the reason and retried when it changes.
        """
        try:
            if entry.kind == Kind.VIDEO:
                return EndMessage(self._video(entry, emit))
            record, prepared = self._photo(entry)
            return EndMessage(record, None if prepared is None else FrameMessage(None, prepared))
        except Exception as exc:
            log.exception("unexpected error preparing %s", entry.path)
            return EndMessage(failed_record(entry, exc))

    def _photo(self, entry: FileEntry) -> tuple[ItemRecord, PreparedPicture | None]:
        """Read once, hash, decode, thumbnail, prepare a photo for the encoder."""
        record = ItemRecord(entry.path, entry.kind, entry.size, entry.mtime_ns, ItemStatus.OK, pair_path=entry.still)
        settings = self.settings
        try:
            with open(entry.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return _failed(record, exc), None
        record.content_hash = hashlib.blake2b(data, digest_size=20).hexdigest()
        if entry.still is not None:  # a camera RAW whose same-name JPEG/HEIC is the photo shown and searched
            record.status = ItemStatus.RAW
            return record, None
        try:
            decoded = decode_image(data, max_pixels=settings.max_image_pixels, **self.decode_sizes)
        except DecodeError as exc:
            return _failed(record, exc), None
        record.motion_offset = _playable_motion_offset(data)
        record.width, record.height, record.taken_at = decoded.width, decoded.height, decoded.taken_at
        locate(record, decoded.location)
        if min(decoded.width, decoded.height) < settings.min_image_size:
            record.status, record.error_code = ItemStatus.SKIPPED, ProblemCode.TOO_SMALL
            record.error = (
                f"too small ({decoded.width}x{decoded.height}; MS_MIN_IMAGE_SIZE is {settings.min_image_size})"
            )
            return record, None
        if record.taken_at is None:
            record.taken_at = _mtime_datetime(entry.mtime_ns)
        key = rendition_key(entry.path, entry.size, entry.mtime_ns)
        try:
            thumbnail = self.renditions.write_thumbnail(key, decoded)
            record.thumbnail = key
            record.phash = _thumbnail_hash(entry, thumbnail)
        except OSError as exc:
            log.warning("cannot write thumbnail for %s: %s", entry.path, exc)
        record.has_text = self._text_verdict(entry, data, decoded)
        return record, self.encoder.prepare(decoded.image)

    def _text_verdict(self, entry: FileEntry, data: bytes, decoded: DecodedImage) -> bool | None:
        """The OCR pre-pass on this decode, where the gate keeps it in the scan (``scan.prelook``); None leaves the
        file to the OCR pass. A failure here costs the verdict, never the photo."""
        if self.ocr is None or not self.prelook.wanted():
            return None
        try:
            self.ocr.load()  # built once per process: its second of start-up is not a pre-look's cost
            started = time.thread_time()
            verdict = self.ocr.scan_verdict(data, decoded.image, max(decoded.width, decoded.height))
        except Exception:
            log.exception("OCR pre-pass failed on %s; the OCR pass will read it", entry.path)
            return None
        if verdict is not None:  # the detector ran (a None is a cheap refusal: too small, an animation)
            # With MS_OCR_THREADS above 1 the runtime's own threads work beside this one, about as much.
            self.prelook.prelook_ran((time.thread_time() - started) * self.ocr.config.threads)
        return verdict

    def _video(self, entry: FileEntry, emit: Callable[[FrameMessage], None]) -> ItemRecord:
        """Probe a video, decide whether it is a Live Photo's motion, else sample, poster and emit its frames."""
        record = ItemRecord(entry.path, Kind.VIDEO, entry.size, entry.mtime_ns, ItemStatus.OK, pair_path=entry.still)
        try:
            record.content_hash = file_hash(entry.path, Kind.VIDEO)
            info = probe(entry.path, self.fallback_zone)
        except (OSError, VideoError) as exc:
            return _failed(record, exc)
        record.width, record.height = info.width, info.height
        record.duration_ms, record.playable = info.duration_ms, info.browser_playable
        record.taken_at = info.created_at or _mtime_datetime(entry.mtime_ns)
        locate(record, info.location)
        if entry.still is not None and is_live_motion(info, entry.still):
            record.status = ItemStatus.MOTION
            return record
        key = rendition_key(entry.path, entry.size, entry.mtime_ns)
        interval_ms = max(1, round(self.settings.frame_interval * 1000))
        poster = None
        skipped_dark = 0
        try:
            sizes = self.decode_sizes
            for frame in sample_frames(entry.path, interval_ms, sizes["min_side"], sizes["min_long_side"]):
                if poster is None or (skipped_dark < POSTER_MAX_SKIPPED and _is_dark(poster)):
                    if poster is not None:
                        skipped_dark += 1
                    poster = frame.image
                emit(FrameMessage(frame.time_ms, self.encoder.prepare(frame.image)))
        except (OSError, VideoError) as exc:
            return _failed(record, exc)
        try:
            self.renditions.write_image_thumbnail(self.renditions.thumbnail_path(key), poster)
            record.thumbnail = key
        except OSError as exc:
            log.warning("cannot write thumbnail for %s: %s", entry.path, exc)
        return record


def _thumbnail_hash(entry: FileEntry, thumbnail: str) -> int | None:
    """The pHash of the thumbnail just written (≈ 3 ms, against decoding it again for each photo when duplicates
    are first grouped); a failure costs the hash (the duplicate finder makes it later), never the photo."""
    try:
        return phash_of_file(thumbnail)
    except Exception:
        log.exception("cannot hash the thumbnail of %s", entry.path)
        return None


def is_live_motion(info: VideoInfo, still_path: str) -> bool:
    """A same-name video is the still's Live Photo motion if their Apple content identifiers match, or — when
    either has none — if it is as short as Live Photo movies are and both were captured at about the same time.

    Without identifiers, a missing capture time on either side means "not a Live Photo": two separate items
    lose nothing, a wrong pairing hides a video.
    """
    try:
        with open(still_path, "rb") as handle:
            data = handle.read()
    except OSError:
        return False  # the still vanished meanwhile: the movie is a video of its own
    still_identifier = still_content_identifier(data) if info.content_identifier else None
    if info.content_identifier and still_identifier:
        return info.content_identifier == still_identifier
    if info.duration_ms is None or info.duration_ms > LIVE_PHOTO_MAX_UNVERIFIED_MS:
        return False
    still_time = still_capture_time(data)
    if still_time is None or info.created_at is None:
        return False
    return abs((still_time - info.created_at).total_seconds()) <= LIVE_PHOTO_MAX_TIME_GAP_S


def failed_record(entry: FileEntry, exc: Exception) -> ItemRecord:
    """The error record of a file whose preparation raised something nobody anticipated."""
    detail = " ".join(str(exc).split())[:UNEXPECTED_DETAIL_CHARS]
    reason = f"unexpected error ({type(exc).__name__}{': ' + detail if detail else ''})"
    return error_record(entry, reason, ProblemCode.UNEXPECTED_ERROR)


def error_record(entry: FileEntry, reason: str, code: ProblemCode) -> ItemRecord:
    """A file's error record, keeping what an unchanged rescan compares so that it does not retry the file."""
    return ItemRecord(
        entry.path,
        entry.kind,
        entry.size,
        entry.mtime_ns,
        ItemStatus.ERROR,
        error=reason,
        error_code=code,
        pair_path=entry.still,
    )


def _failed(record: ItemRecord, exc: OSError | VideoError | DecodeError) -> ItemRecord:
    """``record`` marked with a failure we know: unreadable, not decodable, or (skipped) not a video at all."""
    if isinstance(exc, OSError):
        record.status, record.error = ItemStatus.ERROR, f"cannot read file ({exc.strerror or exc})"
        record.error_code = ProblemCode.UNREADABLE_FILE
    else:
        record.status, record.error = ItemStatus.SKIPPED if isinstance(exc, NotAVideo) else ItemStatus.ERROR, str(exc)
        record.error_code = exc.code
    return record


def _is_dark(image) -> bool:
    return max(image.convert("L").resize((16, 16)).getextrema()) < POSTER_MIN_BRIGHTNESS


def _playable_motion_offset(data: bytes) -> int | None:
    """Where an Android motion photo's video starts, if it holds one with a decodable frame."""
    offset = embedded_motion_offset(data)
    if offset is None:
        return None
    try:
        next(iter(sample_frames(data[offset:], MOTION_PROBE_INTERVAL_MS, min_side=1)))
    except (VideoError, StopIteration):
        return None
    except Exception:
        # The still is fine; only its embedded motion is unusable, so the photo is indexed without it.
        log.warning("embedded motion video at byte %d is unreadable", offset, exc_info=True)
        return None
    return offset


def _mtime_datetime(mtime_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(mtime_ns / 1e9).replace(microsecond=0)

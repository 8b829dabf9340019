"""The stable codes of everything that can go wrong, declared once: API errors, file problems, scan warnings.

A code is a snake_case word that never changes once released (the UI translates it, scripts branch on it); the
message next to it is for people and may be reworded. Each member carries its meaning, which the API
documentation lists (``described``).
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum


class _Code(StrEnum):
    """A StrEnum whose members are declared as ``NAME = "value", "meaning"``."""

    meaning: str

    def __new__(cls, value: str, meaning: str = ""):
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    @classmethod
    def described(cls) -> str:
        """A Markdown list of every code and its meaning (for the API documentation)."""
        return "\n".join(f"- `{code.value}`: {code.meaning}" for code in cls)


class ApiErrorCode(_Code):
    """The ``code`` of a JSON error answered by the API."""

    INVALID_PARAMETER = "invalid_parameter", "A parameter is missing, malformed or out of range (message says which)."
    MISSING_QUERY = "missing_query", "Neither `q` nor `like` (nor a POSTed image) was given."
    CONFLICTING_QUERY = "conflicting_query", "Both `q` and `like` were given."
    MISSING_IMAGE = "missing_image", "The image search has no multipart `image` field."
    UNUSABLE_IMAGE = "unusable_image", "The uploaded query picture cannot be decoded."
    UPLOAD_TOO_LARGE = "upload_too_large", "The request is larger than MS_MAX_UPLOAD_BYTES."
    NOT_A_VIDEO = "not_a_video", "The item is not a video (clips and streams are for videos)."
    CLIP_OUT_OF_RANGE = "clip_out_of_range", "The clip's start is past the end of the video, or end is not after start."
    CLIP_TOO_LONG = "clip_too_long", "The clip is longer than MS_MAX_CLIP_SECONDS."
    NOT_FOUND = "not_found", "No such item (or it is not indexed), frame, motion or route."
    ORIGINAL_GONE = "original_gone", "The item's file is gone, unreadable, or no longer inside the library."
    NO_MOTION = "no_motion", "The photo is not a Live Photo or motion photo."
    TRANSCODE_FAILED = "transcode_failed", "ffmpeg could not cut or convert this video."
    NO_LIBRARY = "no_library", "No library folder is configured (MS_LIBRARY is empty)."
    SCAN_RUNNING = "scan_running", "A scan is already running."
    DATA_DIR_IN_USE = "data_dir_in_use", "Another process owns the data dir and does the scanning."
    NO_SCAN_RUNNING = "no_scan_running", "There is no running scan to pause, resume or cancel."
    LOGIN_REQUIRED = "login_required", "Login is on and the request has no valid session."
    INVALID_TOKEN = "invalid_token", "The API token is missing, malformed or revoked."
    CSRF_FAILED = "csrf_failed", "A session request that changes state lacks the right X-CSRF-Token."
    METHOD_NOT_ALLOWED = "method_not_allowed", "The route does not take this HTTP method."
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable", "The requested byte range is outside the file."
    BAD_REQUEST = "bad_request", "Another kind of bad request (the message says what)."
    HTTP_ERROR = "http_error", "Another HTTP error (the status and message say what)."
    INTERNAL_ERROR = "internal_error", "A bug or an unexpected failure on the server (it is logged)."

    @classmethod
    def for_status(cls, status: int) -> ApiErrorCode:
        """The code of an error that names none, from its HTTP status."""
        return _BY_STATUS.get(status, cls.INTERNAL_ERROR if status >= 500 else cls.HTTP_ERROR)


_BY_STATUS = {
    400: ApiErrorCode.BAD_REQUEST,
    401: ApiErrorCode.LOGIN_REQUIRED,
    403: ApiErrorCode.CSRF_FAILED,
    404: ApiErrorCode.NOT_FOUND,
    405: ApiErrorCode.METHOD_NOT_ALLOWED,
    413: ApiErrorCode.UPLOAD_TOO_LARGE,
    416: ApiErrorCode.RANGE_NOT_SATISFIABLE,
    422: ApiErrorCode.TRANSCODE_FAILED,
}


class ProblemCode(_Code):
    """Why a file was not indexed (``/api/errors``' ``error_code``), or what a scan warns about."""

    UNREADABLE_FILE = "unreadable_file", "The file cannot be read (permission denied, an I/O error)."
    EMPTY_FILE = "empty_file", "The file is empty (0 bytes)."
    UNSUPPORTED_FORMAT = "unsupported_format", "Not an image format this server reads."
    CORRUPT_IMAGE = "corrupt_image", "The image is truncated or corrupt."
    IMAGE_TOO_LARGE = (
        "image_too_large",
        "The image declares more pixels than MS_MAX_IMAGE_PIXELS (a decompression bomb).",
    )
    OUT_OF_MEMORY = "out_of_memory", "Not enough memory to decode the image."
    RAW_NO_PREVIEW = "raw_no_preview", "A camera RAW file without a usable embedded preview picture."
    CORRUPT_VIDEO = "corrupt_video", "The video is not readable (corrupt, truncated or not a video container)."
    NO_DECODER = "no_decoder", "No decoder for the video's codec in the bundled FFmpeg (e.g. Dolby Vision over AV1)."
    NO_VIDEO_FRAMES = "no_video_frames", "Not one frame of the video could be decoded."
    DECODE_STALLED = "decode_stalled", "Decoding made no progress for MS_DECODE_TIMEOUT seconds."
    NOTHING_EMBEDDED = "nothing_embedded", "The model produced no vector for the file."
    UNEXPECTED_ERROR = "unexpected_error", "A decoder, parser or thumbnailer failed in a way nobody anticipated."
    TOO_SMALL = "too_small", "Skipped: smaller than MS_MIN_IMAGE_SIZE."
    NOT_A_VIDEO = "not_a_video", "Skipped: a media file without any video stream (audio only)."
    FOLDER_UNLISTABLE = "folder_unlistable", "A folder could not be listed; its indexed items are kept meanwhile."
    FILE_UNSTATTABLE = "file_unstattable", "A file could not be examined; its indexed item is kept meanwhile."
    LIBRARY_FOLDER_MISSING = "library_folder_missing", "A library folder is missing or empty (an unmounted share?); "
    "its indexed items are kept until it is back."
    UNKNOWN = "unknown", "Recorded by an older release in words this one does not recognise."


@dataclasses.dataclass(frozen=True)
class Problem:
    """A problem in words (``str()`` of it) with its stable code."""

    code: ProblemCode
    text: str

    def __str__(self) -> str:
        return self.text


# How releases before the codes worded each problem (message prefixes; the first that matches wins): read only to
# give rows and scan records they wrote a code. New records carry their code from where the problem was found.
LEGACY_PREFIXES: tuple[tuple[str, ProblemCode], ...] = (
    ("cannot read file", ProblemCode.UNREADABLE_FILE),
    ("empty file", ProblemCode.EMPTY_FILE),
    ("not a readable image (unrecognised or unsupported format)", ProblemCode.UNSUPPORTED_FORMAT),
    ("not a readable image", ProblemCode.CORRUPT_IMAGE),
    ("truncated", ProblemCode.CORRUPT_IMAGE),
    ("invalid image size", ProblemCode.CORRUPT_IMAGE),
    ("refused as a decompression bomb", ProblemCode.IMAGE_TOO_LARGE),
    ("not enough memory", ProblemCode.OUT_OF_MEMORY),
    ("not a readable video", ProblemCode.CORRUPT_VIDEO),
    ("no decoder", ProblemCode.NO_DECODER),
    ("no decodable", ProblemCode.NO_VIDEO_FRAMES),
    ("decoding stalled", ProblemCode.DECODE_STALLED),
    ("nothing could be embedded", ProblemCode.NOTHING_EMBEDDED),
    ("unexpected error", ProblemCode.UNEXPECTED_ERROR),
    ("too small", ProblemCode.TOO_SMALL),
    ("not a video", ProblemCode.NOT_A_VIDEO),
    ("library folder", ProblemCode.LIBRARY_FOLDER_MISSING),
)
_LEGACY_PLACE_REASONS = (
    ("cannot list folder", ProblemCode.FOLDER_UNLISTABLE),
    ("cannot stat", ProblemCode.FILE_UNSTATTABLE),
)


def legacy_code(text: str | None) -> ProblemCode | None:
    """The code of a problem recorded by a release before codes, from its words (None for no problem)."""
    if text is None:
        return None
    matches = [code for prefix, code in LEGACY_PREFIXES if text.startswith(prefix)]
    # An unreachable place's warning reads "PATH: cannot list folder (...); keeping ...".
    matches += [code for reason, code in _LEGACY_PLACE_REASONS if f": {reason}" in text]
    return matches[0] if matches else ProblemCode.UNKNOWN

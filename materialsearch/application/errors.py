"""How a use case refuses a request: bad input (``BadRequest``) or an answer it cannot give (``ApiError``), each
with its stable ``ApiErrorCode``. The web layer answers them as JSON errors; the CLI prints them."""

from __future__ import annotations

from materialsearch.errors import ApiErrorCode


class BadRequest(ValueError):
    """A parameter is missing or malformed (answered with 400, ``code`` and the message)."""

    def __init__(self, message: str, code: ApiErrorCode = ApiErrorCode.BAD_REQUEST):
        super().__init__(message)
        self.code = code


class ApiError(Exception):
    """A request that cannot be answered: ``status`` (the HTTP status it is answered with), a stable ``code`` and
    the message."""

    def __init__(self, status: int, code: ApiErrorCode, message: str):
        super().__init__(message)
        self.status, self.code = status, code

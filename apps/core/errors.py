"""The one base of every domain error.

A service raises a subclass of :class:`AppError` with a message a person understands and the
data a caller needs; it knows nothing about HTTP. The API answers every one of them in one
place, :func:`bmadcc_web.exception_handler.exception_handler`, whose table maps each class to
its status code; pages show ``message``; tasks record it on the row that failed.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A domain error. ``message`` is shown to the user verbatim; ``data`` holds the extra
    fields of the error's API body (JSON-safe values, or model instances the handler knows how
    to serialize)."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = data


class RequestTooLarge(AppError):
    """A request body over its limit, refused before it is read (413): a non-file body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, a multipart upload over ``SLIDE_UPLOAD_MAX_BYTES``."""

"""Errors of export requests and jobs: ``message`` for the user, ``data`` for the API body.

They are :class:`apps.core.errors.AppError` subclasses; ``bmadcc_web.exception_handler`` holds
their status codes.
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import AppError


class ExportRequestError(AppError):
    """A request that cannot become an export (400); nothing was queued."""

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message, **(data or {}))


class EmptySelection(ExportRequestError):
    """No slide, no source set or no format was chosen (400)."""


class LabelsNotCovered(ExportRequestError):
    """The chosen cells carry labels the class map leaves out (400); ``data["labels"]``."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__(
            f"the class map does not cover these labels: {', '.join(labels)}",
            data={"labels": labels},
        )


class NotAllowed(ExportRequestError):
    """The requester sees the data but may not export it (403)."""


class NotDownloadable(ExportRequestError):
    """The job has no ZIP to download (yet, or it wrote a server folder) (409)."""

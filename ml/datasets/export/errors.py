"""Errors of the export writers; ``message`` is fit to show a person, ``data`` is for the API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ExportError(Exception):
    """Base class: an export that cannot be written as asked. Nothing has been written."""

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data or {}


class UnknownFormat(ExportError):
    def __init__(self, names: Iterable[str], known: Iterable[str]) -> None:
        names = sorted(names)
        super().__init__(
            f"unknown export format(s): {', '.join(names)}; use {', '.join(known)}",
            data={"formats": names},
        )


class ClassMapIncomplete(ExportError):
    """Cells carry labels the class map does not hold; ``data["labels"]`` lists them."""

    def __init__(self, labels: Iterable[str]) -> None:
        labels = sorted(labels)
        super().__init__(
            f"the class map does not cover these labels: {', '.join(labels)}",
            data={"labels": labels},
        )

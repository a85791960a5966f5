"""The one error of the interchange readers."""

from __future__ import annotations


class InterchangeError(ValueError):
    """A file that is not of the expected shape; ``message`` is shown to the user verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

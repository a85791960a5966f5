"""Errors of analysis runs: plain classes that carry a message (shown verbatim) and data.

The API maps each class to one status code (api/views.py); a task records the message on the
run or chunk row that failed.
"""

from __future__ import annotations

from typing import Any


class AnalysisError(Exception):
    """Base class; ``message`` is shown to the user verbatim, ``data`` joins the answer."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class SlideNotReady(AnalysisError):
    """The slide is pending or failed ingest (409)."""


class InvalidConfig(AnalysisError):
    """An unknown config key or a bad value; ``data["field"]`` names it (400)."""


class RunFinished(AnalysisError):
    """A finished run is immutable (409)."""


class RunFailure(AnalysisError):
    """A step of a run could not complete; the run ends ``failed`` with this message."""

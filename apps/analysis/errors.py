"""Errors of analysis runs: plain classes that carry a message (shown verbatim) and data.

The API maps each class to one status code (``bmadcc_web.exception_handler``); a task records the message on the
run or chunk row that failed.
"""

from __future__ import annotations

from apps.core.errors import AppError


class AnalysisError(AppError):
    """Base class; ``message`` is shown to the user verbatim, ``data`` joins the answer."""


class SlideNotReady(AnalysisError):
    """The slide is pending or failed ingest (409)."""


class InvalidConfig(AnalysisError):
    """An unknown config key or a bad value; ``data["field"]`` names it (400)."""


class RunStateConflict(AnalysisError):
    """The run's status forbids the action: cancel a finished run, retry a live one (409)."""


class RunFailure(AnalysisError):
    """A step of a run could not complete; the run ends ``failed`` with this message."""

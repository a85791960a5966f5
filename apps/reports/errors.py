"""Errors of reports: :class:`apps.core.errors.AppError` subclasses with a message (shown
verbatim) and data; ``bmadcc_web.exception_handler`` maps each class to one status code."""

from __future__ import annotations

from apps.core.errors import AppError


class ReportError(AppError):
    """Base class; ``message`` is shown to the user verbatim, ``data`` joins the answer."""


class RunNotDone(ReportError):
    """Only a finished (done) run has a report (409)."""


class ReportSigned(ReportError):
    """A signed report version never changes; amend it instead (409)."""


class ReviewIncomplete(ReportError):
    """Cells that need review were not looked at yet; ``data["remaining"]`` (409)."""


class WrongPassword(ReportError):
    """The re-entered password does not match the signed-in account (403)."""


class SignatureLocked(ReportError):
    """Too many wrong signature passwords in a row: this user's signing is locked for a while
    (429); ``data["minutes"]`` is the lockout window."""


class NotSigner(ReportError):
    """Only a project reviewer or admin reviews, signs and amends (403)."""


class InvalidInput(ReportError):
    """A missing reason, an unknown cell, a bad page (400)."""


class NotSignedYet(ReportError):
    """An amendment starts from a signed version only (409)."""


class SlideUnreadable(ReportError):
    """The slide's pixels could not be read for the review crops (422)."""

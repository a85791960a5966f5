"""Errors that carry what the caller needs. Each class's status code is in the one table of
:mod:`bmadcc_web.exception_handler`; ``data`` becomes the extra fields of the API body."""

from __future__ import annotations

from apps.core.errors import AppError


class AgreementError(AppError):
    """Base class; ``message`` is shown to the user verbatim."""


class NotReady(AgreementError):
    """The stage cannot be compared yet (409); ``status`` says why, for the page to show.

    ``status`` is ``no_tasks``, ``blinded`` (with ``submitted`` of ``tasks``) or
    ``one_annotator``.
    """

    def __init__(self, status: str, message: str, *, tasks: int = 0, submitted: int = 0) -> None:
        super().__init__(message, status=status, tasks=tasks, submitted=submitted)
        self.status = status
        self.tasks = tasks
        self.submitted = submitted


class NotReviewer(AgreementError):
    """Adjudication is for the project's reviewers and admins (403)."""


class UnknownDisagreement(AgreementError):
    """A decision names a disagreement the current list does not hold (404)."""


class InvalidRequest(AgreementError):
    """A request that cannot be applied as sent (400), e.g. an edit without a label."""

"""Errors that carry what the caller needs; the API maps each class to one status code."""

from __future__ import annotations


class AgreementError(Exception):
    """Base class; ``message`` is shown to the user verbatim."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotReady(AgreementError):
    """The stage cannot be compared yet (409); ``status`` says why, for the page to show.

    ``status`` is ``no_tasks``, ``blinded`` (with ``submitted`` of ``tasks``) or
    ``one_annotator``.
    """

    status_code = 409

    def __init__(self, status: str, message: str, *, tasks: int = 0, submitted: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.tasks = tasks
        self.submitted = submitted


class NotReviewer(AgreementError):
    """Adjudication is for the project's reviewers and admins (403)."""

    status_code = 403


class UnknownDisagreement(AgreementError):
    """A decision names a disagreement the current list does not hold (404)."""

    status_code = 404


class InvalidRequest(AgreementError):
    """A request that cannot be applied as sent (400), e.g. an edit without a label."""

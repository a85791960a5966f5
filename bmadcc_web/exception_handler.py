"""The API's one answer to domain errors (REST_FRAMEWORK ``EXCEPTION_HANDLER``).

Services raise :class:`apps.core.errors.AppError` subclasses and know nothing about HTTP; this
module holds the one table from error class to status code (HackSoft Django-Styleguide,
"Approach 2"). The body is ``{"detail": message, **data}``, the ``detail`` key being the one
DRF's own errors use, so a client reads every error the same way. Anything else goes to DRF's
default handler, and an unexpected exception still reaches Django (500, traceback in the log).
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.accounts import errors as account_errors
from apps.agreement import errors as agreement_errors
from apps.analysis import errors as analysis_errors
from apps.annotations import errors as annotation_errors
from apps.annotations.api.serializers import AnnotationSerializer
from apps.annotations.models import Annotation
from apps.core.errors import AppError, RequestTooLarge
from apps.exports import errors as export_errors
from apps.registry import errors as registry_errors
from apps.reports import errors as report_errors
from apps.slides import errors as slide_errors

#: Error class -> HTTP status. A class not listed answers as its nearest listed base class.
STATUS: dict[type[AppError], int] = {
    AppError: status.HTTP_400_BAD_REQUEST,
    RequestTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    # accounts
    account_errors.MembershipError: status.HTTP_400_BAD_REQUEST,
    account_errors.UnknownUser: status.HTTP_404_NOT_FOUND,
    account_errors.NotMember: status.HTTP_404_NOT_FOUND,
    account_errors.AlreadyMember: status.HTTP_409_CONFLICT,
    account_errors.LastAdmin: status.HTTP_409_CONFLICT,
    account_errors.UsernameTaken: status.HTTP_409_CONFLICT,
    # annotations
    annotation_errors.AnnotationError: status.HTTP_400_BAD_REQUEST,
    annotation_errors.InvalidAnnotation: status.HTTP_400_BAD_REQUEST,
    annotation_errors.BulkInvalid: status.HTTP_400_BAD_REQUEST,
    annotation_errors.ImportFailed: status.HTTP_400_BAD_REQUEST,
    annotation_errors.InvalidLabelClass: status.HTTP_400_BAD_REQUEST,
    annotation_errors.NotAllowed: status.HTTP_403_FORBIDDEN,
    annotation_errors.StaleVersion: status.HTTP_409_CONFLICT,
    annotation_errors.TileTaken: status.HTTP_409_CONFLICT,
    annotation_errors.LabelInUse: status.HTTP_409_CONFLICT,
    annotation_errors.OwnedByReport: status.HTTP_409_CONFLICT,
    annotation_errors.TaskStateError: status.HTTP_409_CONFLICT,
    annotation_errors.NothingFound: status.HTTP_422_UNPROCESSABLE_ENTITY,
    annotation_errors.SamNotInstalled: status.HTTP_503_SERVICE_UNAVAILABLE,
    # agreement
    agreement_errors.AgreementError: status.HTTP_400_BAD_REQUEST,
    agreement_errors.InvalidRequest: status.HTTP_400_BAD_REQUEST,
    agreement_errors.NotReviewer: status.HTTP_403_FORBIDDEN,
    agreement_errors.UnknownDisagreement: status.HTTP_404_NOT_FOUND,
    agreement_errors.NotReady: status.HTTP_409_CONFLICT,
    # analysis
    analysis_errors.AnalysisError: status.HTTP_400_BAD_REQUEST,
    analysis_errors.InvalidConfig: status.HTTP_400_BAD_REQUEST,
    analysis_errors.SlideNotReady: status.HTTP_409_CONFLICT,
    analysis_errors.RunStateConflict: status.HTTP_409_CONFLICT,
    # exports
    export_errors.ExportRequestError: status.HTTP_400_BAD_REQUEST,
    export_errors.NotAllowed: status.HTTP_403_FORBIDDEN,
    export_errors.NotDownloadable: status.HTTP_409_CONFLICT,
    # registry
    registry_errors.RegistryError: status.HTTP_400_BAD_REQUEST,
    registry_errors.InvalidCard: status.HTTP_400_BAD_REQUEST,
    registry_errors.NotAllowed: status.HTTP_403_FORBIDDEN,
    registry_errors.UploadTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    registry_errors.NothingToRollBack: status.HTTP_409_CONFLICT,
    registry_errors.NotTrainable: status.HTTP_400_BAD_REQUEST,
    # reports
    report_errors.ReportError: status.HTTP_400_BAD_REQUEST,
    report_errors.InvalidInput: status.HTTP_400_BAD_REQUEST,
    report_errors.WrongPassword: status.HTTP_403_FORBIDDEN,
    report_errors.NotSigner: status.HTTP_403_FORBIDDEN,
    report_errors.SignatureLocked: status.HTTP_429_TOO_MANY_REQUESTS,
    report_errors.RunNotDone: status.HTTP_409_CONFLICT,
    report_errors.ReportSigned: status.HTTP_409_CONFLICT,
    report_errors.ReviewIncomplete: status.HTTP_409_CONFLICT,
    report_errors.NotSignedYet: status.HTTP_409_CONFLICT,
    report_errors.SlideUnreadable: status.HTTP_422_UNPROCESSABLE_ENTITY,
    # slides
    slide_errors.SlideError: status.HTTP_422_UNPROCESSABLE_ENTITY,
    slide_errors.NotAFile: status.HTTP_400_BAD_REQUEST,
    slide_errors.UploadTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    slide_errors.OutsideImportRoots: status.HTTP_403_FORBIDDEN,
    slide_errors.UnsafeFilename: status.HTTP_400_BAD_REQUEST,
    slide_errors.StoreWriteRefused: status.HTTP_500_INTERNAL_SERVER_ERROR,
    slide_errors.StorageFull: status.HTTP_507_INSUFFICIENT_STORAGE,
}


def status_of(exc: AppError) -> int:
    """The status of ``exc``'s class, or of its nearest base class in :data:`STATUS`."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AppError):
        body = {"detail": exc.message} | {k: _json(v) for k, v in exc.data.items()}
        return Response(body, status=status_of(exc))
    return drf_exception_handler(exc, context)


def _json(value: Any) -> Any:
    """A data value as the body holds it: an annotation (``current`` of a 409) as the API
    writes annotations everywhere else, anything else unchanged."""
    if isinstance(value, Annotation):
        return AnnotationSerializer(value).data
    return value

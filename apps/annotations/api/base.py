"""The annotation API's one scoping-and-blinding base, and its one error mapping.

``BlindedViewSet`` extends the project scoping of ``ProjectScopedViewSet`` with the blinding
rule of :func:`apps.annotations.selectors.visible_sets`: every viewset over annotation data
names the path from its model to ``AnnotationSet`` and inherits it, so an object the user may
not see is absent (404) from lists, details, counts, history and crops alike.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.db.models import QuerySet
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from apps.accounts.api.base import ProjectScopedViewSet
from apps.annotations import selectors
from apps.annotations.errors import (
    AnnotationError,
    BulkInvalid,
    LabelInUse,
    NotAllowed,
    NothingFound,
    SamNotInstalled,
    StaleVersion,
    TaskStateError,
    TileTaken,
)

from .serializers import AnnotationSerializer


class AnnotationErrorsMixin:
    """Answers annotation errors through :func:`error_response`, for any view."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, AnnotationError):
            return error_response(exc)
        return super().handle_exception(exc)  # type: ignore[misc]


class BlindedViewSet(AnnotationErrorsMixin, ProjectScopedViewSet):
    #: Lookup path from the model to AnnotationSet ("" when the model is AnnotationSet).
    set_path: str = "set"

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        visible = selectors.visible_sets(self.request.user).values("pk")
        if not self.set_path:
            return queryset.filter(pk__in=visible)
        return queryset.filter(**{f"{self.set_path}__in": visible})


def error_response(exc: AnnotationError) -> Response:
    """The one mapping from annotation errors to HTTP answers."""
    body: dict = {"detail": exc.message}
    code = status.HTTP_400_BAD_REQUEST
    if isinstance(exc, StaleVersion | TileTaken):
        body["current"] = AnnotationSerializer(exc.current).data
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, BulkInvalid):
        body["errors"] = exc.errors
    elif isinstance(exc, LabelInUse):
        body |= {"key": exc.key, "count": exc.count}
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, TaskStateError):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, NotAllowed):
        code = status.HTTP_403_FORBIDDEN
    elif isinstance(exc, SamNotInstalled):
        body |= {"installed": False, "model": None}
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    elif isinstance(exc, NothingFound):
        code = status.HTTP_422_UNPROCESSABLE_ENTITY
    return Response(body, status=code)


class IgnoreFormatParam(DefaultContentNegotiation):
    """Content negotiation that leaves ``?format=`` to the view (export picks a file format)."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)

"""The analysis API: start, list, show, cancel and retry runs; thin views over the services.

Scoping is :class:`ProjectScopedViewSet`'s (an outsider's run is absent: 404); blinding of the
run's output is :func:`apps.analysis.selectors.state_for`'s; errors map to status codes in
:func:`error_response`, the one place.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.base import ProjectScopedViewSet
from apps.analysis import selectors, services
from apps.analysis.errors import AnalysisError, InvalidConfig, RunFinished, SlideNotReady
from apps.analysis.models import AnalysisRun

from .serializers import RunSerializer, StartRunSerializer


class AnalysisRunViewSet(ProjectScopedViewSet):
    """Pipeline runs of the slides in the user's projects. Every project member may start one."""

    queryset = AnalysisRun.objects.select_related("slide__project", "created_by")
    serializer_class = RunSerializer
    project_path = "slide__project"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, AnalysisError):
            return error_response(exc)
        return super().handle_exception(exc)

    def get_queryset(self) -> QuerySet[AnalysisRun]:
        queryset = super().get_queryset()
        slide = self.request.query_params.get("slide")
        if slide is not None:
            if not slide.isdigit():
                raise ValidationError({"slide": "must be a slide id"})
            queryset = queryset.filter(slide_id=int(slide))
        return queryset

    @extend_schema(parameters=[OpenApiParameter("slide", int, required=False)])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_body(request, run) for run in page])

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_body(request, self.get_object()))

    @extend_schema(request=StartRunSerializer, responses={201: RunSerializer})
    def create(self, request: Request) -> Response:
        form = StartRunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        slide = selectors.visible_slide(request.user, form.validated_data["slide"])
        if slide is None:
            raise NotFound("No such slide.")
        run = services.start_run(
            slide=slide, user=request.user, overrides=form.validated_data["config"]
        )
        run = self.get_queryset().get(pk=run.pk)
        return Response(_body(request, run), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        run = services.cancel_run(run=self.get_object(), user=request.user)
        return Response(_body(request, run))

    @extend_schema(request=None, responses={201: RunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        run = services.retry_run(run=self.get_object(), user=request.user)
        run = self.get_queryset().get(pk=run.pk)
        return Response(_body(request, run), status=status.HTTP_201_CREATED)


def _body(request: Request, run: AnalysisRun) -> dict:
    state = selectors.state_for(request.user, run)
    return state | {
        "config": run.config,
        "overrides": run.overrides,
        "slide_sha256": run.slide_sha256,
        "software_version": run.software_version,
        "created_by": run.created_by.get_username() if run.created_by else None,
        "retry_of": run.retry_of_id,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def error_response(exc: AnalysisError) -> Response:
    """The one mapping from analysis errors to HTTP answers."""
    code = status.HTTP_400_BAD_REQUEST
    if isinstance(exc, SlideNotReady | RunFinished):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, InvalidConfig):
        code = status.HTTP_400_BAD_REQUEST
    return Response({"detail": exc.message, **exc.data}, status=code)

"""The analysis API: start, list, show, cancel and retry runs; thin views over the services.

Scoping is :class:`ProjectScopedViewSet`'s (an outsider's run is absent: 404); blinding of the
run's output is :func:`apps.analysis.selectors.state_for`'s; errors map to status codes in
:mod:`bmadcc_web.exception_handler`, the one place.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.base import ProjectScopedViewSet
from apps.accounts.auth import acting_user
from apps.analysis import selectors, services
from apps.analysis.models import AnalysisRun
from apps.core.ids import parse_id
from apps.slides.selectors import visible_slide_or_404

from .serializers import RunSerializer, StartRunSerializer


class AnalysisRunViewSet(ProjectScopedViewSet):
    """Pipeline runs of the slides in the user's projects. Every project member may start one."""

    queryset = AnalysisRun.objects.select_related("slide__project", "created_by")
    serializer_class = RunSerializer
    project_path = "slide__project"

    def get_queryset(self) -> QuerySet[AnalysisRun]:
        queryset = super().get_queryset()
        slide = self.request.query_params.get("slide")
        if slide is not None:
            slide_id = parse_id(slide)
            if slide_id is None:
                raise ValidationError({"slide": "must be a slide id"})
            queryset = queryset.filter(slide_id=slide_id)
        return queryset

    @extend_schema(parameters=[OpenApiParameter("slide", int, required=False)])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response([_body(request, run) for run in page])

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_body(request, self.get_object()))

    @extend_schema(request=StartRunSerializer, responses={201: RunSerializer})
    def create(self, request: Request) -> Response:
        form = StartRunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        slide = visible_slide_or_404(request.user, form.validated_data["slide"])
        run = services.start_run(
            slide=slide, user=acting_user(request), overrides=form.validated_data["config"]
        )
        run = self.get_queryset().get(pk=run.pk)
        return Response(_body(request, run), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        run = services.cancel_run(run=self.get_object(), user=acting_user(request))
        return Response(_body(request, run))

    @extend_schema(request=None, responses={201: RunSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        run = services.retry_run(run=self.get_object(), user=acting_user(request))
        run = self.get_queryset().get(pk=run.pk)
        return Response(_body(request, run), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: {"type": "object", "properties": {"ids": {"type": "array"}}}})
    @action(detail=True, methods=["get"])
    def review(self, request: Request, pk: str) -> Response:
        """Ids of the run's cells that need review (top class probability under 0.60)."""
        return Response({"ids": selectors.review_cell_ids(request.user, self.get_object())})


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

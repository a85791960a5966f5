"""The exports API: request an export, follow its job, download the ZIP (resumable).

Jobs are visible to the admins of their project only (``selectors.visible_jobs``); everyone
else gets 404. Export request errors map to their status code in :meth:`handle_exception`.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.auth import acting_user

from .. import selectors, services
from ..download import ranged_file_response
from ..errors import NotDownloadable
from ..models import JobStatus
from .serializers import ExportJobSerializer, ExportRequestSerializer


class ExportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ExportJobSerializer

    def get_queryset(self):
        return selectors.visible_jobs(self.request.user)

    @extend_schema(request=ExportRequestSerializer, responses={201: ExportJobSerializer})
    def create(self, request: Request) -> Response:
        parsed = ExportRequestSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        job = services.request_export(user=acting_user(request), selection=parsed.validated_data)
        job.refresh_from_db()  # a synchronous worker (tests) may have run it already
        return Response(ExportJobSerializer(job).data, status=status.HTTP_201_CREATED)


class ExportDownloadView(APIView):
    """``GET /api/exports/<id>/download``: the finished ZIP, or the byte range asked for."""

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int):
        job = get_object_or_404(selectors.visible_jobs(request.user), pk=pk)
        if job.status != JobStatus.DONE or not job.output_name.endswith(".zip"):
            raise NotDownloadable(f"export {job.pk} has no ZIP to download ({job.status})")
        return ranged_file_response(request, selectors.output_path(job), filename=job.output_name)

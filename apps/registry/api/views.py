"""The registry API under ``/api/models/``: versions per project and task, their detail and
confusion matrix, activate, roll back, upload, and training jobs.

Members of the project read; only its admins change anything (403 otherwise); everyone else
gets 404, since the querysets hold only the user's projects (``selectors``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.base import projects_of
from apps.accounts.auth import acting_user
from apps.accounts.models import Project
from apps.exports.selectors import visible_jobs as visible_exports

from .. import selectors, training, versions
from ..errors import UploadTooLarge
from ..models import Task
from .serializers import (
    AuditEntrySerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    RollbackSerializer,
    TrainingJobSerializer,
    TrainingRequestSerializer,
    UploadSerializer,
)


def _project(request: Request, project_id: int | str | None) -> Project:
    if project_id is None or not str(project_id).isdigit():
        raise ValidationError({"project": "must be a project id"})
    project = projects_of(request.user).filter(pk=int(project_id)).first()
    if project is None:
        raise NotFound("No such project.")
    return project


class ModelVersionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return selectors.visible_versions(self.request.user)

    def get_serializer_class(self):
        return ModelVersionDetailSerializer if self.action == "retrieve" else ModelVersionSerializer

    def list(self, request: Request) -> Response:
        project = _project(request, request.query_params.get("project"))
        versions.import_installed(project)  # a fresh install lists its day-one models
        queryset = self.get_queryset().filter(project=project)
        task = request.query_params.get("task")
        if task is not None:
            if task not in Task.values:
                raise ValidationError({"task": f"must be one of {', '.join(Task.values)}"})
            queryset = queryset.filter(task=task)
        return Response(ModelVersionSerializer(queryset, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        version = self.get_object()
        data = ModelVersionDetailSerializer(version).data
        data["audit"] = AuditEntrySerializer(selectors.audit_log(version), many=True).data
        return Response(data)

    @action(detail=True, methods=["get"], url_path="confusion.svg")
    def confusion(self, request: Request, pk: str) -> HttpResponse:
        svg = selectors.confusion_svg(self.get_object())
        if svg is None:
            raise NotFound("This version has no confusion matrix.")
        return HttpResponse(svg, content_type="image/svg+xml")

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        version = versions.activate(version=self.get_object(), user=acting_user(request))
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(request=RollbackSerializer, responses={200: ModelVersionSerializer})
    @action(detail=False, methods=["post"])
    def rollback(self, request: Request) -> Response:
        form = RollbackSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = _project(request, form.validated_data["project"])
        version = versions.roll_back(
            project=project, task=form.validated_data["task"], user=acting_user(request)
        )
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: ModelVersionDetailSerializer},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def upload(self, request: Request) -> Response:
        # Refuse an oversized upload from its declared length, before a byte is spooled.
        limit = settings.MODEL_UPLOAD_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if limit and declared.isdigit() and int(declared) > limit:
            raise UploadTooLarge(f"the upload is larger than the {limit:,} byte limit")
        form = UploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = _project(request, form.validated_data["project"])
        weights = form.validated_data["weights"]
        version = versions.register_upload(
            project=project,
            card_bytes=form.validated_data["card"].read(),
            weights_chunks=weights.chunks(),
            weights_name=weights.name,
            user=acting_user(request),
            activate=form.validated_data["activate"],
        )
        return Response(ModelVersionDetailSerializer(version).data, status=status.HTTP_201_CREATED)


class TrainingJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    lookup_value_regex = r"\d+"
    # The answers are training.training_json's objects; the serializer names them for the schema.
    serializer_class = TrainingJobSerializer

    def get_queryset(self):
        return selectors.visible_training_jobs(self.request.user)

    def list(self, request: Request) -> Response:
        return Response([training.training_json(job) for job in self.get_queryset()])

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(training.training_json(self.get_object()))

    @extend_schema(request=TrainingRequestSerializer, responses={201: TrainingJobSerializer})
    def create(self, request: Request) -> Response:
        form = TrainingRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user = acting_user(request)
        # Exports are an admin's: anyone else cannot see the export, so it is 404 for them.
        export = get_object_or_404(visible_exports(user), pk=form.validated_data["export"])
        job = training.start_training(
            export=export,
            task=form.validated_data["task"],
            user=user,
            options=form.validated_data["options"],
        )
        job.refresh_from_db()  # a synchronous worker (tests) may have run it already
        return Response(training.training_json(job), status=status.HTTP_201_CREATED)

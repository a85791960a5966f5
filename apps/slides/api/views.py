"""Slides API: upload, list, detail, thumbnail and associated images; scoped to the user."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.base import ProjectScopedViewSet, projects_of
from apps.core.ids import parse_id
from apps.slides import selectors, services, storage
from apps.slides.deepzoom import TileReadError
from apps.slides.errors import UploadTooLarge
from apps.slides.models import Slide

from .serializers import SlideSerializer, SlideUploadSerializer, ThumbnailQuerySerializer


def discard_spooled_upload(request: Request) -> None:
    """Delete the half-spooled file of a failed multipart parse now, not when it is collected.

    Django closes (so deletes) the spooled files it finished, not the one it was writing when
    the disk filled; its upload handlers keep that one as ``file`` (Django's MultiPartParser
    makes the same assumption in ``_close_files``).
    """
    for handler in request.upload_handlers:
        spooled = getattr(handler, "file", None)
        if spooled is not None:
            spooled.close()


class SlideViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    queryset = Slide.objects.select_related("project")
    serializer_class = SlideSerializer
    parser_classes = [MultiPartParser, FormParser]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        queryset = super().get_queryset()
        project = self.request.query_params.get("project")
        if project is not None:
            project_id = parse_id(project)
            if project_id is None:
                raise ValidationError({"project": "must be a project id"})
            queryset = queryset.filter(project_id=project_id)
        return queryset

    @extend_schema(
        request={"multipart/form-data": SlideUploadSerializer},
        responses={201: SlideSerializer, 200: SlideSerializer},
        description="Upload a slide file. A file already in the project answers 200 with the "
        "existing slide and `duplicate: true`.",
    )
    def create(self, request: Request) -> Response:
        # Refuse an oversized upload from its declared length, before a byte is spooled to disk.
        limit = settings.SLIDE_UPLOAD_MAX_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if limit and declared.isdigit() and int(declared) > limit:
            raise UploadTooLarge(f"the file is larger than the {limit:,} byte limit")
        # Django spools the upload into the store's disk first (FILE_UPLOAD_TEMP_DIR).
        with storage.disk_full_as_error(on_full=lambda: discard_spooled_upload(request)):
            form = SlideUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = projects_of(request.user).filter(pk=form.validated_data["project"]).first()
        if project is None:
            raise NotFound("No such project.")
        upload = form.validated_data["file"]
        # UploadTooLarge (413) answers through the one exception handler.
        intake = services.take_in_upload(
            project=project,
            chunks=upload.chunks(),
            filename=upload.name,
            user=request.user,
            name=form.validated_data.get("name", ""),
        )
        data = SlideSerializer(intake.slide).data | {"duplicate": not intake.created}
        return Response(
            data, status=status.HTTP_201_CREATED if intake.created else status.HTTP_200_OK
        )

    @extend_schema(
        parameters=[ThumbnailQuerySerializer],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: str | None = None) -> HttpResponse:
        slide = self._ready_slide()
        query = ThumbnailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        fmt = query.validated_data["format"]
        try:
            data = selectors.thumbnail_bytes(
                slide, max_size=query.validated_data["max_size"], fmt=fmt
            )
        except TileReadError as exc:
            return Response({"detail": exc.message}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        response = HttpResponse(data, content_type=f"image/{fmt}")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @extend_schema(
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH)],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path=r"associated/(?P<name>[a-z_]+)")
    def associated(self, request: Request, pk: str | None = None, name: str = "") -> HttpResponse:
        slide = self._ready_slide()
        try:
            data = selectors.associated_image_bytes(slide, name)
        except KeyError as exc:
            raise NotFound(f"This slide has no {name} image.") from exc
        return HttpResponse(data, content_type="image/jpeg")

    def _ready_slide(self) -> Slide:
        return selectors.visible_slide_or_404(self.request.user, int(self.kwargs["pk"]), ready=True)

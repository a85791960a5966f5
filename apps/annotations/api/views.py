"""The annotation API: thin views that parse, authorize, call a service or selector, respond.

Scoping and blinding come from ``BlindedViewSet`` (one place); role checks are the permission
classes of ``apps.accounts.api.permissions``, named per action; errors from services map to
status codes in ``bmadcc_web.exception_handler`` (one place).
"""

from __future__ import annotations

import json

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api.base import ProjectScopedViewSet, projects_of
from apps.accounts.api.permissions import IsProjectAdmin
from apps.accounts.auth import acting_user
from apps.accounts.models import Project
from apps.accounts.roles import reviewer_or_admin_projects
from apps.annotations import selectors, services
from apps.annotations.api.parsers import FastJSONParser
from apps.annotations.interchange import path_classes, to_geojson, to_labelme
from apps.annotations.models import Annotation, AnnotationSet, LabelClass, Task
from apps.core.ids import parse_id
from apps.slides.deepzoom import handles
from apps.slides.selectors import visible_slide_or_404
from ml.slide import SlideOpenError, SlideReadError

from . import serializers as s
from .base import BlindedViewSet, IgnoreFormatParam

#: The optional ?slide=&stage= filters shared by the set and task lists.
SLIDE_STAGE_FILTERS = [
    OpenApiParameter("slide", int, required=False),
    OpenApiParameter("stage", str, required=False, enum=["roi", "toi", "cell"]),
]


# -- label schema ---------------------------------------------------------------------------


class LabelClassViewSet(ProjectScopedViewSet):
    """A project's cell classes. Members read; project admins add, rename, retire, delete."""

    queryset = LabelClass.objects.all()
    serializer_class = s.LabelClassSerializer
    pagination_class = None
    action_permissions = {
        "create": [IsProjectAdmin],
        "partial_update": [IsProjectAdmin],
        "destroy": [IsProjectAdmin],
    }

    def get_queryset(self) -> QuerySet[LabelClass]:
        return super().get_queryset().filter(project_id=self.kwargs["project_pk"])

    def _project(self) -> Project:
        """The URL's project among the user's (else 404), checked against this action's
        permissions (else 403) before any label class is looked up."""
        project = projects_of(self.request.user).filter(pk=self.kwargs["project_pk"]).first()
        if project is None:
            raise NotFound("No such project.")
        self.check_object_permissions(self.request, project)
        return project

    def list(self, request: Request, project_pk: int) -> Response:
        self._project()
        return Response(s.LabelClassSerializer(self.get_queryset(), many=True).data)

    def retrieve(self, request: Request, project_pk: int, pk: str) -> Response:
        return Response(s.LabelClassSerializer(self.get_object()).data)

    def create(self, request: Request, project_pk: int) -> Response:
        project = self._project()
        form = s.LabelClassSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        label_class = services.create_label_class(
            project=project,
            key=data["key"],
            name=data["name"],
            colour=data["colour"],
            hotkey=data["hotkey"],
            counted=data.get("counted", True),
        )
        return Response(s.LabelClassSerializer(label_class).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.LabelClassUpdateSerializer, responses=s.LabelClassSerializer)
    def partial_update(self, request: Request, project_pk: int, pk: str) -> Response:
        self._project()
        form = s.LabelClassUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        if "key" in request.data:
            changes["key"] = request.data["key"]
        label_class = services.update_label_class(label_class=self.get_object(), changes=changes)
        return Response(s.LabelClassSerializer(label_class).data)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="the class is in use")})
    def destroy(self, request: Request, project_pk: int, pk: str) -> Response:
        self._project()
        services.delete_label_class(label_class=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- annotation sets ------------------------------------------------------------------------
class AnnotationSetViewSet(mixins.RetrieveModelMixin, BlindedViewSet):
    """Annotation sets the user may see (blinded). POST get-or-creates the caller's own set."""

    queryset = AnnotationSet.objects.select_related("annotator", "slide")
    serializer_class = s.AnnotationSetSerializer
    pagination_class = None
    project_path = "slide__project"
    set_path = ""

    def get_queryset(self) -> QuerySet[AnnotationSet]:
        queryset = super().get_queryset().annotate(annotation_count=selectors.live_count())
        return _by_slide_and_stage(queryset, self.request.query_params)

    @extend_schema(parameters=SLIDE_STAGE_FILTERS)
    def list(self, request: Request) -> Response:
        return Response(s.AnnotationSetSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        request=s.AnnotationSetCreateSerializer,
        responses={201: s.AnnotationSetSerializer, 200: s.AnnotationSetSerializer},
    )
    def create(self, request: Request) -> Response:
        form = s.AnnotationSetCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        slide = visible_slide_or_404(request.user, form.validated_data["slide"])
        stage = form.validated_data["stage"]
        existed = selectors.own_set(request.user, slide_id=slide.pk, stage=stage) is not None
        aset = services.get_or_create_annotator_set(
            slide=slide, stage=stage, user=acting_user(request)
        )
        body = s.AnnotationSetSerializer(self.get_queryset().get(pk=aset.pk)).data
        return Response(body, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": s.ImportSerializer},
        responses={201: OpenApiTypes.OBJECT, 400: s.BulkErrorSerializer},
        description="Import a Labelme (per tile with offset_x/offset_y, or per slide) or QuPath "
        "GeoJSON file into this set: every shape, or none. Unknown labels answer 400 listing "
        "them; map them with label_map {their_label: our_key}.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_file(self, request: Request, pk: str) -> Response:
        aset = self.get_object()
        form = s.ImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        created = services.import_file(
            aset=aset,
            user=acting_user(request),
            data=data["file"].read(),
            fmt=data["format"],
            offset=(data["offset_x"], data["offset_y"]),
            label_map=data["label_map"],
        )
        return Response({"set": aset.pk, "imported": len(created)}, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[s.ExportQuerySerializer],
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
        description="The set's live annotations as a GeoJSON FeatureCollection (QuPath reads it) "
        "or a per-slide Labelme document, in level-0 px.",
    )
    @action(detail=True, methods=["get"], content_negotiation_class=IgnoreFormatParam)
    def export(self, request: Request, pk: str) -> HttpResponse:
        aset = self.get_object()
        query = s.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        fmt = query.validated_data["format"]
        rows = (
            Annotation.objects.filter(set=aset, is_deleted=False)
            .order_by("id")
            .values("id", "geometry", "label", "tile_col", "tile_row", "version")
        )
        slide = aset.slide
        if fmt == "labelme":
            document = to_labelme(
                rows, width=slide.width or 0, height=slide.height or 0, name=slide.name
            )
        else:
            classes = path_classes(slide.project_id)
            document = to_geojson(rows, stage=aset.stage, classes=classes)
        response = HttpResponse(json.dumps(document), content_type="application/json")
        suffix = "json" if fmt == "labelme" else "geojson"
        response["Content-Disposition"] = (
            f'attachment; filename="slide{slide.pk}-{aset.stage}-set{aset.pk}.{suffix}"'
        )
        return response


# -- annotations ----------------------------------------------------------------------------
class AnnotationViewSet(BlindedViewSet):
    """Annotations in level-0 px. Lists are the viewer's compact form; edits carry versions."""

    queryset = Annotation.objects.select_related("set__slide")
    serializer_class = s.AnnotationSerializer
    project_path = "set__slide__project"
    set_path = "set"
    parser_classes = [FastJSONParser]

    @extend_schema(
        parameters=[s.AnnotationListQuerySerializer],
        responses=s.AnnotationCompactSerializer(many=True),
        description="Live annotations of a slide (not paginated), as compact objects. `bbox` "
        "keeps those whose bounding box overlaps the XYXY viewport (level-0 px).",
    )
    def list(self, request: Request) -> HttpResponse:
        query = s.AnnotationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        visible_slide_or_404(request.user, q["slide"])
        body = selectors.compact_annotations_json(
            request.user,
            slide_id=q["slide"],
            stage=q.get("stage"),
            set_id=q.get("set"),
            bbox=q.get("bbox"),
            label=q.get("label"),
        )
        return HttpResponse(body, content_type="application/json")

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.AnnotationSerializer(self.get_object()).data)

    @extend_schema(
        request=s.AnnotationCreateSerializer,
        responses={201: s.AnnotationSerializer, 409: s.ConflictSerializer},
    )
    def create(self, request: Request) -> Response:
        form = s.AnnotationCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        item = dict(form.validated_data)
        aset = _visible_set(request, item.pop("set"))
        annotation = services.create_annotation(aset=aset, user=acting_user(request), item=item)
        return Response(s.AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.AnnotationUpdateSerializer,
        responses={200: s.AnnotationSerializer, 409: s.ConflictSerializer},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        annotation = self.get_object()
        form = s.AnnotationUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        version = changes.pop("version")
        annotation = services.update_annotation(
            annotation_id=annotation.pk, user=acting_user(request), version=version, changes=changes
        )
        return Response(s.AnnotationSerializer(annotation).data)

    @extend_schema(
        parameters=[OpenApiParameter("version", int, required=True)],
        responses={200: s.AnnotationSerializer, 409: s.ConflictSerializer},
        description="Soft delete (history keeps it; POST restore/ brings it back).",
    )
    def destroy(self, request: Request, pk: str) -> Response:
        return self._set_deleted(request, deleted=True, data=request.query_params)

    @extend_schema(
        request=s.VersionSerializer,
        responses={200: s.AnnotationSerializer, 409: s.ConflictSerializer},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        return self._set_deleted(request, deleted=False, data=request.data)

    def _set_deleted(self, request: Request, *, deleted: bool, data) -> Response:
        annotation = self.get_object()
        form = s.VersionSerializer(data=data)
        form.is_valid(raise_exception=True)
        annotation = services.set_deleted(
            annotation_id=annotation.pk,
            user=acting_user(request),
            version=form.validated_data["version"],
            deleted=deleted,
        )
        return Response(s.AnnotationSerializer(annotation).data)

    @extend_schema(
        request=s.BulkCreateSerializer,
        responses={201: OpenApiTypes.OBJECT, 400: s.BulkErrorSerializer},
        description="Create up to 5,000 annotations in one atomic request: all or nothing. "
        "Answers the new ids in item order; a 400 lists every bad item by index.",
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        # Items are validated by the service, not a nested serializer: 5,000 polygons of 60
        # vertices would be 600,000 serializer fields.
        data = request.data
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ValidationError({"items": "a list of annotations is required"})
        set_id = data.get("set")
        if not isinstance(set_id, int) or isinstance(set_id, bool):
            raise ValidationError({"set": "an annotation set id is required"})
        aset = _visible_set(request, set_id)
        created = services.bulk_create_annotations(
            aset=aset, user=acting_user(request), items=data["items"]
        )
        return Response(
            {"set": aset.pk, "created": len(created), "ids": created},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses=s.AnnotationEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def history(self, request: Request, pk: str) -> Response:
        annotation = self.get_object()
        events = annotation.events.select_related("user").order_by("id")
        return Response(s.AnnotationEventSerializer(events, many=True).data)

    @extend_schema(
        parameters=[s.CropQuerySerializer],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY},
    )
    def crop(self, request: Request, pk: str) -> HttpResponse:
        """Routed by hand in urls.py: the crop URL names a file, without a trailing slash."""
        annotation = self.get_object()
        query = s.CropQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            data = selectors.crop_jpeg(annotation, size=query.validated_data["size"])
        except (SlideOpenError, SlideReadError) as exc:
            return Response({"detail": exc.message}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        response = HttpResponse(data, content_type="image/jpeg")
        # A crop changes when the outline does: the version is part of the client's URL key.
        response["Cache-Control"] = "private, max-age=60"
        return response


# -- tasks ----------------------------------------------------------------------------------
class TaskViewSet(mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Assignments of annotators to (slide, stage). Annotators see their own tasks only."""

    queryset = Task.objects.select_related("annotator", "slide__project")
    serializer_class = s.TaskSerializer
    pagination_class = None
    project_path = "slide__project"
    action_permissions = {"create": [IsProjectAdmin], "reopen": [IsProjectAdmin]}

    def get_queryset(self) -> QuerySet[Task]:
        user = self.request.user
        queryset = (
            super()
            .get_queryset()
            .filter(Q(annotator=user) | Q(slide__project__in=reviewer_or_admin_projects(user)))
        )
        return selectors.with_blinded(_by_slide_and_stage(queryset, self.request.query_params))

    @extend_schema(parameters=SLIDE_STAGE_FILTERS)
    def list(self, request: Request) -> Response:
        return Response(s.TaskSerializer(self.get_queryset(), many=True).data)

    @extend_schema(request=s.TaskCreateSerializer, responses={201: s.TaskSerializer})
    def create(self, request: Request) -> Response:
        form = s.TaskCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        slide = visible_slide_or_404(request.user, form.validated_data["slide"])
        self.check_object_permissions(request, slide)
        annotator = (
            slide.project.memberships.filter(user_id=form.validated_data["annotator"])
            .select_related("user")
            .first()
        )
        if annotator is None:
            raise ValidationError({"annotator": "not a member of this slide's project"})
        task = services.assign_task(
            slide=slide,
            stage=form.validated_data["stage"],
            annotator=annotator.user,
            assigned_by=acting_user(request),
        )
        return Response(_task_json(task), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        task = services.start_task(task=self.get_object(), user=acting_user(request))
        return Response(_task_json(task))

    @extend_schema(request=None, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        task = services.submit_task(task=self.get_object(), user=acting_user(request))
        return Response(_task_json(task))

    @extend_schema(request=s.ReopenSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        # The task first: an outsider gets 404 for it, not a validation error that confirms it.
        task = self.get_object()
        form = s.ReopenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        task = services.reopen_task(
            task=task, user=acting_user(request), note=form.validated_data["note"]
        )
        return Response(_task_json(task))


# -- slide-level tools ----------------------------------------------------------------------
class ToiGridView(APIView):
    """The caller's TOI grid: tiles under their own ROI (or the whole slide) and their labels."""

    @extend_schema(responses=s.ToiGridSerializer)
    def get(self, request: Request, pk: int) -> Response:
        slide = visible_slide_or_404(request.user, pk, ready=True)
        return Response(selectors.toi_grid(request.user, slide))


class SamProposeView(APIView):
    """Segment Anything assist: a click (level-0 px) -> a proposed polygon (level-0 px)."""

    @extend_schema(
        request=s.SamClickSerializer,
        responses={200: s.SamProposalSerializer, 503: s.SamStatusSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        slide = visible_slide_or_404(request.user, pk, ready=True)
        form = s.SamClickSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # Imported here: torch and segment_anything load only when someone asks for SAM.
        from apps.annotations import sam

        proposal = sam.get_assist().propose(
            handles.get(slide.viewable_file).reader,
            slide.sha256,
            form.validated_data["x"],
            form.validated_data["y"],
        )
        return Response(
            {"polygon": proposal.polygon, "score": proposal.score, "cached": proposal.cached}
        )


class SamStatusView(APIView):
    @extend_schema(responses=s.SamStatusSerializer)
    def get(self, request: Request) -> Response:
        from apps.annotations import sam

        return Response(sam.status())


# -- helpers --------------------------------------------------------------------------------
def _by_slide_and_stage(queryset: QuerySet, params) -> QuerySet:
    if params.get("slide"):
        queryset = queryset.filter(slide_id=_int_param(params, "slide"))
    if params.get("stage"):
        queryset = queryset.filter(stage=params["stage"])
    return queryset


def _int_param(params, name: str) -> int:
    number = parse_id(params.get(name, ""))
    if number is None:
        raise ValidationError({name: "must be an integer id"})
    return number


def _task_json(task: Task) -> dict:
    """``task`` as the API shows it, read back with its ``blinded`` (it may have changed)."""
    fresh = selectors.with_blinded(Task.objects.select_related("annotator")).get(pk=task.pk)
    return s.TaskSerializer(fresh).data


def _visible_set(request: Request, set_id: int) -> AnnotationSet:
    aset = (
        selectors.visible_sets(request.user)
        .select_related("slide__project")
        .filter(pk=set_id)
        .first()
    )
    if aset is None:
        raise NotFound("No such annotation set.")
    return aset

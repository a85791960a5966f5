"""The agreement API: thin views over the agreement selectors and services.

Scoping is ``ProjectScopedViewSet``'s (an outsider gets 404); a report exists only for an
unblinded stage (409 with the reason otherwise); adjudication is for reviewers and admins.
GETs only read: a report is computed, and an adjudication's consensus filled, by a django-q2
job that a POST queues (202) and whose row the page polls (``/api/agreement/jobs/<id>/``).
Errors map to status codes in one place, :mod:`bmadcc_web.exception_handler`.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.base import ProjectScopedViewSet
from apps.accounts.api.permissions import IsReviewerOrAdmin
from apps.accounts.models import Project
from apps.agreement import presenters, selectors, services
from apps.agreement.models import Adjudication, AgreementJob
from apps.annotations.models import Stage
from apps.core.jobs import job_json
from apps.slides.models import Slide

from . import serializers as s

STAGE_PARAM = OpenApiParameter("stage", str, required=False, enum=list(Stage.values))


def stage_of(request: Request) -> str | None:
    """``?stage=`` when given (400 unless roi, toi or cell)."""
    stage = request.query_params.get("stage") or None
    if stage is not None and stage not in Stage.values:
        raise ValidationError({"stage": f"{stage!r} is not one of roi, toi, cell"})
    return stage


def required_stage(request: Request) -> str:
    stage = stage_of(request)
    if stage is None:
        raise ValidationError({"stage": "required: roi, toi or cell"})
    return stage


class SlideAgreementViewSet(ProjectScopedViewSet):
    """A slide's agreement report per stage, and its adjudication."""

    queryset = Slide.objects.select_related("project")
    project_path = "project"
    action_permissions = {"adjudication": [IsReviewerOrAdmin], "decisions": [IsReviewerOrAdmin]}

    @extend_schema(parameters=[STAGE_PARAM], responses=OpenApiTypes.OBJECT)
    def retrieve(self, request: Request, pk: str) -> Response:
        """One stage's stored report (409 until unblinded), or every stage's report or status.

        Nothing is computed here: ``stale: true`` says the annotations changed since the
        report was computed, ``status: not_computed`` that none was yet; ``job`` is the newest
        report job (POST ``report/`` queues one).
        """
        slide = self.get_object()
        stage = stage_of(request)
        if stage is not None:
            return Response(presenters.stage_json(slide, stage))
        return Response(presenters.slide_json(slide))

    @extend_schema(
        parameters=[STAGE_PARAM],
        request=None,
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def report(self, request: Request, pk: str) -> Response:
        """Queue the computation of one stage's report (202); 200 with the job already queued
        or running for it."""
        slide = self.get_object()
        stage = required_stage(request)
        job, created = services.request_report(slide=slide, stage=stage, user=request.user)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(job_json(job), status=code)

    @extend_schema(methods=["GET"], parameters=[STAGE_PARAM], responses=OpenApiTypes.OBJECT)
    @extend_schema(
        methods=["POST"],
        parameters=[STAGE_PARAM],
        request=s.StartAdjudicationSerializer,
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get", "post"])
    def adjudication(self, request: Request, pk: str) -> Response:
        """GET: the adjudication's disagreements, decisions and progress (404 before it
        starts). POST: start it (201; its consensus is filled by the job in ``job``), or
        return the one already started (200)."""
        slide = self.get_object()
        stage = required_stage(request)
        if request.method == "GET":
            return Response(presenters.adjudication_json(_adjudication(slide, stage)))
        form = s.StartAdjudicationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        started, _, created = services.start_adjudication(
            slide=slide,
            stage=stage,
            user=request.user,
            annotator_a=form.validated_data.get("a"),
            annotator_b=form.validated_data.get("b"),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(presenters.adjudication_json(started), status=code)

    @extend_schema(
        parameters=[STAGE_PARAM], request=s.DecisionSerializer, responses=OpenApiTypes.OBJECT
    )
    @action(detail=True, methods=["post"], url_path="adjudication/decisions")
    def decisions(self, request: Request, pk: str) -> Response:
        """Record a decision (A, B or edit) and write it into the consensus set."""
        found = _adjudication(self.get_object(), required_stage(request))
        form = s.DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        decision = services.decide(
            adjudication=found,
            key=data["key"],
            choice=data["choice"],
            user=request.user,
            label=data.get("label"),
            geometry=data.get("geometry"),
            combine=data.get("combine"),
        )
        items = selectors.disagreements(found)
        return Response(
            {
                "decision": presenters.decision_json(decision),
                "progress": selectors.decision_progress(found, items),
            },
            status=status.HTTP_201_CREATED,
        )


def _adjudication(slide: Slide, stage: str) -> Adjudication:
    found = Adjudication.objects.filter(slide=slide, stage=stage).first()
    if found is None:
        raise NotFound("no adjudication of this stage has started")
    return found


class ProjectAgreementViewSet(ProjectScopedViewSet):
    """A project's agreement: per stage, the pooled figures and every slide's report."""

    queryset = Project.objects.all()
    project_path = ""

    @extend_schema(parameters=[STAGE_PARAM], responses=OpenApiTypes.OBJECT)
    def retrieve(self, request: Request, pk: str) -> Response:
        """The stored reports and their aggregate; ``stale`` counts pooled stale reports."""
        project = self.get_object()
        stage = stage_of(request)
        stages = [stage] if stage else list(Stage.values)
        reports = [selectors.project_report(project=project, stage=one) for one in stages]
        return Response(presenters.project_json(project, reports))

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def reports(self, request: Request, pk: str) -> Response:
        """Queue a report job for every comparable slide stage whose report is missing or
        stale (202): the jobs."""
        jobs = services.request_project_reports(project=self.get_object(), user=request.user)
        return Response({"jobs": [job_json(j) for j in jobs]}, status=status.HTTP_202_ACCEPTED)


class AgreementJobViewSet(mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """A report or adjudication-fill job: its state and progress, for the pages to poll."""

    queryset = AgreementJob.objects.all()
    project_path = "slide__project"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(job_json(self.get_object()))

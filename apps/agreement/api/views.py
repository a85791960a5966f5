"""The agreement API: thin views over the report services and the adjudication services.

Scoping is ``ProjectScopedViewSet``'s (an outsider gets 404); a report exists only for an
unblinded stage (409 with the reason otherwise); adjudication is for reviewers and admins.
Errors map to status codes in one place, :mod:`bmadcc_web.exception_handler`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.base import ProjectScopedViewSet
from apps.accounts.models import Project
from apps.agreement import adjudication as adj
from apps.agreement import presenters, selectors, services
from apps.agreement.errors import NotReady
from apps.agreement.models import Adjudication
from apps.annotations.models import LabelClass, Stage
from apps.slides.models import Slide

from . import serializers as s

STAGE_PARAM = OpenApiParameter("stage", str, required=False, enum=list(Stage.values))


def stage_of(request: Request, *, required: bool) -> str | None:
    stage = request.query_params.get("stage") or None
    if stage is None and required:
        raise ValidationError({"stage": "required: roi, toi or cell"})
    if stage is not None and stage not in Stage.values:
        raise ValidationError({"stage": f"{stage!r} is not one of roi, toi, cell"})
    return stage


class SlideAgreementViewSet(ProjectScopedViewSet):
    """A slide's agreement report per stage, and its adjudication."""

    queryset = Slide.objects.select_related("project")
    project_path = "project"

    @extend_schema(
        parameters=[
            STAGE_PARAM,
            OpenApiParameter("refresh", bool, required=False, description="default true"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        """One stage's report (409 until unblinded), or every stage's report or status.

        A stale report is recomputed unless ``refresh=false``, which returns the stored one
        with ``stale: true``.
        """
        slide = self.get_object()
        stage = stage_of(request, required=False)
        if stage is not None:
            return Response(_slide_stage(slide, stage, refresh=_refresh(request)))
        stages = {}
        for one in Stage.values:
            try:
                stages[one] = _slide_stage(slide, one, refresh=_refresh(request))
            except NotReady as exc:
                stages[one] = presenters.not_ready_json(slide, one, exc)
        return Response({"slide": slide.pk, "slide_name": slide.name, "stages": stages})

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
        starts). POST: start it (201), or return the one already started (200)."""
        slide = self.get_object()
        stage = stage_of(request, required=True)
        selectors.check_reviewer(request.user, slide.project)
        if request.method == "GET":
            found = Adjudication.objects.filter(slide=slide, stage=stage).first()
            if found is None:
                raise NotFound("no adjudication of this stage has started")
            return Response(adjudication_json(found))
        form = s.StartAdjudicationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        started, created = adj.start_adjudication(
            slide=slide,
            stage=stage,
            user=request.user,
            annotator_a=form.validated_data.get("a"),
            annotator_b=form.validated_data.get("b"),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(adjudication_json(started), status=code)

    @extend_schema(
        parameters=[STAGE_PARAM], request=s.DecisionSerializer, responses=OpenApiTypes.OBJECT
    )
    @action(detail=True, methods=["post"], url_path="adjudication/decisions")
    def decisions(self, request: Request, pk: str) -> Response:
        """Record a decision (A, B or edit) and write it into the consensus set."""
        slide = self.get_object()
        stage = stage_of(request, required=True)
        found = Adjudication.objects.filter(slide=slide, stage=stage).first()
        if found is None:
            raise NotFound("no adjudication of this stage has started")
        form = s.DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        decision = adj.decide(
            adjudication=found,
            key=data["key"],
            choice=data["choice"],
            user=request.user,
            label=data.get("label"),
            geometry=data.get("geometry"),
            combine=data.get("combine"),
        )
        items = adj.comparison(found).items
        return Response(
            {"decision": decision_json(decision), "progress": adj.progress(found, items)},
            status=status.HTTP_201_CREATED,
        )


class ProjectAgreementViewSet(ProjectScopedViewSet):
    """A project's agreement: per stage, the pooled figures and every slide's report."""

    queryset = Project.objects.all()
    project_path = ""

    @extend_schema(parameters=[STAGE_PARAM], responses=OpenApiTypes.OBJECT)
    def retrieve(self, request: Request, pk: str) -> Response:
        project = self.get_object()
        stage = stage_of(request, required=False)
        stages = [stage] if stage else list(Stage.values)
        reports = [services.project_report(project=project, stage=one) for one in stages]
        return Response(presenters.project_json(project, reports))


def _refresh(request: Request) -> bool:
    return request.query_params.get("refresh", "true").lower() not in {"0", "false", "no"}


def _slide_stage(slide: Slide, stage: str, *, refresh: bool) -> dict[str, Any]:
    if refresh:
        return presenters.report_json(slide, stage, services.slide_report(slide=slide, stage=stage))
    report, stale = services.stored_report(slide=slide, stage=stage)
    if report is None:
        return presenters.report_json(slide, stage, services.slide_report(slide=slide, stage=stage))
    body = presenters.report_json(slide, stage, services.ReportResult(report))
    return body | {"stale": stale}


def adjudication_json(found: Adjudication) -> dict[str, Any]:
    """Everything the adjudication page needs: sets, progress, items with their decisions."""
    items = adj.comparison(found).items
    decisions = {d.key: decision_json(d) for d in found.decisions.all()}
    classes = LabelClass.objects.filter(project=found.slide.project)
    return {
        "id": found.pk,
        "slide": found.slide_id,
        "stage": found.stage,
        "set_a": {"id": found.set_a_id, "annotator": str(found.set_a.annotator)},
        "set_b": {"id": found.set_b_id, "annotator": str(found.set_b.annotator)},
        "consensus": found.consensus_id,
        "iou_threshold": found.iou_threshold,
        "started_at": found.started_at.isoformat(),
        "completed_at": found.completed_at.isoformat() if found.completed_at else None,
        "progress": adj.progress(found, items),
        "items": [i.to_dict() | {"decision": decisions.get(i.key)} for i in items],
        "classes": [
            {"key": c.key, "name": c.name, "colour": c.colour, "retired": c.retired}
            for c in classes
        ],
    }


def decision_json(decision: Any) -> dict[str, Any]:
    return {
        "key": decision.key,
        "kind": decision.kind,
        "choice": decision.choice,
        "label": decision.label,
        "results": decision.results,
        "decided_by": str(decision.decided_by) if decision.decided_by else None,
        "decided_at": decision.decided_at.isoformat(),
    }

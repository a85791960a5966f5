"""Agreement reports: computed from stored annotations, cached with the state they came from,
recomputed when that state changes.

Figures come from :mod:`ml.agreement` (pure numpy/shapely); this module only loads the sets,
calls it and stores the result. A slide report holds every annotator pair of the stage (and
Fleiss' kappa when there are more than two); a project report pools every pair of every
comparable slide, each (slide, pair) being one unit of the slide bootstrap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from django.db import transaction
from django.utils import timezone

import ml.agreement as ag
from apps.accounts.models import Project
from apps.annotations.models import AnnotationSet, Stage, Task
from apps.slides.models import Slide

from . import selectors
from .errors import NotReady
from .models import SlideReport


@dataclass(frozen=True)
class ReportResult:
    """A slide report and how this call got it.

    ``recomputed``: the figures were computed in this call. ``was_stale``: a previous report
    existed but the annotations had changed since (``previous_computed_at`` says when it was made).
    """

    report: SlideReport
    recomputed: bool = False
    was_stale: bool = False
    previous_computed_at: datetime | None = None


def slide_report(*, slide: Slide, stage: str) -> ReportResult:
    """The up-to-date report of (slide, stage), computing it when missing or stale.

    Raises :class:`NotReady` while the stage is blinded or has fewer than two annotators.
    """
    sets = selectors.comparable_sets(slide, stage)
    state = selectors.source_state(sets, project=slide.project, stage=stage)
    report = SlideReport.objects.filter(slide=slide, stage=stage).first()
    if report is not None and report.source_state == state:
        return ReportResult(report)
    previous = report.computed_at if report is not None else None
    fresh = _store(slide=slide, stage=stage, sets=sets, state=state)
    return ReportResult(fresh, True, report is not None, previous)


def stored_report(*, slide: Slide, stage: str) -> tuple[SlideReport | None, bool]:
    """The stored report without recomputing, and whether it is stale (raises NotReady)."""
    sets = selectors.comparable_sets(slide, stage)
    report = SlideReport.objects.filter(slide=slide, stage=stage).first()
    if report is None:
        return None, True
    state = selectors.source_state(sets, project=slide.project, stage=stage)
    return report, report.source_state != state


@transaction.atomic
def _store(
    *, slide: Slide, stage: str, sets: list[AnnotationSet], state: dict[str, Any]
) -> SlideReport:
    started = time.perf_counter()
    figures = compute_figures(slide=slide, stage=stage, sets=sets)
    report, _ = SlideReport.objects.update_or_create(
        slide=slide,
        stage=stage,
        defaults={
            "figures": figures,
            "source_state": state,
            "computed_at": timezone.now(),
            "compute_seconds": time.perf_counter() - started,
        },
    )
    return report


def compute_figures(*, slide: Slide, stage: str, sets: list[AnnotationSet]) -> dict[str, Any]:
    """Every figure of (slide, stage) for ``sets`` (>= 2): pairs in annotator order, Fleiss."""
    loaded = [selectors.load(s) for s in sets]
    figures: dict[str, Any] = {
        "stage": stage,
        "annotators": [
            {"id": s.annotator_id, "username": s.annotator.get_username(), "set": s.pk}
            for s in sets
        ],
    }
    pairs = list(combinations(range(len(sets)), 2))
    if stage == Stage.ROI:
        per_pair = {
            (i, j): ag.roi_agreement(loaded[i].geometries, loaded[j].geometries).to_dict()
            for i, j in pairs
        }
        fleiss = None
    elif stage == Stage.TOI:
        tiles = [x.tile_labels() for x in loaded]
        per_pair = {(i, j): ag.toi_agreement(tiles[i], tiles[j]).to_dict() for i, j in pairs}
        fleiss = ag.fleiss_tiles(tiles).to_dict() if len(sets) > 2 else None
    else:
        per_pair, fleiss = _cell_figures(slide.project, loaded)
        figures["iou_threshold"] = selectors.iou_threshold()
    figures["pairs"] = [{"a": i, "b": j, "figures": per_pair[i, j]} for i, j in pairs]
    figures["fleiss"] = fleiss
    return figures


def _cell_figures(
    project: Project, loaded: list[selectors.Loaded]
) -> tuple[dict[tuple[int, int], dict[str, Any]], dict[str, Any] | None]:
    classes = selectors.class_keys(project)
    labels = [x.labels for x in loaded]
    matches = ag.match_all([x.geometries for x in loaded], iou_threshold=selectors.iou_threshold())
    per_pair = {
        (i, j): ag.cell_agreement(match, labels[i], labels[j], classes).to_dict()
        for (i, j), match in matches.items()
    }
    fleiss = ag.fleiss_cells(matches, labels, classes).to_dict() if len(loaded) > 2 else None
    return per_pair, fleiss


# ------------------------------------------------------------------------------- project


@dataclass(frozen=True)
class SlideRow:
    """One slide of a project report: its report, or why there is none (``status``)."""

    slide: Slide
    status: str
    message: str = ""
    result: ReportResult | None = None


@dataclass(frozen=True)
class ProjectStage:
    """A project's figures for one stage: per-slide rows and the pooled aggregate."""

    stage: str
    rows: list[SlideRow]
    aggregate: dict[str, Any] | None
    units: int


def project_report(*, project: Project, stage: str) -> ProjectStage:
    """Per-slide reports (refreshed when stale) of every slide with tasks at ``stage``, and
    their aggregate over all (slide, annotator pair) units; ``aggregate`` is None without any."""
    slide_ids = Task.objects.filter(slide__project=project, stage=stage).values("slide")
    rows = [
        _row(slide, stage)
        for slide in Slide.objects.filter(pk__in=slide_ids).order_by("name", "id")
    ]
    pairs = [p["figures"] for r in rows if r.result for p in r.result.report.figures["pairs"]]
    aggregate = _aggregate(stage, pairs) if pairs else None
    return ProjectStage(stage, rows, aggregate, len(pairs))


def _row(slide: Slide, stage: str) -> SlideRow:
    try:
        return SlideRow(slide, "ready", result=slide_report(slide=slide, stage=stage))
    except NotReady as exc:
        return SlideRow(slide, exc.status, exc.message)


def _aggregate(stage: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    if stage == Stage.ROI:
        return ag.aggregate_roi([ag.RoiAgreement.from_dict(p) for p in pairs]).to_dict()
    if stage == Stage.TOI:
        return ag.aggregate_toi([ag.ToiAgreement.from_dict(p) for p in pairs]).to_dict()
    return ag.aggregate_cells([ag.CellAgreement.from_dict(p) for p in pairs]).to_dict()

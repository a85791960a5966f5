"""Reads for agreement: which sets a stage compares, what they hold, and their source state.

A (slide, stage) is comparable once it is *unblinded* (the rule of
:func:`apps.annotations.selectors.blind_state`: at least one task, every task submitted) and
at least two assigned annotators have a set. Annotators are ordered by user id, so "A" and "B"
are stable between reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, Sum

from apps.accounts import roles
from apps.accounts.models import Project
from apps.annotations.models import (
    Annotation,
    AnnotationSet,
    LabelClass,
    SetSource,
    Stage,
    Task,
)
from apps.annotations.selectors import blind_state
from apps.slides.models import Slide

from .errors import NotReady, NotReviewer

#: Published inter-observer figures (SPEC §5), drawn as reference lines on the report.
PUBLISHED = {"roi": 0.91, "toi": 0.88, "cell": 0.85, "class": 0.82}


def iou_threshold() -> float:
    """The cell-matching IoU threshold: ``settings.AGREEMENT_IOU_THRESHOLD``, default 0.5."""
    return float(getattr(settings, "AGREEMENT_IOU_THRESHOLD", 0.5))


def comparable_sets(slide: Slide, stage: str) -> list[AnnotationSet]:
    """The assigned annotators' sets of an unblinded (slide, stage), by annotator id.

    Raises :class:`NotReady` (``no_tasks``, ``blinded`` or ``one_annotator``).
    """
    state = blind_state(slide, stage)
    if not state.tasks:
        raise NotReady("no_tasks", f"no annotator is assigned to the {stage} stage of this slide")
    if state.blinded:
        raise NotReady(
            "blinded",
            f"blinded: {state.submitted} of {state.tasks} {stage} tasks are submitted",
            tasks=state.tasks,
            submitted=state.submitted,
        )
    assigned = Task.objects.filter(slide=slide, stage=stage).values("annotator")
    sets = list(
        AnnotationSet.objects.filter(
            slide=slide, stage=stage, source=SetSource.ANNOTATOR, annotator__in=assigned
        )
        .select_related("annotator")
        .order_by("annotator_id")
    )
    if len(sets) < 2:
        raise NotReady("one_annotator", f"the {stage} stage has fewer than two annotators")
    return sets


def source_state(sets: list[AnnotationSet], *, project: Project, stage: str) -> dict[str, Any]:
    """What a report of ``sets`` depends on; any annotation change changes it (JSON-safe)."""
    rows = (
        Annotation.objects.filter(set__in=sets)
        .values("set")
        .annotate(
            live=Count("id", filter=Q(is_deleted=False)),
            total=Count("id"),
            versions=Sum("version"),
            updated=Max("updated_at"),
        )
    )
    by_set = {row["set"]: row for row in rows}
    state: dict[str, Any] = {
        "sets": [_set_state(s, by_set.get(s.pk)) for s in sets],
        "iou_threshold": iou_threshold(),
    }
    if stage == Stage.CELL:
        state["classes"] = class_keys(project)
    if stage == Stage.TOI:
        state["tile_size"] = project.toi_tile_size
    return state


def _set_state(aset: AnnotationSet, row: dict[str, Any] | None) -> list[Any]:
    row = row or {"live": 0, "total": 0, "versions": 0, "updated": None}
    updated = row["updated"].isoformat() if row["updated"] else None
    return [aset.pk, aset.annotator_id, row["live"], row["total"], row["versions"] or 0, updated]


def class_keys(project: Project) -> list[str]:
    """Every class key of the project in schema order, retired ones too (old labels show)."""
    return list(LabelClass.objects.filter(project=project).values_list("key", flat=True))


def class_names(project: Project) -> dict[str, str]:
    return dict(LabelClass.objects.filter(project=project).values_list("key", "name"))


@dataclass(frozen=True)
class Loaded:
    """Live annotations of one set, in id order: ids, GeoJSON geometries, labels, tiles."""

    ids: list[int]
    geometries: list[dict[str, Any]]
    labels: list[str]
    tiles: list[tuple[int | None, int | None]]

    def tile_labels(self) -> dict[tuple[int, int], str]:
        """``{(col, row): label}`` of the set's labelled tiles."""
        return {
            (c, r): label
            for (c, r), label in zip(self.tiles, self.labels, strict=True)
            if c is not None and r is not None and label
        }

    def tile_ids(self) -> dict[tuple[int, int], int]:
        return {
            (c, r): pk
            for (c, r), pk in zip(self.tiles, self.ids, strict=True)
            if c is not None and r is not None
        }


def load(aset: AnnotationSet) -> Loaded:
    """The live annotations of ``aset``."""
    rows = Annotation.objects.filter(set=aset, is_deleted=False).order_by("id")
    values = list(rows.values_list("id", "geometry", "label", "tile_col", "tile_row"))
    return Loaded(
        ids=[v[0] for v in values],
        geometries=[v[1] for v in values],
        labels=[v[2] for v in values],
        tiles=[(v[3], v[4]) for v in values],
    )


def check_reviewer(user, project: Project) -> None:
    """Raise :class:`NotReviewer` unless ``user`` is a reviewer or admin of ``project``.

    The services' own guard (the API checks ``IsReviewerOrAdmin`` first; the pages rely on it).
    """
    if not roles.is_reviewer_or_admin(user, project):
        raise NotReviewer("only the project's reviewers and admins adjudicate disagreements")

"""Reads of annotations, and the blinding rule: the ONE place it is written down.

Blinding: for a (slide, stage), an annotator sees another person's set only once that stage has
been assigned and every assigned task is submitted. Until then they see their own set only,
and nothing else of that stage: no other annotator's set, no consensus, no model run. Reviewers
and project admins see every set. Everything that exposes annotations (lists, details, counts,
history, crops, TOI grid, imports, exports) starts from :func:`visible_sets`.

The rule is written twice, side by side and tested to agree: :func:`stage_unblinded`, a
queryset expression (annotations of sets, ``blinded`` of tasks), and :func:`blind_state`, the
counts behind it for one (slide, stage) (agreement reports why a stage is not ready).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    TextField,
)
from django.db.models.functions import Cast
from shapely import box, unary_union
from shapely.geometry import shape
from shapely.prepared import prep

from apps.accounts.models import Project
from apps.accounts.roles import reviewer_or_admin_projects
from apps.slides.deepzoom import handles
from apps.slides.models import Slide
from ml.crops import jpeg, slide_crops
from ml.geometry import Tile, tile_grid

from .models import (
    Annotation,
    AnnotationSet,
    LabelClass,
    SetSource,
    Stage,
    Task,
    TaskState,
    TileLabel,
)


# -- blinding -------------------------------------------------------------------------------
def stage_unblinded() -> Q:
    """A filter/annotation expression over rows with ``slide`` and ``stage`` fields (sets,
    tasks): true where that (slide, stage) has at least one task and every task is submitted."""
    stage_tasks = Task.objects.filter(slide=OuterRef("slide"), stage=OuterRef("stage"))
    return Exists(stage_tasks) & ~Exists(stage_tasks.exclude(state=TaskState.SUBMITTED))


def with_blinded(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """``tasks``, each annotated with ``blinded``: whether its (slide, stage) is still blinded."""
    return tasks.annotate(blinded=ExpressionWrapper(~stage_unblinded(), BooleanField()))


@dataclass(frozen=True)
class BlindState:
    """How far a (slide, stage) is from being unblinded: ``submitted`` of ``tasks``."""

    tasks: int
    submitted: int

    @property
    def blinded(self) -> bool:
        """The rule of :func:`stage_unblinded`, negated, for these counts."""
        return not (self.tasks and self.submitted == self.tasks)


def blind_state(slide: Slide | int, stage: str) -> BlindState:
    """The task counts of one (slide, stage), in one query."""
    counts = Task.objects.filter(slide=slide, stage=stage).aggregate(
        tasks=Count("pk"), submitted=Count("pk", filter=Q(state=TaskState.SUBMITTED))
    )
    return BlindState(tasks=counts["tasks"], submitted=counts["submitted"])


def visible_sets(user) -> QuerySet[AnnotationSet]:
    """Annotation sets ``user`` may see, blinding applied (see the module docstring)."""
    if not user.is_authenticated:
        return AnnotationSet.objects.none()
    return AnnotationSet.objects.filter(
        slide__project__in=Project.objects.visible_to(user).values("pk")
    ).filter(
        Q(slide__project__in=reviewer_or_admin_projects(user))
        | Q(source=SetSource.ANNOTATOR, annotator=user)
        | stage_unblinded()
    )


def live_count() -> Count:
    """An ``annotate`` expression: the number of live annotations of a set."""
    return Count("annotations", filter=Q(annotations__is_deleted=False))


def visible_annotations(user) -> QuerySet[Annotation]:
    """Annotations (deleted ones included) in sets ``user`` may see."""
    return Annotation.objects.filter(set__in=visible_sets(user).values("pk"))


def active_label_keys(project_id: int) -> set[str]:
    return set(
        LabelClass.objects.filter(project_id=project_id, retired=False).values_list(
            "key", flat=True
        )
    )


# The viewer's compact list: one JSON document built from raw rows. Geometry comes out of the
# database as text and is spliced in as is, so 5,000 polygons are never parsed or re-encoded.
_COMPACT_FIELDS = (
    "id",
    "set_id",
    "geometry_text",
    "label",
    "tile_col",
    "tile_row",
    "version",
    "set__annotator_id",
)


def compact_annotations_json(
    user,
    *,
    slide_id: int,
    stage: str | None = None,
    set_id: int | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    label: str | None = None,
) -> bytes:
    """Live annotations of a slide as a JSON array of the viewer's compact objects.

    Each item is ``{id, set, geometry, label, tile_col, tile_row, version, annotator}``.
    ``bbox`` is an XYXY viewport in level-0 px: annotations whose box overlaps it are kept.
    A report's review copies come only when asked for by ``set_id``: they repeat a run's cells,
    and belong to the report, not to the slide's layers.
    """
    sets = visible_sets(user).filter(slide_id=slide_id)
    if stage:
        sets = sets.filter(stage=stage)
    if set_id is not None:
        sets = sets.filter(pk=set_id)
    else:
        sets = sets.exclude(source=SetSource.REPORT_REVIEW)
    rows = Annotation.objects.filter(set__in=sets.values("pk"), is_deleted=False)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        rows = rows.filter(max_x__gte=x0, min_x__lte=x1, max_y__gte=y0, min_y__lte=y1)
    if label is not None:
        rows = rows.filter(label=label)
    rows = rows.annotate(geometry_text=Cast("geometry", TextField())).order_by("id")
    return _compact_json(rows.values_list(*_COMPACT_FIELDS))


def _compact_json(rows: Iterable[tuple[Any, ...]]) -> bytes:
    dumps = json.dumps
    parts = [
        f'{{"id":{pk},"set":{set_pk},"geometry":{geometry},"label":{dumps(label)},'
        f'"tile_col":{_num(col)},"tile_row":{_num(row)},"version":{version},'
        f'"annotator":{_num(annotator)}}}'
        for pk, set_pk, geometry, label, col, row, version, annotator in rows
    ]
    return ("[" + ",".join(parts) + "]").encode()


def _num(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def own_set(user, *, slide_id: int, stage: str) -> AnnotationSet | None:
    return AnnotationSet.objects.filter(
        slide_id=slide_id, stage=stage, source=SetSource.ANNOTATOR, annotator=user
    ).first()


def toi_grid(user, slide: Slide) -> dict[str, Any]:
    """The caller's TOI grid: project tile size, tiles under their own ROI (or all), labels.

    Tiles are the non-overlapping grid over the slide in level-0 px (edge tiles clipped), kept
    when they overlap the caller's own live ROI polygons with positive area; with no ROI of
    their own, the whole slide. Labels come from the caller's own TOI set only.
    """
    size = slide.project.toi_tile_size
    tiles = tile_grid((slide.width or 0, slide.height or 0), size)
    roi = _own_roi_union(user, slide.pk)
    if roi is not None:
        prepared = prep(roi)
        tiles = [t for t in tiles if _overlaps(prepared, roi, box(*t.box))]
    toi_set = own_set(user, slide_id=slide.pk, stage=Stage.TOI)
    labels = {}
    if toi_set is not None:
        live = Annotation.objects.filter(set=toi_set, is_deleted=False)
        labels = {
            (col, row): (label, pk, version)
            for col, row, label, pk, version in live.values_list(
                "tile_col", "tile_row", "label", "id", "version"
            )
        }
    out = [_tile_dict(t, labels.get((t.col, t.row))) for t in tiles]
    toi = sum(1 for t in out if t["label"] == TileLabel.TOI)
    non_toi = sum(1 for t in out if t["label"] == TileLabel.NON_TOI)
    return {
        "tile_size": size,
        "set": toi_set.pk if toi_set else None,
        "restricted_to_roi": roi is not None,
        "tiles": out,
        "counts": {
            "total": len(out),
            "toi": toi,
            "non_toi": non_toi,
            "unlabelled": len(out) - toi - non_toi,
        },
    }


def _own_roi_union(user, slide_id: int):
    roi_set = own_set(user, slide_id=slide_id, stage=Stage.ROI)
    if roi_set is None:
        return None
    geometries = Annotation.objects.filter(set=roi_set, is_deleted=False).values_list(
        "geometry", flat=True
    )
    polygons = [shape(g) for g in geometries]
    return unary_union(polygons) if polygons else None


def _overlaps(prepared, roi, tile) -> bool:
    return prepared.intersects(tile) and roi.intersection(tile).area > 0


def _tile_dict(tile: Tile, labelled: tuple[str, int, int] | None) -> dict[str, Any]:
    label, pk, version = labelled or (None, None, None)
    return {
        "col": tile.col,
        "row": tile.row,
        "x": tile.x,
        "y": tile.y,
        "w": tile.w,
        "h": tile.h,
        "size": max(tile.w, tile.h),
        "label": label,
        "annotation_id": pk,
        "version": version,
    }


def crop_jpeg(annotation: Annotation, *, size: int, margin: float = 0.25) -> bytes:
    """A ``size`` x ``size`` JPEG of the square around the annotation's box plus ``margin``.

    :func:`ml.crops.slide_crops`, the report gallery's crop: read from the coarsest pyramid
    level that still gives ``size`` pixels; parts past the slide edge are white, like empty
    glass.
    """
    reader = handles.get(annotation.set.slide.viewable_file).reader
    box = (annotation.min_x, annotation.min_y, annotation.max_x, annotation.max_y)
    (crop,) = slide_crops(reader, [box], margin, size)
    return jpeg(crop)

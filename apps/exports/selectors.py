"""Reads for exports: which jobs a user sees, and the stored annotations as export input.

Jobs are an admin's business: a user sees the export jobs of the projects they administer,
and nobody else learns that a job exists (404).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.text import slugify

from apps.accounts.models import Membership, Role
from apps.annotations.models import Annotation, AnnotationSet, Stage
from apps.slides.models import Slide
from ml.datasets.export import CellSample, SlideExport, SourceSet, TileSample, compact
from ml.geometry import tile_grid

from .models import ExportJob


def visible_jobs(user) -> QuerySet[ExportJob]:
    """Export jobs of the projects ``user`` administers (none when anonymous)."""
    if not user.is_authenticated:
        return ExportJob.objects.none()
    admin_of = Membership.objects.filter(user=user, role=Role.ADMIN).values("project")
    return ExportJob.objects.filter(project__in=admin_of)


def export_dir() -> Path:
    """The folder every export is written under (``settings.EXPORT_DIR``)."""
    return Path(settings.EXPORT_DIR)


def output_path(job: ExportJob) -> Path:
    """The finished job's ZIP file or folder."""
    return export_dir() / job.output_name


def used_labels(set_ids: list[int]) -> set[str]:
    """Distinct non-empty labels of the live annotations of these (cell) sets."""
    rows = Annotation.objects.filter(set_id__in=set_ids, is_deleted=False).exclude(label="")
    return set(rows.values_list("label", flat=True).distinct())


def slide_export(slide: Slide, sets: dict[str, int], *, tile_size: int) -> SlideExport:
    """The plain-data export input of one slide: ``sets`` maps a stage to its set id.

    Only live annotations are exported; each stage's source records the set's annotation
    version (the sum of its live annotations' versions: any edit changes it).
    """
    live = Annotation.objects.filter(is_deleted=False).order_by("id")
    roi, tiles, cells = [], [], []
    if Stage.ROI in sets:
        roi = [
            g["coordinates"]
            for g in live.filter(set_id=sets[Stage.ROI]).values_list("geometry", flat=True)
        ]
    if Stage.TOI in sets:
        grid = {
            (t.col, t.row): t for t in tile_grid((slide.width or 0, slide.height or 0), tile_size)
        }
        tile_rows = live.filter(set_id=sets[Stage.TOI], tile_col__isnull=False)
        tiles = [
            TileSample(grid[(int(col), int(row))], label)
            for col, row, label in tile_rows.values_list("tile_col", "tile_row", "label")
            if col is not None and row is not None and (col, row) in grid
        ]
    if Stage.CELL in sets:
        cell_rows = live.filter(set_id=sets[Stage.CELL]).values_list("id", "geometry", "label")
        cells = [
            CellSample(compact(g["coordinates"]), label, pk)
            for pk, g, label in cell_rows.iterator()
        ]
    return SlideExport(
        key=f"{slide.pk}-{slugify(slide.name)[:60] or 'slide'}",
        name=slide.name,
        path=str(slide.viewable_file),
        sha256=slide.sha256,
        width=int(slide.width or 0),
        height=int(slide.height or 0),
        roi=roi,
        tiles=tiles,
        cells=cells,
        sources=_sources(sets),
    )


def _sources(sets: dict[str, int]) -> list[SourceSet]:
    rows = (
        AnnotationSet.objects.filter(pk__in=sets.values())
        .select_related("annotator")
        .annotate(
            live=Count("annotations", filter=_live()),
            version_sum=Sum("annotations__version", filter=_live()),
        )
    )
    by_id = {s.pk: s for s in rows}
    out = []
    for stage, set_id in sets.items():
        aset = by_id[set_id]
        out.append(
            SourceSet(
                stage=stage,
                set_id=set_id,
                source=aset.source,
                annotator=aset.annotator.username if aset.annotator else None,
                version=int(aset.version_sum or 0),
                annotations=aset.live,
                extra={"note": aset.note} if aset.note else {},
            )
        )
    return out


def _live() -> Q:
    return Q(annotations__is_deleted=False)

"""Reads for agreement: which sets a stage compares, what they hold, and their source state;
the stored reports (never computed here: a GET only reads), the jobs that compute them, and
an adjudication's disagreement list.

A (slide, stage) is comparable once it is *unblinded* (the rule of
:func:`apps.annotations.selectors.blind_state`: at least one task, every task submitted) and
at least two assigned annotators have a set. Annotators are ordered by user id, so "A" and "B"
are stable between reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db.models import Count, Max, Q, Sum

import ml.agreement as ag
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
from apps.core.jobs import ACTIVE, JobState
from apps.slides.models import Slide

from . import cache
from .errors import NotReady, NotReviewer
from .models import Adjudication, AgreementJob, JobKind, SlideReport

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


# ------------------------------------------------------------------------------ jobs


def latest_job(slide: Slide, stage: str, kind: str) -> AgreementJob | None:
    """The newest job of ``kind`` for (slide, stage): the active one if any, else the last."""
    return AgreementJob.objects.filter(slide=slide, stage=stage, kind=kind).first()


def active_job(slide: Slide, stage: str, kind: str) -> AgreementJob | None:
    return (
        AgreementJob.objects.filter(slide=slide, stage=stage, kind=kind)
        .filter(status__in=ACTIVE)
        .first()
    )


# ------------------------------------------------------------------------------ reports


NOT_COMPUTED = "the figures of this stage have not been computed yet"


@dataclass(frozen=True)
class StoredReport:
    """The stored report of a comparable (slide, stage), as a GET serves it.

    ``report`` is None until a job has computed one. ``stale``: the annotations (or the
    settings the figures depend on) changed since it was computed. ``job``: the newest report
    job, to show its progress or why it failed.
    """

    report: SlideReport | None
    stale: bool
    job: AgreementJob | None


def stored_report(slide: Slide, stage: str) -> StoredReport:
    """The stored report of (slide, stage) and whether it is stale; computes nothing.

    Raises :class:`NotReady` while the stage is blinded or has fewer than two annotators.
    """
    sets = comparable_sets(slide, stage)
    job = latest_job(slide, stage, JobKind.REPORT)
    report = SlideReport.objects.filter(slide=slide, stage=stage).first()
    if report is None:
        return StoredReport(None, True, job)
    state = source_state(sets, project=slide.project, stage=stage)
    return StoredReport(report, report.source_state != state, job)


@dataclass(frozen=True)
class SlideRow:
    """One slide of a project report: its stored report, or why there is none (``status``)."""

    slide: Slide
    status: str
    message: str = ""
    stored: StoredReport | None = None


@dataclass(frozen=True)
class ProjectStage:
    """A project's figures for one stage: per-slide rows and the pooled aggregate of the
    stored reports (``stale`` counts the pooled reports whose annotations changed since)."""

    stage: str
    rows: list[SlideRow]
    aggregate: dict[str, Any] | None
    units: int
    stale: int = 0


def project_report(*, project: Project, stage: str) -> ProjectStage:
    """Every slide with tasks at ``stage`` with its stored report, and the aggregate of those
    reports over all (slide, annotator pair) units; ``aggregate`` is None without any."""
    slide_ids = Task.objects.filter(slide__project=project, stage=stage).values("slide")
    rows = [
        _row(slide, stage)
        for slide in Slide.objects.filter(pk__in=slide_ids).order_by("name", "id")
    ]
    stored = [r.stored for r in rows if r.stored and r.stored.report]
    pairs = [p["figures"] for s in stored if s.report for p in s.report.figures["pairs"]]
    aggregate = _aggregate(stage, pairs) if pairs else None
    return ProjectStage(stage, rows, aggregate, len(pairs), sum(s.stale for s in stored))


def _row(slide: Slide, stage: str) -> SlideRow:
    try:
        stored = stored_report(slide, stage)
    except NotReady as exc:
        return SlideRow(slide, exc.status, exc.message)
    if stored.report is None:
        return SlideRow(slide, "not_computed", NOT_COMPUTED, stored)
    return SlideRow(slide, "ready", stored=stored)


def _aggregate(stage: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    if stage == Stage.ROI:
        return ag.aggregate_roi([ag.RoiAgreement.from_dict(p) for p in pairs]).to_dict()
    if stage == Stage.TOI:
        return ag.aggregate_toi([ag.ToiAgreement.from_dict(p) for p in pairs]).to_dict()
    return ag.aggregate_cells([ag.CellAgreement.from_dict(p) for p in pairs]).to_dict()


# ------------------------------------------------------------------------- adjudication


@dataclass(frozen=True)
class Side:
    """One annotator's side of a disagreement: annotation ids (in id order), label, tile.

    Geometries stay in the database (:meth:`geometries` reads them) so the cached list of a
    5,000-cell slide stays small.
    """

    ids: list[int]
    label: str | None
    tile: tuple[int, int] | None = None

    def geometries(self) -> list[dict[str, Any]]:
        rows = Annotation.objects.filter(pk__in=self.ids).order_by("id")
        return list(rows.values_list("geometry", flat=True))

    def to_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "label": self.label, "tile": self.tile}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Side | None:
        if data is None:
            return None
        tile = data["tile"]
        return cls(list(data["ids"]), data["label"], (tile[0], tile[1]) if tile else None)


@dataclass(frozen=True)
class Item:
    """One disagreement; ``bbox`` is XYXY in level-0 px, for the viewer to jump to."""

    key: str
    kind: str
    bbox: tuple[float, float, float, float]
    a: Side | None
    b: Side | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "bbox": list(self.bbox),
            "a": self.a.to_dict() if self.a else None,
            "b": self.b.to_dict() if self.b else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Item:
        x0, y0, x1, y1 = data["bbox"]
        a, b = Side.from_dict(data["a"]), Side.from_dict(data["b"])
        return cls(data["key"], data["kind"], (x0, y0, x1, y1), a, b)


@dataclass(frozen=True)
class Comparison:
    """The disagreements of two sets, and the consensus items (bulk-create items) of what
    they agree on."""

    items: list[Item]
    agreed: list[dict[str, Any]]


def adjudication_state(adjudication: Adjudication) -> dict[str, Any]:
    """The source state of the adjudication's two sets (what its disagreement list is of)."""
    sets = [adjudication.set_a, adjudication.set_b]
    return source_state(sets, project=adjudication.slide.project, stage=adjudication.stage)


def disagreements(adjudication: Adjudication) -> list[Item]:
    """Disagreements of the adjudication's two sets: from the cache, else the list the fill
    job stored on the row; compared afresh only when either set changed since (a reopened
    task), which is rare and takes seconds on a 5,000-cell slide."""
    state = adjudication_state(adjudication)
    items = cache.get_items(adjudication, state)
    if items is None:
        if adjudication.items_state == state:
            items = [Item.from_dict(d) for d in adjudication.items]
        else:
            items = compare_sets(
                adjudication.set_a, adjudication.set_b, adjudication.iou_threshold
            ).items
        cache.put_items(adjudication, state, items)
    return items


def compare_sets(set_a: AnnotationSet, set_b: AnnotationSet, iou_threshold: float) -> Comparison:
    """Compare two sets of the same (slide, stage)."""
    a, b = load(set_a), load(set_b)
    if set_a.stage == Stage.CELL:
        return _compare_cells(a, b, iou_threshold)
    if set_a.stage == Stage.TOI:
        return _compare_tiles(a, b, set_a.slide.project.toi_tile_size)
    return _compare_rois(a, b)


def _compare_cells(a: Loaded, b: Loaded, threshold: float) -> Comparison:
    match = ag.match_cells(a.geometries, b.geometries, iou_threshold=threshold)
    items = [
        Item(
            key=f"cell:{_id(a, d.a)}:{_id(b, d.b)}",
            kind=d.kind,
            bbox=d.bbox,
            a=_cell_side(a, d.a),
            b=_cell_side(b, d.b),
        )
        for d in ag.cell_disagreements(match, a.labels, b.labels)
    ]
    agreed = [
        {"geometry": a.geometries[i], "label": a.labels[i]}
        for i, j in match.pairs.tolist()
        if (a.labels[i] or None) == (b.labels[j] or None)
    ]
    return Comparison(items, agreed)


def _id(loaded: Loaded, index: Any) -> str:
    return "-" if index is None else str(loaded.ids[index])


def _cell_side(loaded: Loaded, index: Any) -> Side | None:
    if index is None:
        return None
    return Side([loaded.ids[index]], loaded.labels[index])


def _compare_tiles(a: Loaded, b: Loaded, tile_size: int) -> Comparison:
    tiles_a, tiles_b = a.tile_labels(), b.tile_labels()
    ids_a, ids_b = a.tile_ids(), b.tile_ids()
    items = []
    for d in ag.toi_disagreements(tiles_a, tiles_b, tile_size):
        tile = cast(ag.TileKey, d.a or d.b)  # a TOI disagreement names the tile on a side
        side_a = Side([ids_a[tile]], tiles_a[tile], tile) if d.a else None
        side_b = Side([ids_b[tile]], tiles_b[tile], tile) if d.b else None
        items.append(Item(f"toi:{tile[0]}:{tile[1]}", d.kind, d.bbox, side_a, side_b))
    agreed = [
        {"tile_col": col, "tile_row": row, "label": label}
        for (col, row), label in sorted(tiles_a.items())
        if tiles_b.get((col, row)) == label
    ]
    return Comparison(items, agreed)


def _compare_rois(a: Loaded, b: Loaded) -> Comparison:
    found = ag.roi_disagreement(a.geometries, b.geometries)
    if found is None:
        return Comparison([], [{"geometry": g, "label": ""} for g in a.geometries])
    side_a, side_b = Side(a.ids, None), Side(b.ids, None)
    return Comparison([Item("roi", "roi", found.bbox, side_a, side_b)], [])


def decision_progress(adjudication: Adjudication, items: list[Item]) -> dict[str, int]:
    """``{"decided", "total"}`` over the current disagreements."""
    keys = {i.key for i in items}
    decided = sum(1 for k in adjudication.decisions.values_list("key", flat=True) if k in keys)
    return {"decided": decided, "total": len(items)}


def fill_job(adjudication: Adjudication) -> AgreementJob | None:
    """The newest job filling ``adjudication``'s consensus (None: filled before jobs existed)."""
    return adjudication.jobs.filter(kind=JobKind.ADJUDICATION).first()


def is_filled(adjudication: Adjudication) -> bool:
    """Whether the consensus holds what both annotators agree on (its fill job is done)."""
    job = fill_job(adjudication)
    return job is None or job.status == JobState.DONE

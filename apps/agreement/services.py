"""Agreement writes: computing and storing reports, and adjudicating into a consensus set.

**Reports.** A request queues an :class:`~apps.agreement.models.AgreementJob`
(:func:`request_report`); the django-q2 task (:mod:`apps.agreement.tasks`) runs
:func:`compute_report`, which loads the sets, calls :mod:`ml.agreement` (pure numpy/shapely)
and stores the figures with the source state they came from. A slide report holds every
annotator pair of the stage (and Fleiss' kappa when there are more than two). Reads, stale or
not, are :mod:`apps.agreement.selectors`'; no GET computes.

**Adjudication.** A reviewer walks the disagreements of two annotator sets and builds a
consensus ``AnnotationSet`` (``source=consensus``) from their choices. Starting one creates the
consensus set and queues a job that fills it with everything the two annotators agree on
(matched cells with the same label, in A's outline; tiles both labelled alike; an ROI both drew
identically). Each disagreement is then decided once: ``a`` copies annotator A's version into
the consensus, ``b`` copies B's (choosing the side that drew nothing leaves the consensus empty
there), ``edit`` stores the reviewer's own label and/or geometry. Deciding again retracts
(soft-deletes) what the previous choice created. Writes go through
:mod:`apps.annotations.services`, so every consensus annotation has its history.
"""

from __future__ import annotations

import time
from itertools import combinations
from typing import Any

import shapely
from django.db import IntegrityError, transaction
from django.utils import timezone

import ml.agreement as ag
from apps.accounts.models import Project
from apps.annotations import services as annotation_services
from apps.annotations.errors import BulkInvalid
from apps.annotations.models import Annotation, AnnotationSet, SetSource, Stage, Task
from apps.core import jobs
from apps.slides.models import Slide

from . import cache, selectors
from .errors import InvalidRequest, NotReady, UnknownDisagreement
from .models import Adjudication, AgreementJob, Choice, Decision, JobKind, SlideReport

TASK = "apps.agreement.tasks.run_job"


# ------------------------------------------------------------------------------ jobs


def _queue(
    *, slide: Slide, stage: str, kind: str, user: Any, adjudication: Adjudication | None = None
) -> tuple[AgreementJob, bool]:
    """The active job of (slide, stage, kind), or a new one queued; ``(job, created)``."""
    jobs.fail_abandoned(AgreementJob.objects.filter(slide=slide, stage=stage, kind=kind))
    active = selectors.active_job(slide, stage, kind)
    if active is not None:
        return active, False
    try:
        with transaction.atomic():
            job = AgreementJob.objects.create(
                slide=slide, stage=stage, kind=kind, adjudication=adjudication, requested_by=user
            )
    except IntegrityError:  # two requests raced; the other one queued it
        return AgreementJob.objects.get(
            slide=slide, stage=stage, kind=kind, status__in=jobs.ACTIVE
        ), False
    jobs.enqueue(TASK, job)
    return job, True


def run_job(job_id: int) -> AgreementJob | None:
    """Claim and run one queued agreement job (the task's body); None if not queued."""
    return jobs.run(AgreementJob, job_id, _work)


def _work(job: AgreementJob, progress: jobs.Progress) -> str:
    if job.kind == JobKind.REPORT:
        return compute_report(job=job, progress=progress)
    return fill_consensus(job=job, progress=progress)


# ------------------------------------------------------------------------------ reports


def request_report(*, slide: Slide, stage: str, user: Any) -> tuple[AgreementJob, bool]:
    """Queue the computation of (slide, stage)'s report; the active job if one is queued.

    Raises :class:`NotReady` while the stage cannot be compared.
    """
    selectors.comparable_sets(slide, stage)
    return _queue(slide=slide, stage=stage, kind=JobKind.REPORT, user=user)


def request_project_reports(*, project: Project, user: Any) -> list[AgreementJob]:
    """Queue a report job for every comparable (slide, stage) of ``project`` whose report is
    missing or stale; the jobs queued (or already active) for them."""
    queued = []
    pairs = Task.objects.filter(slide__project=project).values_list("slide", "stage")
    for slide_id, stage in pairs.order_by("slide", "stage").distinct():
        slide = Slide.objects.select_related("project").get(pk=slide_id)
        try:
            stored = selectors.stored_report(slide, stage)
        except NotReady:
            continue
        if stored.stale:
            queued.append(_queue(slide=slide, stage=stage, kind=JobKind.REPORT, user=user)[0])
    return queued


def compute_report(*, job: AgreementJob, progress: jobs.Progress) -> str:
    """Compute and store the report of the job's (slide, stage); the job's closing message.

    The source state is read before the annotations, so an edit made while this runs leaves
    the stored report stale rather than passing for fresh.
    """
    slide, stage = job.slide, job.stage
    sets = selectors.comparable_sets(slide, stage)
    state = selectors.source_state(sets, project=slide.project, stage=stage)
    progress(0, 3, f"loading the {len(sets)} annotators' sets")
    started = time.perf_counter()
    loaded = [selectors.load(s) for s in sets]
    progress(
        1,
        3,
        "matching cells and computing the figures"
        if stage == Stage.CELL
        else "computing the figures",
    )
    figures = compute_figures(slide=slide, stage=stage, sets=sets, loaded=loaded)
    progress(2, 3, "storing the report")
    seconds = time.perf_counter() - started
    SlideReport.objects.update_or_create(
        slide=slide,
        stage=stage,
        defaults={
            "figures": figures,
            "source_state": state,
            "computed_at": timezone.now(),
            "compute_seconds": seconds,
        },
    )
    progress(3, 3, "stored")
    return f"computed in {seconds:.1f} s"


def compute_figures(
    *,
    slide: Slide,
    stage: str,
    sets: list[AnnotationSet],
    loaded: list[selectors.Loaded],
) -> dict[str, Any]:
    """Every figure of (slide, stage) for ``sets`` (>= 2): pairs in annotator order, Fleiss."""
    figures: dict[str, Any] = {
        "stage": stage,
        "annotators": [
            {"id": s.annotator_id, "username": str(s.annotator), "set": s.pk} for s in sets
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


# ------------------------------------------------------------------------- adjudication


def start_adjudication(
    *,
    slide: Slide,
    stage: str,
    user: Any,
    annotator_a: int | None = None,
    annotator_b: int | None = None,
) -> tuple[Adjudication, AgreementJob | None, bool]:
    """The (slide, stage) adjudication, created with its consensus set if new, and the job
    filling that set with what both annotators agree on.

    ``annotator_a``/``annotator_b`` pick the pair when more than two annotators did the stage
    (default: the first two by user id). An existing adjudication whose fill failed gets a new
    fill job. Returns ``(adjudication, fill job or None when filled, created)``.
    """
    selectors.check_reviewer(user, slide.project)
    existing = Adjudication.objects.filter(slide=slide, stage=stage).first()
    if existing is not None:
        job = selectors.fill_job(existing)
        if job is not None and job.status == jobs.JobState.FAILED:
            job, _ = _queue(
                slide=slide,
                stage=stage,
                kind=JobKind.ADJUDICATION,
                user=user,
                adjudication=existing,
            )
        return existing, job if job is not None and job.active else None, False
    adjudication = _create_adjudication(
        slide=slide, stage=stage, user=user, annotator_a=annotator_a, annotator_b=annotator_b
    )
    job, _ = _queue(
        slide=slide, stage=stage, kind=JobKind.ADJUDICATION, user=user, adjudication=adjudication
    )
    return adjudication, job, True


@transaction.atomic
def _create_adjudication(
    *, slide: Slide, stage: str, user: Any, annotator_a: int | None, annotator_b: int | None
) -> Adjudication:
    set_a, set_b = _pick(selectors.comparable_sets(slide, stage), annotator_a, annotator_b)
    note = f"consensus of {set_a.annotator} and {set_b.annotator}, adjudicated by {user}"
    consensus = AnnotationSet.objects.create(
        slide=slide, stage=stage, source=SetSource.CONSENSUS, note=note
    )
    return Adjudication.objects.create(
        slide=slide,
        stage=stage,
        set_a=set_a,
        set_b=set_b,
        consensus=consensus,
        iou_threshold=selectors.iou_threshold(),
        started_by=user,
    )


def _pick(
    sets: list[AnnotationSet], annotator_a: int | None, annotator_b: int | None
) -> tuple[AnnotationSet, AnnotationSet]:
    if annotator_a is None and annotator_b is None:
        return sets[0], sets[1]
    by_user = {s.annotator_id: s for s in sets}
    if annotator_a not in by_user or annotator_b not in by_user or annotator_a == annotator_b:
        raise InvalidRequest("a and b must be two different annotators of this stage")
    return by_user[annotator_a], by_user[annotator_b]


def fill_consensus(*, job: AgreementJob, progress: jobs.Progress) -> str:
    """Copy what the job's adjudication's two sets agree on into its consensus set (all of it
    or, on an error, none), and cache the disagreement list; the job's closing message."""
    adjudication = job.adjudication
    if adjudication is None:
        raise InvalidRequest(f"job {job.pk} names no adjudication")
    progress(0, 2, "comparing the two annotators' sets")
    state = selectors.adjudication_state(adjudication)
    fresh = selectors.compare_sets(
        adjudication.set_a, adjudication.set_b, adjudication.iou_threshold
    )
    adjudication.items = [i.to_dict() for i in fresh.items]
    adjudication.items_state = state
    adjudication.save(update_fields=["items", "items_state"])
    cache.put_items(adjudication, state, fresh.items)
    progress(1, 2, f"copying {len(fresh.agreed)} agreed annotations into the consensus")
    with transaction.atomic():
        if fresh.agreed:
            annotation_services.bulk_create_annotations(
                aset=adjudication.consensus,
                user=job.requested_by,  # type: ignore[arg-type]
                items=fresh.agreed,
                limit=annotation_services.MAX_IMPORT_ITEMS,
            )
        _update_completion(adjudication)
    progress(2, 2, "done")
    return f"copied {len(fresh.agreed)} agreed annotations; {len(fresh.items)} disagreements"


@transaction.atomic
def decide(
    *,
    adjudication: Adjudication,
    key: str,
    choice: str,
    user: Any,
    label: str | None = None,
    geometry: dict[str, Any] | None = None,
    combine: str | None = None,
) -> Decision:
    """Apply the reviewer's ``choice`` (``a``, ``b`` or ``edit``) to disagreement ``key``."""
    selectors.check_reviewer(user, adjudication.slide.project)
    item = next((i for i in selectors.disagreements(adjudication) if i.key == key), None)
    if item is None:
        raise UnknownDisagreement(f"no current disagreement has the key {key!r}")
    if choice not in Choice.values:
        raise InvalidRequest(f"choice must be one of {', '.join(Choice.values)}, not {choice!r}")
    items = consensus_items(item, choice, label=label, geometry=geometry, combine=combine)
    previous = Decision.objects.select_for_update().filter(adjudication=adjudication, key=key)
    for old in previous:
        _retract(old, adjudication.consensus, user)
    created = _write(adjudication.consensus, user, items) if items else []
    decision, _ = Decision.objects.update_or_create(
        adjudication=adjudication,
        key=key,
        defaults={
            "kind": item.kind,
            "choice": choice,
            "label": label or "",
            "results": created,
            "decided_by": user,
        },
    )
    _update_completion(adjudication)
    return decision


def _write(consensus: AnnotationSet, user: Any, items: list[dict[str, Any]]) -> list[int]:
    """Create ``items`` in the consensus set; their annotation ids."""
    try:
        return annotation_services.bulk_create_annotations(aset=consensus, user=user, items=items)
    except BulkInvalid as exc:  # one decision: say what was wrong, not "1 item invalid"
        raise InvalidRequest("; ".join(e["detail"] for e in exc.errors)) from exc


def consensus_items(
    item: selectors.Item,
    choice: str,
    *,
    label: str | None = None,
    geometry: dict[str, Any] | None = None,
    combine: str | None = None,
) -> list[dict[str, Any]]:
    """The consensus annotations ``choice`` makes of ``item`` (bulk-create items)."""
    if choice in (Choice.A, Choice.B):
        side = item.a if choice == Choice.A else item.b
        return _copy(item, side)
    if item.kind == "roi":
        return _roi_edit(item, geometry, combine)
    if item.kind.startswith("toi"):
        if not label:
            raise InvalidRequest("a tile edit needs a label: toi or non_toi")
        tile = (item.a or item.b).tile  # type: ignore[union-attr]
        return [{"tile_col": tile[0], "tile_row": tile[1], "label": label}]  # type: ignore[index]
    return _cell_edit(item, label, geometry)


def _copy(item: selectors.Item, side: selectors.Side | None) -> list[dict[str, Any]]:
    if side is None:
        return []  # the chosen annotator drew nothing here
    if side.tile is not None:
        return [{"tile_col": side.tile[0], "tile_row": side.tile[1], "label": side.label}]
    return [{"geometry": g, "label": side.label or ""} for g in side.geometries()]


def _cell_edit(
    item: selectors.Item, label: str | None, geometry: dict[str, Any] | None
) -> list[dict[str, Any]]:
    if label is None and geometry is None:
        raise InvalidRequest("an edit needs a label, a geometry or both")
    sides = [s for s in (item.a, item.b) if s is not None]  # a disagreement has one at least
    if label is None:
        label = next((s.label for s in sides if s.label), "")
    return [{"geometry": geometry or sides[0].geometries()[0], "label": label}]


def _roi_edit(
    item: selectors.Item, geometry: dict[str, Any] | None, combine: str | None
) -> list[dict[str, Any]]:
    shapes: Any
    if geometry is not None:
        shapes = ag.to_geometries([geometry])
    elif combine in ("union", "intersection"):
        a = shapely.union_all(ag.to_geometries(item.a.geometries() if item.a else []))
        b = shapely.union_all(ag.to_geometries(item.b.geometries() if item.b else []))
        shapes = [shapely.union(a, b) if combine == "union" else shapely.intersection(a, b)]
    else:
        raise InvalidRequest("an ROI edit needs a geometry, or combine: union or intersection")
    return [{"geometry": g, "label": ""} for g in _polygons(shapes)]


def _polygons(shapes: Any) -> list[dict[str, Any]]:
    """GeoJSON Polygons (list rings) of every polygonal part of ``shapes``."""
    out = []
    for part in shapely.get_parts(shapely.get_parts(list(shapes))):
        if part.geom_type == "Polygon" and not part.is_empty and part.area > 0:
            rings = [part.exterior, *part.interiors]
            coordinates = [[[float(x), float(y)] for x, y in r.coords] for r in rings]
            out.append({"type": "Polygon", "coordinates": coordinates})
    if not out:
        raise InvalidRequest("the edited ROI is empty")
    return out


def _retract(decision: Decision, consensus: AnnotationSet, user: Any) -> None:
    """Soft-delete what an earlier choice put into the consensus set."""
    live = Annotation.objects.filter(pk__in=decision.results, set=consensus, is_deleted=False)
    for annotation_id, version in live.values_list("id", "version"):
        annotation_services.set_deleted(
            annotation_id=annotation_id, user=user, version=version, deleted=True
        )


def _update_completion(adjudication: Adjudication) -> None:
    done = selectors.decision_progress(adjudication, selectors.disagreements(adjudication))
    completed = timezone.now() if done["decided"] == done["total"] else None
    if (adjudication.completed_at is None) != (completed is None):
        adjudication.completed_at = completed
        adjudication.save(update_fields=["completed_at"])

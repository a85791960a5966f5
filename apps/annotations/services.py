"""Writes: label schemas, annotation sets, annotations (with history), tasks.

Every function is keyword-only, typed and atomic. Annotation writes check who may write to the
set (:func:`check_can_write`), validate geometry and label, bump ``version`` and record an
:class:`AnnotationEvent`. A stale edit raises :class:`StaleVersion` after its attempt has been
recorded as a ``conflict`` event, in a transaction of its own so that it survives the refusal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts import roles
from apps.accounts.models import Project
from apps.slides.models import Slide
from ml.classes import DEFAULT_CLASSES, ERYTHROBLAST_UNSTAGED, RESERVED_HOTKEYS

from . import selectors
from .errors import (
    BulkInvalid,
    ImportFailed,
    InvalidAnnotation,
    InvalidLabelClass,
    LabelInUse,
    NotAllowed,
    OwnedByReport,
    StaleVersion,
    TaskStateError,
    TileTaken,
)
from .fast_insert import insert_new
from .history import state_of
from .interchange import map_labels, parse_file
from .models import (
    MACHINE_SOURCES,
    Annotation,
    AnnotationEvent,
    AnnotationSet,
    EventAction,
    LabelClass,
    SetSource,
    Stage,
    Task,
    TaskEvent,
    TaskState,
    TileLabel,
)
from .validation import CleanPolygon, PolygonError, clean_polygon, clean_polygons

#: The most annotations one bulk request may carry.
MAX_BULK_ITEMS = 5000
#: The most shapes one imported file may carry (a whole slide's cells, with room to spare).
MAX_IMPORT_ITEMS = 100_000
_KEY_RE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


# -- label schema ---------------------------------------------------------------------------
@transaction.atomic
def ensure_label_schema(*, project: Project) -> list[LabelClass]:
    """Give ``project`` the default 22-class schema (SPEC §3) unless it has classes already."""
    if not LabelClass.objects.filter(project=project).exists():
        LabelClass.objects.bulk_create(
            LabelClass(
                project=project,
                key=c.key,
                name=c.name,
                counted=c.counted,
                colour=c.colour,
                hotkey=c.hotkey,
                order=i,
            )
            for i, c in enumerate(DEFAULT_CLASSES)
        )
    return list(LabelClass.objects.filter(project=project))


@transaction.atomic
def create_label_class(
    *, project: Project, key: str, name: str, colour: str, hotkey: str, counted: bool = True
) -> LabelClass:
    """Add a class; ``key`` must be new to the project (retired keys stay taken)."""
    if not _KEY_RE.match(key):
        raise InvalidLabelClass(f"key {key!r} must be snake_case letters and digits")
    if LabelClass.objects.filter(project=project, key=key).exists():
        raise InvalidLabelClass(f"key {key!r} is already used in this project (perhaps retired)")
    _check_colour(colour)
    _check_hotkey(project, hotkey, exclude_pk=None)
    last = LabelClass.objects.filter(project=project).order_by("-order").first()
    return LabelClass.objects.create(
        project=project,
        key=key,
        name=name,
        counted=counted,
        colour=colour,
        hotkey=hotkey,
        order=(last.order + 1) if last else 0,
    )


@transaction.atomic
def update_label_class(*, label_class: LabelClass, changes: dict[str, Any]) -> LabelClass:
    """Rename, recolour, re-key or (un)retire a class. ``key`` never changes."""
    allowed = {"name", "counted", "colour", "hotkey", "order", "retired"}
    if "key" in changes and changes["key"] != label_class.key:
        raise InvalidLabelClass("a class key never changes; rename the class instead")
    changes = {k: v for k, v in changes.items() if k in allowed}
    if "colour" in changes:
        _check_colour(changes["colour"])
    becomes_active = not changes.get("retired", label_class.retired)
    if becomes_active and ("hotkey" in changes or label_class.retired):
        _check_hotkey(
            label_class.project,
            changes.get("hotkey", label_class.hotkey),
            exclude_pk=label_class.pk,
        )
    for field, value in changes.items():
        setattr(label_class, field, value)
    label_class.save(update_fields=list(changes) or None)
    return label_class


@transaction.atomic
def delete_label_class(*, label_class: LabelClass) -> None:
    """Delete an unused class; a class any annotation carries raises :class:`LabelInUse`."""
    used = Annotation.objects.filter(
        set__slide__project_id=label_class.project_id, set__stage=Stage.CELL, label=label_class.key
    ).count()
    if used:
        raise LabelInUse(label_class.key, used)
    label_class.delete()


def _check_colour(colour: str) -> None:
    if not _COLOUR_RE.match(colour or ""):
        raise InvalidLabelClass(f"colour {colour!r} must be #rrggbb")


def _check_hotkey(project: Project, hotkey: str, *, exclude_pk: int | None) -> None:
    if len(hotkey) != 1 or not (hotkey.islower() or hotkey.isdigit()):
        raise InvalidLabelClass(f"hotkey {hotkey!r} must be one lowercase letter or digit")
    if hotkey in RESERVED_HOTKEYS:
        raise InvalidLabelClass(f"hotkey {hotkey!r} is reserved by the viewer")
    clash = LabelClass.objects.filter(project=project, hotkey=hotkey, retired=False)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if other := clash.first():
        raise InvalidLabelClass(f"hotkey {hotkey!r} is already used by {other.name}")


# -- sets -----------------------------------------------------------------------------------
@transaction.atomic
def get_or_create_annotator_set(*, slide: Slide, stage: str, user: User) -> AnnotationSet:
    """The caller's own annotator set for (slide, stage), created on first use."""
    aset, _ = AnnotationSet.objects.get_or_create(
        slide=slide, stage=stage, source=SetSource.ANNOTATOR, annotator=user
    )
    return aset


def check_can_write(*, aset: AnnotationSet, user: User, through_report: bool = False) -> None:
    """Raise :class:`NotAllowed` unless ``user`` may change annotations of ``aset``.

    An annotator set belongs to its annotator alone, and freezes once their task for that
    (slide, stage) is submitted. Consensus and model-run sets are edited by reviewers and
    project admins. A report's review copy answers :class:`OwnedByReport` (409) unless
    ``through_report``: the report's services, which check the signature themselves.
    """
    if aset.source == SetSource.REPORT_REVIEW and not through_report:
        raise OwnedByReport(
            f"set {aset.pk} is a report's review copy: its cells change only in the report's "
            "review, and never once the report is signed"
        )
    if aset.source == SetSource.ANNOTATOR:
        if aset.annotator_id != user.pk:
            raise NotAllowed("only the annotator who owns this set may change it")
        task = Task.objects.filter(slide_id=aset.slide_id, stage=aset.stage, annotator=user).first()
        if task is not None and task.state == TaskState.SUBMITTED:
            raise NotAllowed(
                "your task for this slide and stage is submitted; a project admin can reopen it"
            )
    elif not roles.is_reviewer_or_admin(user, aset.slide.project_id):
        raise NotAllowed("only reviewers and project admins change consensus and model-run sets")


# -- annotations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    """What validating an item against one set needs, fetched once per request."""

    aset: AnnotationSet
    slide: Slide
    label_keys: frozenset[str]
    tile_size: int

    @classmethod
    def of(cls, aset: AnnotationSet) -> _Context:
        slide = aset.slide
        keys: set[str] = set()
        if aset.stage == Stage.CELL:
            keys = selectors.active_label_keys(slide.project_id)
            if aset.source in MACHINE_SOURCES:
                # A classifier that cannot stage erythroblasts says so (ml.classes); people do.
                keys.add(ERYTHROBLAST_UNSTAGED)
        return cls(aset, slide, frozenset(keys), slide.project.toi_tile_size)


def _clean_item(ctx: _Context, item: dict[str, Any]) -> dict[str, Any]:
    """Validated model fields for one annotation; raises :class:`InvalidAnnotation`."""
    fields, geometry = _clean_attributes(ctx, item)
    try:
        poly = clean_polygon(geometry, width=ctx.slide.width or 0, height=ctx.slide.height or 0)
    except PolygonError as exc:
        raise InvalidAnnotation(exc.reason) from exc
    return fields | _polygon_fields(poly)


def _clean_items(ctx: _Context, items: Sequence[Any]) -> tuple[list[dict], list[dict]]:
    """Model fields for every item, and ``[{"index", "detail"}]`` for the bad ones.

    Geometries are checked in one batch (:func:`clean_polygons`), which is what makes a bulk
    save of 5,000 cells fast.
    """
    errors: list[dict[str, Any]] = []
    good: list[tuple[int, dict[str, Any], Any]] = []
    for index, item in enumerate(items):
        try:
            good.append((index, *_clean_attributes(ctx, item)))
        except InvalidAnnotation as exc:
            errors.append({"index": index, "detail": exc.message})
    polygons = clean_polygons(
        [geometry for _, _, geometry in good],
        width=ctx.slide.width or 0,
        height=ctx.slide.height or 0,
    )
    rows = []
    for (index, fields, _), poly in zip(good, polygons, strict=True):
        if isinstance(poly, PolygonError):
            errors.append({"index": index, "detail": poly.reason})
        else:
            rows.append(fields | _polygon_fields(poly))
    return rows, sorted(errors, key=lambda e: e["index"])


def _clean_attributes(ctx: _Context, item: Any) -> tuple[dict[str, Any], Any]:
    """Label and tile fields of one item, and its (not yet checked) geometry."""
    if not isinstance(item, dict):
        raise InvalidAnnotation("each item must be an object")
    label = _clean_label(ctx, item.get("label", ""))
    col, row = _clean_tile(ctx, item.get("tile_col"), item.get("tile_row"))
    geometry = item.get("geometry")
    if geometry is None and col is not None and row is not None:
        geometry = tile_geometry(ctx.slide, ctx.tile_size, col, row)
    fields = {
        "label": label,
        "tile_col": col,
        "tile_row": row,
        "probabilities": item.get("probabilities"),
    }
    return fields, geometry


def _polygon_fields(poly: CleanPolygon) -> dict[str, Any]:
    return {
        "geometry": poly.geometry,
        "min_x": poly.min_x,
        "min_y": poly.min_y,
        "max_x": poly.max_x,
        "max_y": poly.max_y,
        "area_px": poly.area_px,
    }


def _clean_label(ctx: _Context, label: Any) -> str:
    if label is None:
        label = ""
    if not isinstance(label, str):
        raise InvalidAnnotation("label must be a string")
    stage = ctx.aset.stage
    if stage == Stage.ROI and label:
        raise InvalidAnnotation("an ROI polygon carries no label")
    if stage == Stage.TOI and label not in TileLabel.values:
        raise InvalidAnnotation(f"a tile label is 'toi' or 'non_toi', not {label!r}")
    if stage == Stage.CELL and label and label not in ctx.label_keys:
        raise InvalidAnnotation(f"unknown or retired cell class {label!r}")
    return label


def _clean_tile(ctx: _Context, col: Any, row: Any) -> tuple[int | None, int | None]:
    if col is None and row is None:
        if ctx.aset.stage == Stage.TOI:
            raise InvalidAnnotation("a tile annotation needs tile_col and tile_row")
        return None, None
    if ctx.aset.stage != Stage.TOI:
        raise InvalidAnnotation("only tile (TOI) annotations carry tile_col/tile_row")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (col, row)):
        raise InvalidAnnotation("tile_col and tile_row must be integers")
    cols = -(-(ctx.slide.width or 0) // ctx.tile_size)
    rows = -(-(ctx.slide.height or 0) // ctx.tile_size)
    if not (0 <= col < cols and 0 <= row < rows):
        raise InvalidAnnotation(f"tile ({col}, {row}) is outside the {cols} x {rows} grid")
    return col, row


def tile_geometry(slide: Slide, tile_size: int, col: int, row: int) -> dict[str, Any]:
    """The grid tile (col, row) as a GeoJSON Polygon in level-0 px, clipped to the slide."""
    x0, y0 = col * tile_size, row * tile_size
    x1, y1 = min(x0 + tile_size, slide.width or 0), min(y0 + tile_size, slide.height or 0)
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [[[float(x), float(y)] for x, y in ring]]}


@transaction.atomic
def create_annotation(*, aset: AnnotationSet, user: User, item: dict[str, Any]) -> Annotation:
    """Create one annotation from ``item`` ({geometry, label, tile_col?, tile_row?})."""
    (pk,) = bulk_create_annotations(aset=aset, user=user, items=[item], single=True)
    return Annotation.objects.select_related("set__slide").get(pk=pk)


@transaction.atomic
def bulk_create_annotations(
    *,
    aset: AnnotationSet,
    user: User,
    items: Sequence[Any],
    single: bool = False,
    limit: int = MAX_BULK_ITEMS,
) -> list[int]:
    """Create up to :data:`MAX_BULK_ITEMS` annotations: all of them, or none. Returns their ids.

    Raises :class:`BulkInvalid` listing every bad item (``single``: :class:`InvalidAnnotation`
    with the one reason), or :class:`TileTaken` when a tile already has a label.
    """
    check_can_write(aset=aset, user=user)
    if len(items) > limit:
        raise InvalidAnnotation(f"at most {limit} items per request, got {len(items)}")
    ctx = _Context.of(aset)
    if single:
        rows = [_clean_item(ctx, item) for item in items]
    else:
        rows, errors = _clean_items(ctx, items)
        if errors:
            raise BulkInvalid(errors)
    _check_tiles_free(aset, rows, single=single)
    created = insert_new(rows, aset=aset, user=user)
    _start_task_on_first_edit(aset=aset, user=user)
    return created


@transaction.atomic
def create_model_run_set(
    *,
    slide: Slide,
    stage: str,
    user: User,
    items: Sequence[Any],
    note: str = "",
) -> AnnotationSet:
    """A new ``model_run`` set of ``slide`` holding ``items``: all of them, or none.

    Items are validated as any bulk save's (:class:`BulkInvalid` lists the bad ones), without a
    size limit or a role check: a pipeline run writes it, on behalf of ``user`` who started it.
    """
    aset = AnnotationSet.objects.create(
        slide=slide, stage=stage, source=SetSource.MODEL_RUN, note=note
    )
    rows, errors = _clean_items(_Context.of(aset), items)
    if errors:
        raise BulkInvalid(errors)
    insert_new(rows, aset=aset, user=user)
    return aset


@transaction.atomic
def import_file(
    *,
    aset: AnnotationSet,
    user: User,
    data: bytes,
    fmt: str,
    offset: tuple[float, float] = (0.0, 0.0),
    label_map: dict[str, str] | None = None,
) -> list[int]:
    """Import a Labelme or GeoJSON file into ``aset``: every shape, or none. Returns the ids.

    Raises :class:`ImportFailed` (unreadable file, unknown labels) or :class:`BulkInvalid`
    whose errors name the shape (``source``) as well as its index.
    """
    check_can_write(aset=aset, user=user)
    items = parse_file(data, fmt, offset=offset)
    if aset.stage == Stage.ROI:
        for item in items:
            item["label"] = ""
    else:
        items = map_labels(items, allowed=_import_spellings(aset), label_map=label_map or {})
    if aset.stage == Stage.TOI:
        items = [_as_tile(aset, item) for item in items]
    try:
        return bulk_create_annotations(aset=aset, user=user, items=items, limit=MAX_IMPORT_ITEMS)
    except BulkInvalid as exc:
        for error in exc.errors:
            error["source"] = items[error["index"]]["source"]
        raise


def _import_spellings(aset: AnnotationSet) -> dict[str, str]:
    """Labels a file may use without a label_map: our keys, and names in any case."""
    if aset.stage == Stage.TOI:
        return {"toi": "toi", "non_toi": "non_toi", "non-toi": "non_toi"}
    spellings = {"": ""}
    for key, name in LabelClass.objects.filter(
        project_id=aset.slide.project_id, retired=False
    ).values_list("key", "name"):
        spellings[key] = key
        spellings[name.lower()] = key
    return spellings


def _as_tile(aset: AnnotationSet, item: dict[str, Any]) -> dict[str, Any]:
    """A TOI shape becomes the grid tile under its centre, keeping its label."""
    size = aset.slide.project.toi_tile_size
    try:
        ring = item["geometry"]["coordinates"][0]
        xs, ys = [float(p[0]) for p in ring], [float(p[1]) for p in ring]
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise ImportFailed(f"{item['source']}: coordinates must be [x, y] numbers") from exc
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    return {**item, "geometry": None, "tile_col": int(cx // size), "tile_row": int(cy // size)}


def _check_tiles_free(aset: AnnotationSet, rows: list[dict[str, Any]], *, single: bool) -> None:
    if aset.stage != Stage.TOI:
        return
    live = Annotation.objects.filter(set=aset, is_deleted=False)
    taken = {
        (a.tile_col, a.tile_row): a for a in live.only("id", "tile_col", "tile_row", "version")
    }
    seen: set[tuple[int, int]] = set()
    errors = []
    for index, row in enumerate(rows):
        tile = (row["tile_col"], row["tile_row"])
        if tile in taken and single:
            raise TileTaken(Annotation.objects.get(pk=taken[tile].pk))
        if tile in taken or tile in seen:
            errors.append({"index": index, "detail": f"tile {tile} is already labelled"})
        seen.add(tile)
    if errors:
        raise BulkInvalid(errors)


#: Versions start at 1; the largest a PositiveIntegerField holds on every database backend.
MAX_VERSION = 2_147_483_647


def _locked(annotation_id: int, sent_version: Any) -> Annotation:
    """The row, locked for this transaction, if ``sent_version`` is current."""
    current = (
        Annotation.objects.select_for_update()
        .select_related("set__slide__project")
        .get(pk=annotation_id)
    )
    if (
        not isinstance(sent_version, int)
        or isinstance(sent_version, bool)
        or not 1 <= sent_version <= MAX_VERSION
    ):
        # Out of range, it could not be stored as the refused attempt's history row either.
        raise InvalidAnnotation(f"version (an integer, 1 to {MAX_VERSION}) is required for an edit")
    if current.version != sent_version:
        raise StaleVersion(current, sent_version)
    return current


def update_annotation(
    *,
    annotation_id: int,
    user: User,
    version: Any,
    changes: dict[str, Any],
    through_report: bool = False,
) -> Annotation:
    """Apply ``changes`` ({geometry?, label?}) if ``version`` is current; else 409 + history.

    ``through_report``: the caller is the report's review (see :func:`check_can_write`).
    """
    try:
        return _update(
            annotation_id=annotation_id,
            user=user,
            version=version,
            changes=changes,
            through_report=through_report,
        )
    except StaleVersion as exc:
        record_conflict(annotation=exc.current, user=user, version=version, attempted=changes)
        raise


@transaction.atomic
def _update(
    *, annotation_id: int, user: User, version: Any, changes: dict[str, Any], through_report: bool
) -> Annotation:
    annotation = _locked(annotation_id, version)
    check_can_write(aset=annotation.set, user=user, through_report=through_report)
    if annotation.is_deleted:
        raise InvalidAnnotation("the annotation is deleted; restore it before editing")
    before = state_of(annotation)
    item = {**before, **{k: v for k, v in changes.items() if k in {"geometry", "label"}}}
    ctx = _Context.of(annotation.set)
    if annotation.label:
        # Keeping a label that was retired since is not a new use of it: the outline may move.
        ctx = replace(ctx, label_keys=ctx.label_keys | {annotation.label})
    fields = _clean_item(ctx, item)
    fields.pop("probabilities")
    for name, value in fields.items():
        setattr(annotation, name, value)
    return _save_change(annotation, user, EventAction.UPDATE, before)


def set_deleted(*, annotation_id: int, user: User, version: Any, deleted: bool) -> Annotation:
    """Soft-delete (or restore) if ``version`` is current; a stale attempt is recorded."""
    try:
        with transaction.atomic():
            annotation = _locked(annotation_id, version)
            check_can_write(aset=annotation.set, user=user)
            if annotation.is_deleted == deleted:
                return annotation
            before = state_of(annotation)
            annotation.is_deleted = deleted
            action = EventAction.DELETE if deleted else EventAction.RESTORE
            return _save_change(annotation, user, action, before)
    except StaleVersion as exc:
        attempted = {"is_deleted": deleted}
        record_conflict(annotation=exc.current, user=user, version=version, attempted=attempted)
        raise


def _save_change(
    annotation: Annotation, user: User, action: str, before: dict[str, Any]
) -> Annotation:
    annotation.version += 1
    annotation.save()
    AnnotationEvent.objects.create(
        annotation=annotation,
        user=user,
        action=action,
        before=before,
        after=state_of(annotation),
        version=annotation.version,
    )
    return annotation


@transaction.atomic
def record_conflict(
    *, annotation: Annotation, user: User, version: Any, attempted: dict[str, Any]
) -> AnnotationEvent:
    """Keep a refused stale attempt in history: what was stored, and what the client sent."""
    sent = version if isinstance(version, int) and not isinstance(version, bool) else 0
    return AnnotationEvent.objects.create(
        annotation=annotation,
        user=user,
        action=EventAction.CONFLICT,
        before=state_of(annotation),
        after=attempted,
        version=sent,
    )


# -- tasks ----------------------------------------------------------------------------------
@transaction.atomic
def assign_task(*, slide: Slide, stage: str, annotator: User, assigned_by: User) -> Task:
    """Assign ``annotator`` (a project member) to (slide, stage); idempotent."""
    if not roles.is_member(annotator, slide.project_id):
        raise TaskStateError(f"{annotator} is not a member of this slide's project")
    task, created = Task.objects.get_or_create(
        slide=slide, stage=stage, annotator=annotator, defaults={"assigned_by": assigned_by}
    )
    if created:
        TaskEvent.objects.create(task=task, user=assigned_by, action="assign")
        get_or_create_annotator_set(slide=slide, stage=stage, user=annotator)
    return task


@transaction.atomic
def start_task(*, task: Task, user: User) -> Task:
    _check_own_task(task, user)
    if task.state == TaskState.SUBMITTED:
        raise TaskStateError("the task is submitted; a project admin can reopen it")
    if task.state == TaskState.ASSIGNED:
        _move(task, user, TaskState.IN_PROGRESS, "start")
    return task


@transaction.atomic
def submit_task(*, task: Task, user: User) -> Task:
    _check_own_task(task, user)
    if task.state == TaskState.SUBMITTED:
        raise TaskStateError("the task is already submitted")
    return _move(task, user, TaskState.SUBMITTED, "submit")


@transaction.atomic
def reopen_task(*, task: Task, user: User, note: str) -> Task:
    """Admin action: a submitted task goes back to in progress, which re-blinds its stage."""
    if not roles.is_admin(user, task.slide.project_id):
        raise NotAllowed("only a project admin may reopen a task")
    if task.state != TaskState.SUBMITTED:
        raise TaskStateError("only a submitted task can be reopened")
    return _move(task, user, TaskState.IN_PROGRESS, "reopen", note=note)


def _check_own_task(task: Task, user: User) -> None:
    if task.annotator_id != user.pk:
        raise NotAllowed("only the assigned annotator may start or submit this task")


def _move(task: Task, user: User, state: str, action: str, note: str = "") -> Task:
    now = timezone.now()
    task.state = state
    if action == "start":
        task.started_at = now
    if action == "submit":
        task.submitted_at = now
    task.save()
    TaskEvent.objects.create(task=task, user=user, action=action, note=note)
    return task


def _start_task_on_first_edit(*, aset: AnnotationSet, user: User) -> None:
    """The first annotation saved moves the annotator's assigned task to in progress."""
    tasks = Task.objects.filter(
        Q(slide_id=aset.slide_id, stage=aset.stage, annotator=user, state=TaskState.ASSIGNED)
    )
    for task in tasks:
        _move(task, user, TaskState.IN_PROGRESS, "start")

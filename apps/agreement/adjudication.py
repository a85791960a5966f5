"""Adjudication: a reviewer walks the disagreements of two annotator sets and builds a consensus
``AnnotationSet`` (``source=consensus``) from their choices.

Starting an adjudication creates the consensus set and fills it with everything the two
annotators agree on (matched cells with the same label, in A's outline; tiles both labelled
alike; an ROI both drew identically). Each disagreement is then decided once: ``a`` copies
annotator A's version into the consensus, ``b`` copies B's (choosing the side that drew
nothing leaves the consensus empty there), ``edit`` stores the reviewer's own label and/or
geometry. Deciding again retracts (soft-deletes) what the previous choice created. Writes go
through :mod:`apps.annotations.services`, so every consensus annotation has its history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import shapely
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

import ml.agreement as ag
from apps.annotations import services as annotation_services
from apps.annotations.errors import BulkInvalid
from apps.annotations.models import Annotation, AnnotationSet, SetSource, Stage
from apps.slides.models import Slide

from . import selectors
from .errors import InvalidRequest, UnknownDisagreement
from .models import Adjudication, Choice, Decision

CACHE_SECONDS = 3600


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


@dataclass(frozen=True)
class Comparison:
    """The disagreements of two sets, and the consensus items of what they agree on (the
    latter only when freshly compared; the cached copy keeps the items alone)."""

    items: list[Item]
    agreed: list[dict[str, Any]]


# ------------------------------------------------------------------------------ reading


def comparison(adjudication: Adjudication) -> Comparison:
    """Disagreements of the adjudication's two sets, cached until either set changes.

    ``agreed`` is empty here: it is only needed once, when the adjudication starts.
    """
    key = _cache_key(adjudication)
    items = cache.get(key)
    if items is None:
        fresh = compare_sets(adjudication.set_a, adjudication.set_b, adjudication.iou_threshold)
        items = fresh.items
        cache.set(key, items, CACHE_SECONDS)
    return Comparison(items, [])


def _cache_key(adjudication: Adjudication) -> str:
    sets = [adjudication.set_a, adjudication.set_b]
    state = selectors.source_state(
        sets, project=adjudication.slide.project, stage=adjudication.stage
    )
    digest = hashlib.sha1(json.dumps(state, sort_keys=True).encode()).hexdigest()
    return f"agreement:adjudication:{adjudication.pk}:{adjudication.iou_threshold}:{digest}"


def compare_sets(set_a: AnnotationSet, set_b: AnnotationSet, iou_threshold: float) -> Comparison:
    """Compare two sets of the same (slide, stage)."""
    a, b = selectors.load(set_a), selectors.load(set_b)
    if set_a.stage == Stage.CELL:
        return _compare_cells(a, b, iou_threshold)
    if set_a.stage == Stage.TOI:
        return _compare_tiles(a, b, set_a.slide.project.toi_tile_size)
    return _compare_rois(a, b)


def _compare_cells(a: selectors.Loaded, b: selectors.Loaded, threshold: float) -> Comparison:
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


def _id(loaded: selectors.Loaded, index: Any) -> str:
    return "-" if index is None else str(loaded.ids[index])


def _cell_side(loaded: selectors.Loaded, index: Any) -> Side | None:
    if index is None:
        return None
    return Side([loaded.ids[index]], loaded.labels[index])


def _compare_tiles(a: selectors.Loaded, b: selectors.Loaded, tile_size: int) -> Comparison:
    tiles_a, tiles_b = a.tile_labels(), b.tile_labels()
    ids_a, ids_b = a.tile_ids(), b.tile_ids()
    items = []
    for d in ag.toi_disagreements(tiles_a, tiles_b, tile_size):
        tile = d.a or d.b
        side_a = Side([ids_a[tile]], tiles_a[tile], tile) if d.a else None
        side_b = Side([ids_b[tile]], tiles_b[tile], tile) if d.b else None
        items.append(Item(f"toi:{tile[0]}:{tile[1]}", d.kind, d.bbox, side_a, side_b))
    agreed = [
        {"tile_col": col, "tile_row": row, "label": label}
        for (col, row), label in sorted(tiles_a.items())
        if tiles_b.get((col, row)) == label
    ]
    return Comparison(items, agreed)


def _compare_rois(a: selectors.Loaded, b: selectors.Loaded) -> Comparison:
    found = ag.roi_disagreement(a.geometries, b.geometries)
    if found is None:
        return Comparison([], [{"geometry": g, "label": ""} for g in a.geometries])
    side_a, side_b = Side(a.ids, None), Side(b.ids, None)
    return Comparison([Item("roi", "roi", found.bbox, side_a, side_b)], [])


def progress(adjudication: Adjudication, items: list[Item]) -> dict[str, int]:
    """``{"decided", "total"}`` over the current disagreements."""
    keys = {i.key for i in items}
    decided = sum(1 for k in adjudication.decisions.values_list("key", flat=True) if k in keys)
    return {"decided": decided, "total": len(items)}


# ------------------------------------------------------------------------------- writing


@transaction.atomic
def start_adjudication(
    *,
    slide: Slide,
    stage: str,
    user: Any,
    annotator_a: int | None = None,
    annotator_b: int | None = None,
) -> tuple[Adjudication, bool]:
    """The (slide, stage) adjudication, created with its pre-filled consensus set if new.

    ``annotator_a``/``annotator_b`` pick the pair when more than two annotators did the stage
    (default: the first two by user id). Returns ``(adjudication, created)``.
    """
    selectors.check_reviewer(user, slide.project)
    existing = Adjudication.objects.filter(slide=slide, stage=stage).first()
    if existing is not None:
        return existing, False
    set_a, set_b = _pick(selectors.comparable_sets(slide, stage), annotator_a, annotator_b)
    note = f"consensus of {set_a.annotator} and {set_b.annotator}, adjudicated by {user}"
    consensus = AnnotationSet.objects.create(
        slide=slide, stage=stage, source=SetSource.CONSENSUS, note=note
    )
    adjudication = Adjudication.objects.create(
        slide=slide,
        stage=stage,
        set_a=set_a,
        set_b=set_b,
        consensus=consensus,
        iou_threshold=selectors.iou_threshold(),
        started_by=user,
    )
    fresh = compare_sets(set_a, set_b, adjudication.iou_threshold)
    cache.set(_cache_key(adjudication), fresh.items, CACHE_SECONDS)
    if fresh.agreed:
        annotation_services.bulk_create_annotations(
            aset=consensus,
            user=user,
            items=fresh.agreed,
            limit=annotation_services.MAX_IMPORT_ITEMS,
        )
    _update_completion(adjudication)
    return adjudication, True


def _pick(
    sets: list[AnnotationSet], annotator_a: int | None, annotator_b: int | None
) -> tuple[AnnotationSet, AnnotationSet]:
    if annotator_a is None and annotator_b is None:
        return sets[0], sets[1]
    by_user = {s.annotator_id: s for s in sets}
    if annotator_a not in by_user or annotator_b not in by_user or annotator_a == annotator_b:
        raise InvalidRequest("a and b must be two different annotators of this stage")
    return by_user[annotator_a], by_user[annotator_b]


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
    item = next((i for i in comparison(adjudication).items if i.key == key), None)
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
        created = annotation_services.bulk_create_annotations(
            aset=consensus, user=user, items=items
        )
    except BulkInvalid as exc:  # one decision: say what was wrong, not "1 item invalid"
        raise InvalidRequest("; ".join(e["detail"] for e in exc.errors)) from exc
    # The annotation service returns ids (it used to return the rows): accept either.
    return [getattr(a, "pk", a) for a in created]


def consensus_items(
    item: Item,
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
        return [{"tile_col": tile[0], "tile_row": tile[1], "label": label}]
    return _cell_edit(item, label, geometry)


def _copy(item: Item, side: Side | None) -> list[dict[str, Any]]:
    if side is None:
        return []  # the chosen annotator drew nothing here
    if side.tile is not None:
        return [{"tile_col": side.tile[0], "tile_row": side.tile[1], "label": side.label}]
    return [{"geometry": g, "label": side.label or ""} for g in side.geometries()]


def _cell_edit(
    item: Item, label: str | None, geometry: dict[str, Any] | None
) -> list[dict[str, Any]]:
    if label is None and geometry is None:
        raise InvalidRequest("an edit needs a label, a geometry or both")
    sides = [s for s in (item.a, item.b) if s is not None]  # a disagreement has one at least
    if label is None:
        label = next((s.label for s in sides if s.label), "")
    return [{"geometry": geometry or sides[0].geometries()[0], "label": label}]


def _roi_edit(
    item: Item, geometry: dict[str, Any] | None, combine: str | None
) -> list[dict[str, Any]]:
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
    done = progress(adjudication, comparison(adjudication).items)
    completed = timezone.now() if done["decided"] == done["total"] else None
    if (adjudication.completed_at is None) != (completed is None):
        adjudication.completed_at = completed
        adjudication.save(update_fields=["completed_at"])

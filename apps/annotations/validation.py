"""Polygon validation: what may be stored as an annotation's geometry, and why not.

Input is a GeoJSON-style Polygon in level-0 slide px. The output is a :class:`CleanPolygon`
with closed rings of floats, the XYXY bounding box and the area, ready to store. Anything else
is a :class:`PolygonError` whose ``reason`` is shown to the user verbatim.

:func:`clean_polygons` checks a whole batch with one vectorised GEOS validity pass (a bulk
save of 5,000 cells must take well under a second here); :func:`clean_polygon` is the same
rules for one geometry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import shapely
from shapely.validation import explain_validity

from ml.geojson import polygons_from_rings

#: More vertices than this (all rings together) is not a drawing, it is a mistake.
MAX_VERTICES = 2000
_NUMBER_TYPES = frozenset({int, float})


class PolygonError(ValueError):
    """A geometry that cannot be stored; ``reason`` says why in a user's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CleanPolygon:
    """A validated polygon: ``geometry`` is GeoJSON with closed float rings (level-0 px)."""

    geometry: dict[str, Any]
    min_x: float
    min_y: float
    max_x: float
    max_y: float
    area_px: float

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """XYXY, level-0 px."""
        return self.min_x, self.min_y, self.max_x, self.max_y


def clean_polygon(geometry: Any, *, width: float, height: float) -> CleanPolygon:
    """Validate one GeoJSON Polygon against a slide of ``width`` x ``height`` level-0 px.

    Rejects: anything but ``{"type": "Polygon", "coordinates": [ring, ...]}``, non-numeric or
    non-finite coordinates, a ring with fewer than 3 distinct vertices, more than
    :data:`MAX_VERTICES` vertices, a point outside ``[0, width] x [0, height]`` and an invalid
    (e.g. self-intersecting) shape. Rings may come open or closed; they are stored closed.
    """
    result = clean_polygons([geometry], width=width, height=height)[0]
    if isinstance(result, PolygonError):
        raise result
    return result


def clean_polygons(
    geometries: Sequence[Any], *, width: float, height: float
) -> list[CleanPolygon | PolygonError]:
    """:func:`clean_polygon` for many geometries: one result or error per input, in order.

    Single-ring polygons (every cell) are checked together in numpy and GEOS; anything else,
    and any polygon the batch finds wrong, goes through the one-by-one checks, which word the
    reason.
    """
    results: list[CleanPolygon | PolygonError | None] = [None] * len(geometries)
    simple = [(i, g["coordinates"][0]) for i, g in enumerate(geometries) if _is_simple(g)]
    for index, clean in _clean_simple_batch(simple, width, height).items():
        results[index] = clean
    slow = [i for i, result in enumerate(results) if result is None]
    for index, result in zip(
        slow, _clean_one_by_one([geometries[i] for i in slow], width, height), strict=True
    ):
        results[index] = result
    return results  # type: ignore[return-value]


def _is_simple(geometry: Any) -> bool:
    """A Polygon dict with exactly one ring given as a list of 4..MAX_VERTICES+1 points."""
    if type(geometry) is not dict or geometry.get("type") != "Polygon":
        return False
    rings = geometry.get("coordinates")
    return (
        type(rings) is list
        and len(rings) == 1
        and type(rings[0]) is list
        and 4 <= len(rings[0]) <= MAX_VERTICES
    )


def _clean_simple_batch(
    simple: list[tuple[int, list[Any]]], width: float, height: float
) -> dict[int, CleanPolygon]:
    """The single-ring polygons that pass every check, by index; the rest are left out."""
    if not simple:
        return {}
    points = list(chain.from_iterable(ring for _, ring in simple))
    try:
        kinds = set(map(type, chain.from_iterable(points)))
        coords = np.array(points, dtype=np.float64) if kinds <= _NUMBER_TYPES else None
    except (TypeError, ValueError):
        coords = None  # a malformed point somewhere: let the one-by-one checks find it
    if (
        coords is None
        or coords.ndim != 2
        or coords.shape[1] != 2
        or not math.isfinite(coords.sum())
    ):
        return {}
    lengths = np.array([len(ring) for _, ring in simple])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    closed = (coords[starts] == coords[starts + lengths - 1]).all(axis=1)
    lo = np.minimum.reduceat(coords, starts)
    hi = np.maximum.reduceat(coords, starts)
    ok = (
        (lengths - closed >= 3) & (lo >= 0).all(axis=1) & (hi[:, 0] <= width) & (hi[:, 1] <= height)
    )
    # shapely closes open rings itself; rings of fewer than 3 vertices are already excluded.
    keep = np.repeat(ok, lengths)
    shapes = polygons_from_rings(coords[keep], lengths[ok], np.ones(int(ok.sum()), np.int64))
    areas = np.zeros(len(simple))
    valid = np.zeros(len(simple), dtype=bool)
    valid[ok] = shapely.is_valid(shapes)
    areas[ok] = shapely.area(shapes)
    out = {}
    for k in np.flatnonzero(valid & (areas > 0)):
        index, ring = simple[k]
        out[index] = CleanPolygon(
            geometry={"type": "Polygon", "coordinates": [ring if closed[k] else [*ring, ring[0]]]},
            min_x=float(lo[k, 0]),
            min_y=float(lo[k, 1]),
            max_x=float(hi[k, 0]),
            max_y=float(hi[k, 1]),
            area_px=float(areas[k]),
        )
    return out


def _clean_one_by_one(
    geometries: Sequence[Any], width: float, height: float
) -> list[CleanPolygon | PolygonError]:
    """Every check for each geometry, with its reason when it fails."""
    results: list[CleanPolygon | PolygonError | None] = [None] * len(geometries)
    pending: list[tuple[int, _Rings]] = []
    for index, geometry in enumerate(geometries):
        try:
            rings = _rings_of(geometry)
            _check_bounds(rings, width, height)
        except PolygonError as exc:
            results[index] = exc
        else:
            pending.append((index, rings))
    shapes = _shapes([rings for _, rings in pending])
    valid = shapely.is_valid(shapes)
    areas = shapely.area(shapes)
    for (index, rings), shape, ok, area in zip(pending, shapes, valid, areas, strict=True):
        if ok and area > 0:
            results[index] = _clean(rings, float(area))
        else:
            results[index] = PolygonError(_why_invalid(rings, shape, ok))
    return results  # type: ignore[return-value]


@dataclass
class _Rings:
    """Closed rings as given (``lists``, for storing) and as float arrays (for checking)."""

    lists: list[list[Any]]
    arrays: list[np.ndarray]
    lo: np.ndarray  # outer ring's (min_x, min_y)
    hi: np.ndarray  # outer ring's (max_x, max_y)


def _rings_of(geometry: Any) -> _Rings:
    """Closed rings; raises for structure, numbers and vertex counts."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        raise PolygonError('geometry must be a GeoJSON object {"type": "Polygon", ...}')
    rings = geometry.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise PolygonError("coordinates must be a non-empty list of rings")
    if not all(isinstance(r, list) for r in rings):
        raise PolygonError("each ring must be a list of [x, y] points")
    total = sum(len(r) for r in rings)
    if total > MAX_VERTICES:
        raise PolygonError(f"too many vertices: {total} (at most {MAX_VERTICES})")
    arrays = [_ring_array(ring, index) for index, ring in enumerate(rings)]
    lists = [r if len(r) == len(a) else [*r, r[0]] for r, a in zip(rings, arrays, strict=True)]
    return _Rings(lists, arrays, arrays[0].min(axis=0), arrays[0].max(axis=0))


def _ring_array(ring: list[Any], index: int) -> np.ndarray:
    """A closed ``(N, 2)`` float64 ring from a list of [x, y] numbers."""
    where = "the outer ring" if index == 0 else f"hole {index}"
    try:
        # type() of every coordinate, in C: bool (an int subclass) and strings stand out.
        kinds = set(map(type, chain.from_iterable(ring)))
    except TypeError as exc:
        raise PolygonError(f"{where}: each point must be [x, y]") from exc
    if not kinds <= _NUMBER_TYPES:
        raise PolygonError(f"{where}: coordinates must be finite numbers")
    try:
        points = np.array(ring, dtype=np.float64)
    except ValueError as exc:
        raise PolygonError(f"{where}: each point must be [x, y]") from exc
    if points.ndim != 2 or points.shape[1] != 2:
        raise PolygonError(f"{where}: each point must be [x, y]")
    if not math.isfinite(points.sum()):
        raise PolygonError(f"{where}: coordinates must be finite numbers")
    closed = len(points) > 1 and points[0, 0] == points[-1, 0] and points[0, 1] == points[-1, 1]
    if len(points) - closed < 3:
        raise PolygonError(f"{where} has fewer than 3 distinct vertices")
    return points if closed else np.vstack([points, points[:1]])


def _shapes(batch: list[_Rings]) -> np.ndarray:
    """GEOS polygons for a batch, holes included, in one vectorised call."""
    if not batch:
        return np.zeros(0, dtype=object)
    arrays = [ring for rings in batch for ring in rings.arrays]
    return polygons_from_rings(
        np.concatenate(arrays), [len(a) for a in arrays], [len(r.arrays) for r in batch]
    )


def _check_bounds(rings: _Rings, width: float, height: float) -> None:
    (x0, y0), (x1, y1) = rings.lo, rings.hi
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise PolygonError(
            f"a point lies outside the slide: the bounds are [0, {width:g}] x [0, {height:g}], "
            f"the polygon spans [{x0:g}, {x1:g}] x [{y0:g}, {y1:g}]"
        )
    for hole in rings.arrays[1:]:
        if hole.min() < 0 or hole[:, 0].max() > width or hole[:, 1].max() > height:
            raise PolygonError("a hole's point lies outside the slide")


def _why_invalid(rings: _Rings, shape: shapely.Polygon, valid: bool) -> str:
    for index, ring in enumerate(rings.arrays):
        # Only now, on the failure path, is it worth counting distinct vertices.
        if len(np.unique(ring[:-1], axis=0)) < 3:
            where = "the outer ring" if index == 0 else f"hole {index}"
            return f"{where} has fewer than 3 distinct vertices"
    if valid:
        return "the polygon has no area"
    return f"invalid polygon: {explain_validity(shape)}"


def _clean(rings: _Rings, area: float) -> CleanPolygon:
    (min_x, min_y), (max_x, max_y) = rings.lo, rings.hi
    return CleanPolygon(
        geometry={"type": "Polygon", "coordinates": rings.lists},
        min_x=float(min_x),
        min_y=float(min_y),
        max_x=float(max_x),
        max_y=float(max_y),
        area_px=area,
    )

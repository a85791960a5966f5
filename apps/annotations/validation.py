"""Polygon validation: what may be stored as an annotation's geometry, and why not.

Input is a GeoJSON-style Polygon in level-0 slide px. The output is a :class:`CleanPolygon`
with closed rings of floats, the XYXY bounding box and the area, ready to store. Anything else
raises :class:`PolygonError` whose ``reason`` is shown to the user verbatim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shapely import Polygon
from shapely.validation import explain_validity

#: More vertices than this (all rings together) is not a drawing, it is a mistake.
MAX_VERTICES = 2000


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
    """Validate a GeoJSON Polygon against a slide of ``width`` x ``height`` level-0 px.

    Rejects: anything but ``{"type": "Polygon", "coordinates": [ring, ...]}``, non-numeric or
    non-finite coordinates, a ring with fewer than 3 distinct vertices, more than
    :data:`MAX_VERTICES` vertices, a point outside ``[0, width] x [0, height]`` and an invalid
    (e.g. self-intersecting) shape. Rings may come open or closed; they are stored closed.
    """
    rings = _rings_of(geometry)
    total = sum(len(r) for r in rings)
    if total > MAX_VERTICES:
        raise PolygonError(f"too many vertices: {total} (at most {MAX_VERTICES})")
    clean_rings = [_clean_ring(ring, index) for index, ring in enumerate(rings)]
    xs = [x for ring in clean_rings for x, _ in ring]
    ys = [y for ring in clean_rings for _, y in ring]
    min_x, min_y, max_x, max_y = min(xs), min(ys), max(xs), max(ys)
    if min_x < 0 or min_y < 0 or max_x > width or max_y > height:
        raise PolygonError(
            f"a point lies outside the slide: the bounds are [0, {width:g}] x [0, {height:g}], "
            f"the polygon spans [{min_x:g}, {max_x:g}] x [{min_y:g}, {max_y:g}]"
        )
    shape = Polygon(clean_rings[0], clean_rings[1:])
    if not shape.is_valid:
        raise PolygonError(f"invalid polygon: {explain_validity(shape)}")
    if shape.area <= 0:
        raise PolygonError("the polygon has no area")
    return CleanPolygon(
        geometry={"type": "Polygon", "coordinates": clean_rings},
        min_x=min_x,
        min_y=min_y,
        max_x=max_x,
        max_y=max_y,
        area_px=float(shape.area),
    )


def _rings_of(geometry: Any) -> list[Any]:
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        raise PolygonError('geometry must be a GeoJSON object {"type": "Polygon", ...}')
    rings = geometry.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise PolygonError("coordinates must be a non-empty list of rings")
    if not all(isinstance(r, list) for r in rings):
        raise PolygonError("each ring must be a list of [x, y] points")
    return rings


def _clean_ring(ring: list[Any], index: int) -> list[list[float]]:
    """Closed ring of float [x, y] pairs; raises on bad numbers or < 3 distinct vertices."""
    where = "the outer ring" if index == 0 else f"hole {index}"
    points: list[list[float]] = []
    for point in ring:
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise PolygonError(f"{where}: each point must be [x, y]")
        x, y = point
        if not _is_number(x) or not _is_number(y):
            raise PolygonError(f"{where}: coordinates must be finite numbers, got {point!r}")
        points.append([float(x), float(y)])
    if points and points[0] == points[-1]:
        points.pop()
    if len({(x, y) for x, y in points}) < 3:
        raise PolygonError(f"{where} has fewer than 3 distinct vertices")
    points.append(list(points[0]))
    return points


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but true/false are not coordinates.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)

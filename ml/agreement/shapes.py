"""Polygons in, valid shapely geometries out: the one place annotation geometry is parsed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, TypeAlias

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

#: A shapely geometry, a GeoJSON Polygon/MultiPolygon mapping or an ``(N, 2)`` exterior ring.
PolygonLike: TypeAlias = BaseGeometry | Mapping[str, Any] | np.ndarray | Sequence[Sequence[float]]


def to_geometries(polygons: Iterable[PolygonLike]) -> np.ndarray:
    """Valid shapely geometries, object array ``(N,)``, in the input's frame and order.

    GeoJSON Polygons are built in one vectorised call (the app's 5,000-cell sets); other inputs
    one by one. Invalid rings are repaired (package docstring); a degenerate ring becomes an empty
    geometry of area 0, which matches nothing.
    """
    items = list(polygons)
    out = np.empty(len(items), dtype=object)
    plain = [i for i, p in enumerate(items) if _is_geojson_polygon(p)]
    if plain:
        out[plain] = _geojson_polygons([items[i]["coordinates"] for i in plain])
    for i, item in enumerate(items):
        if out[i] is None:
            out[i] = _one_geometry(item)
    invalid = ~shapely.is_valid(out)
    if invalid.any():
        out[invalid] = shapely.make_valid(out[invalid], method="structure", keep_collapsed=False)
    return out


def _is_geojson_polygon(item: Any) -> bool:
    return isinstance(item, Mapping) and item.get("type") == "Polygon"


def _one_geometry(item: PolygonLike) -> BaseGeometry:
    if isinstance(item, BaseGeometry):
        return item
    if isinstance(item, Mapping):
        return shape(item)
    ring = np.asarray(item, dtype=np.float64).reshape(-1, 2)
    return shapely.Polygon(ring) if len(ring) >= 3 else shapely.Polygon()


def _geojson_polygons(coordinates: list[list[list[list[float]]]]) -> np.ndarray:
    """Polygons from GeoJSON coordinate lists via one ragged-array call (fast for thousands)."""
    ring_lengths = np.fromiter((len(r) for rings in coordinates for r in rings), np.int64)
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(chain(*coordinates))), np.float64)
    ring_offsets = np.concatenate([[0], np.cumsum(ring_lengths)])
    if not _closed_2d_rings(flat, ring_offsets):
        # 3-D positions, unclosed or tiny rings: take the careful, per-polygon path.
        careful = np.empty(len(coordinates), dtype=object)
        careful[:] = [_one_geometry({"type": "Polygon", "coordinates": c}) for c in coordinates]
        return careful
    rings_per = np.fromiter((len(rings) for rings in coordinates), np.int64)
    polygon_offsets = np.concatenate([[0], np.cumsum(rings_per)])
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, flat.reshape(-1, 2), (ring_offsets, polygon_offsets)
    )


def _closed_2d_rings(flat: np.ndarray, ring_offsets: np.ndarray) -> bool:
    lengths = np.diff(ring_offsets)
    if not lengths.size or flat.size != 2 * ring_offsets[-1] or (lengths < 4).any():
        return False
    points = flat.reshape(-1, 2)
    return bool((points[ring_offsets[:-1]] == points[ring_offsets[1:] - 1]).all())


def union_of(polygons: Iterable[PolygonLike]) -> BaseGeometry:
    """The union of ``polygons`` as one geometry; an empty polygon when there are none."""
    geoms = to_geometries(polygons)
    return shapely.union_all(geoms) if geoms.size else shapely.Polygon()


def bounds_of(geom: BaseGeometry) -> tuple[float, float, float, float]:
    """XYXY bounds of ``geom``; ``(0, 0, 0, 0)`` when it is empty."""
    if geom.is_empty:
        return (0.0, 0.0, 0.0, 0.0)
    x0, y0, x1, y1 = geom.bounds
    return (float(x0), float(y0), float(x1), float(y1))

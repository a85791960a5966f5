"""Polygons in, valid shapely geometries out: the one place annotation geometry is parsed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias, cast

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ml.geojson import polygons_from_geojson

#: A shapely geometry, a GeoJSON Polygon/MultiPolygon mapping or an ``(N, 2)`` exterior ring.
PolygonLike: TypeAlias = BaseGeometry | Mapping[str, Any] | np.ndarray | Sequence[Sequence[float]]


def to_geometries(polygons: Iterable[PolygonLike]) -> np.ndarray:
    """Valid shapely geometries, object array ``(N,)``, in the input's frame and order.

    GeoJSON Polygons are built in one vectorised call (:mod:`ml.geojson`; the app's 5,000-cell
    sets); other inputs one by one. Invalid rings are repaired (package docstring); a degenerate
    ring becomes an empty geometry of area 0, which matches nothing.
    """
    items = list(polygons)
    out = np.empty(len(items), dtype=object)
    plain = [i for i, p in enumerate(items) if _is_geojson_polygon(p)]
    if plain:
        out[plain] = polygons_from_geojson([cast(Mapping, items[i])["coordinates"] for i in plain])
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
